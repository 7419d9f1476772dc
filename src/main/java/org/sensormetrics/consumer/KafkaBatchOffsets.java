package org.sensormetrics.consumer;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.Timer;
import org.apache.camel.Body;
import org.apache.camel.Exchange;
import org.apache.camel.Variable;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.camel.component.kafka.consumer.DefaultKafkaManualCommit;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * The Kafka side of a batch, for the ingest route, on the consumer's own poll thread (the only thread that may
 * touch its KafkaConsumer, an {@link IngestConsumer}): which of its records are still this consumer's, the offsets
 * to commit once its transaction has committed, and the rewind after it failed.
 *
 * <p>Camel's batch exchange carries the manual commit of its last record only, which covers one partition; a
 * batch usually spans several. {@link #commit} commits them all in one synchronous request.
 */
public class KafkaBatchOffsets {

    /** The batch's records without those of partitions revoked or rewound since they were polled. */
    public List<Exchange> fresh(@Body List<Exchange> records) {
        return consumer(manualCommit(records)).fresh(records);
    }

    /**
     * Commits, in one synchronous request, the offset after each partition's last row, and times it
     * (sensor_metrics_offset_commit_seconds).
     *
     * @param exchange the batch's exchange, for the registry Camel scrapes
     * @param records  the batch's record exchanges, kept in a variable before the body became rows
     * @param rows     their rows, one per record, which carry each record's topic, partition and offset: read from
     *                 there, not from every record's headers again (a case-insensitive lookup)
     */
    public void commit(Exchange exchange, @Variable("records") List<Exchange> records, @Variable("rows") List<BatchRow> rows) {
        if (records == null || records.isEmpty()) {
            return;
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
        DefaultKafkaManualCommit manual = manualCommit(records);
        long start = System.nanoTime();
        consumer(manual).commit(next, Duration.ofMillis(manual.getCommitTimeout()));
        Timer.builder("sensor.metrics.offset.commit").description("Time to commit a batch's Kafka offsets")
                .register(IngestProgress.meterRegistry(exchange.getContext())).record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    }

    /**
     * After a failed batch (nothing committed): its partitions are read again from its first record of each, once
     * the back-off has passed, by the same consumer, which stays in the group meanwhile.
     */
    public void rewind(@Variable("records") List<Exchange> records, @Variable("backOffMs") long backOffMs) {
        if (records == null || records.isEmpty()) {
            throw new IllegalStateException("A batch failed before its records were known: Camel reconnects the consumer");
        }
        Map<TopicPartition, Long> firstOffsets = new HashMap<>();
        for (Exchange record : records) {
            firstOffsets.merge(IngestConsumer.partitionOf(record), (Long) record.getMessage().getHeader(KafkaConstants.OFFSET), Math::min);
        }
        consumer(manualCommit(records)).rewind(firstOffsets, backOffMs);
    }

    /** Records that the partition of row is to resume after offset, unless a later offset is recorded already. */
    private static void after(Map<TopicPartition, OffsetAndMetadata> next, BatchRow row, long offset) {
        if (row != null) {
            next.merge(new TopicPartition(row.kafkaTopic(), row.kafkaPartition()), new OffsetAndMetadata(offset + 1),
                    (a, b) -> a.offset() >= b.offset() ? a : b);
        }
    }

    private static IngestConsumer consumer(DefaultKafkaManualCommit manual) {
        if (!(manual.getConsumer() instanceof IngestConsumer consumer)) {
            throw new IllegalStateException("The Kafka consumer is not the ingest route's: set kafkaClientFactory=#ingestClientFactory");
        }
        return consumer;
    }

    private static DefaultKafkaManualCommit manualCommit(List<Exchange> records) {
        // untyped: a typed read asks the type converter
        if (!(records.get(records.size() - 1).getMessage().getHeader(KafkaConstants.MANUAL_COMMIT) instanceof DefaultKafkaManualCommit manual)) {
            throw new IllegalStateException("Kafka records carry no manual commit: set allowManualCommit=true");
        }
        return manual;
    }
}
