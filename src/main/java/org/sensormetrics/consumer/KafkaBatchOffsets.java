package org.sensormetrics.consumer;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.Timer;
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
 * <p>{@link #open} keeps what the other two need in the exchange variable {@value #BATCH}, before the body becomes
 * rows: the consumer, and each partition's first and last offset in the batch. Camel's batch exchange carries the
 * manual commit of its last record only, which covers one partition; a batch usually spans several.
 * {@link #commit} commits them all in one synchronous request, also the offsets of records a later step dropped.
 */
public class KafkaBatchOffsets {

    static final String BATCH = "kafkaBatch";

    /**
     * The consumer a batch came from, and each of its partitions' first and last offset in it. The getters are the
     * parameters of record-positions-and-stale-minutes.sql, one element per partition.
     */
    public record Batch(IngestConsumer consumer, Duration commitTimeout, Map<TopicPartition, long[]> offsets) {

        public String[] getTopics() {
            return offsets.keySet().stream().map(TopicPartition::topic).toArray(String[]::new);
        }

        public int[] getPartitions() {
            return offsets.keySet().stream().mapToInt(TopicPartition::partition).toArray();
        }

        /** What the consumer believes the database holds of each partition (null where it does not know). */
        public Long[] getExpected() {
            return offsets.keySet().stream().map(consumer::storedUpTo).toArray(Long[]::new);
        }

        public long[] getNextOffsets() {
            return offsets.values().stream().mapToLong(range -> range[1] + 1).toArray();
        }
    }

    /**
     * Drops the batch's records of partitions revoked or rewound since they were polled, and keeps the offsets of
     * the rest ({@value #BATCH}).
     */
    public void open(Exchange exchange) {
        @SuppressWarnings("unchecked")
        List<Exchange> records = exchange.getMessage().getBody(List.class);
        if (records.isEmpty()) {
            return;
        }
        DefaultKafkaManualCommit manual = manualCommit(records);
        IngestConsumer consumer = consumer(manual);
        List<Exchange> fresh = consumer.fresh(records);
        // a batch holds each partition's records in a run, in offset order: one map look-up per run, not per record
        Map<TopicPartition, long[]> offsets = new java.util.LinkedHashMap<>();
        TopicPartition last = null;
        long[] range = null;
        for (Exchange record : fresh) {
            TopicPartition tp = IngestConsumer.partitionOf(record);
            long offset = (Long) record.getMessage().getHeader(KafkaConstants.OFFSET);
            if (!tp.equals(last)) {
                range = offsets.computeIfAbsent(tp, p -> new long[] {Long.MAX_VALUE, -1});
                last = tp;
            }
            range[0] = Math.min(range[0], offset);
            range[1] = Math.max(range[1], offset);
        }
        exchange.setVariable(BATCH, new Batch(consumer, Duration.ofMillis(manual.getCommitTimeout()), offsets));
        exchange.getMessage().setBody(fresh);
    }

    /**
     * Commits, in one synchronous request, the offset after each partition's last record, and times it
     * (sensor_metrics_offset_commit_seconds). Reached only after the batch's transaction has committed.
     */
    public void commit(Exchange exchange) {
        Batch batch = exchange.getVariable(BATCH, Batch.class);
        if (batch == null || batch.offsets().isEmpty()) {
            return;
        }
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        batch.offsets().forEach((tp, range) -> next.put(tp, new OffsetAndMetadata(range[1] + 1)));
        long start = System.nanoTime();
        batch.consumer().commit(next, batch.commitTimeout());
        Timer.builder("sensor.metrics.offset.commit").description("Time to commit a batch's Kafka offsets")
                .register(IngestProgress.meterRegistry(exchange.getContext())).record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    }

    /**
     * After a failed batch (nothing committed): its partitions are read again from its first record of each, once
     * the back-off has passed, by the same consumer, which stays in the group meanwhile; a partition of which the
     * database lost records it had stored (SQLSTATE SMPOS, sensor_metrics_record_positions) from the database's
     * position.
     */
    public void rewind(Exchange exchange, @Variable("backOffMs") long backOffMs) {
        Batch batch = exchange.getVariable(BATCH, Batch.class);
        if (batch == null) {
            throw new IllegalStateException("A batch failed before its records were known: Camel reconnects the consumer");
        }
        Map<TopicPartition, Long> firstOffsets = new HashMap<>();
        batch.offsets().forEach((tp, range) -> firstOffsets.put(tp, range[0]));
        batch.consumer().rewind(firstOffsets, backOffMs, databaseLostRecords(exchange.getException() != null
                ? exchange.getException() : exchange.getProperty(Exchange.EXCEPTION_CAUGHT, Throwable.class)));
    }

    private static boolean databaseLostRecords(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof java.sql.SQLException sql && DatabasePositions.LOST.equals(sql.getSQLState())) {
                return true;
            }
        }
        return false;
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
