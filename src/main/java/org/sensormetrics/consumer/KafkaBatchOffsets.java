package org.sensormetrics.consumer;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.camel.Exchange;
import org.apache.camel.Variable;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.camel.component.kafka.consumer.DefaultKafkaManualCommit;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Commits the offsets of a whole Kafka batch: for every partition in it, the offset after its last record.
 *
 * <p>Camel's batch exchange carries the manual commit of its last record only, which covers one partition;
 * a batch usually spans several. This commits them all in one synchronous request, on the consumer's own
 * poll thread (the only thread that may touch the KafkaConsumer), in the route step that follows
 * store-batch, so only once its transaction has committed.
 */
public class KafkaBatchOffsets {

    /**
     * @param records the batch's record exchanges, kept in a variable before the body became rows
     * @param rows    their rows, one per record, which carry each record's topic, partition and offset: read from
     *                there, not from every record's headers again (a case-insensitive lookup: 5% of the poll
     *                threads' profile samples)
     */
    public void commit(@Variable("records") List<?> records, @Variable("rows") List<BatchRow> rows) {
        if (records == null || records.isEmpty()) {
            return;
        }
        // untyped: a typed read asks the type converter
        if (!(((Exchange) records.get(records.size() - 1)).getMessage().getHeader(KafkaConstants.MANUAL_COMMIT)
                instanceof DefaultKafkaManualCommit manual)) {
            throw new IllegalStateException("Kafka records carry no manual commit: set allowManualCommit=true");
        }
        // a batch holds each partition's records in a run, in offset order: one map entry per run, not per row
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        BatchRow first = null;
        long highest = -1;
        for (BatchRow row : rows) {
            if (first == null || row.kafkaPartition().intValue() != first.kafkaPartition() || !row.kafkaTopic().equals(first.kafkaTopic())) {
                after(next, first, highest);
                first = row;
                highest = row.kafkaOffset();
            } else {
                highest = Math.max(highest, row.kafkaOffset());
            }
        }
        after(next, first, highest);
        Consumer<?, ?> consumer = manual.getConsumer();
        consumer.commitSync(next, Duration.ofMillis(manual.getCommitTimeout()));
    }

    /** Records that the partition of row is to resume after offset, unless a later offset is recorded already. */
    private static void after(Map<TopicPartition, OffsetAndMetadata> next, BatchRow row, long offset) {
        if (row != null) {
            next.merge(new TopicPartition(row.kafkaTopic(), row.kafkaPartition()), new OffsetAndMetadata(offset + 1),
                    (a, b) -> a.offset() >= b.offset() ? a : b);
        }
    }
}
