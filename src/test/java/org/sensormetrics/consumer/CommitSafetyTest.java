package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import javax.management.MBeanServer;
import javax.management.ObjectName;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;

/**
 * A batch the service polled before one of its partitions moved to another member must neither commit nor write
 * that partition's records: the other member has read on and committed further, and the stale batch would set the
 * partition's committed offset back, for good (issue 18). Made to happen at will: the service's one poll thread
 * holds a batch that is waiting for its batching interval, a second member joins the group (the eager rebalance
 * revokes every partition), takes one partition, reads it to its end and commits that; then the service's batch goes.
 */
class CommitSafetyTest {

    private static final int FIRST = 100;
    private static final int SECOND = 100;

    @Test
    void aBatchPolledBeforeItsPartitionMovedCommitsNothingForThatPartition() throws Exception {
        staleBatch(false);
    }

    @Test
    void aBatchPolledBeforeItsPartitionMovedAwayAndBackCommitsNothingForThatPartition() throws Exception {
        staleBatch(true);
    }

    private static void staleBatch(boolean partitionComesBack) throws Exception {
        org.apache.logging.log4j.core.config.Configurator.setLevel(IngestConsumer.class.getName(), org.apache.logging.log4j.Level.DEBUG);
        try (Pipeline p = Pipeline.scenario(partitionComesBack ? "stale_back" : "stale_moved", 2)) {
            // one poll thread whose batch waits 20 s for more records: a window in which the group can change
            p.set("consumer.threads", "1")
                    .set("consumer.batch-size", "1000")
                    .set("consumer.batch-interval-ms", "20000")
                    .set("consumer.poll-timeout-ms", "20000");
            for (int partition = 0; partition < 2; partition++) {
                p.send(partition, readings("first-" + partition + "-", FIRST));
            }
            p.startService();
            Pipeline.await("the service's consumer to poll every record", Duration.ofSeconds(60),
                    () -> Pipeline.safe(() -> recordsPolled(p.group) >= 2 * FIRST));

            try (KafkaConsumer<byte[], byte[]> other = member(p)) {
                other.subscribe(List.of(p.topic));
                Pipeline.await("the second member's assignment", Duration.ofSeconds(60), () -> {
                    other.poll(Duration.ofMillis(200));
                    return !other.assignment().isEmpty();
                });
                assertEquals(1, other.assignment().size(), "the eager rebalance splits the two partitions");
                TopicPartition moved = other.assignment().iterator().next();
                TopicPartition kept = new TopicPartition(p.topic, 1 - moved.partition());

                // the other member reads the partition on, past what the service holds, and commits its end
                p.send(moved.partition(), readings("second-", SECOND));
                Pipeline.await("the second member to read its partition to the end", Duration.ofSeconds(60), () -> {
                    other.poll(Duration.ofMillis(200));
                    return other.position(moved) == FIRST + SECOND;
                });
                other.commitSync(Map.of(moved, new OffsetAndMetadata(FIRST + SECOND)));
                if (partitionComesBack) {
                    other.close(); // the service is given the partition back before its batch goes
                }

                Pipeline.await("the service's batch to commit the partition it kept", Duration.ofSeconds(90),
                        () -> Pipeline.safe(() -> p.committedOffsets().getOrDefault(kept, 0L) == FIRST));
                assertEquals(FIRST + SECOND, p.committedOffsets().get(moved),
                        "committed offset of the partition that moved, after the service's batch:\n" + p.offsetReport());
                assertEquals(0, p.count("SELECT count(*) FROM processed_events WHERE kafka_partition = " + moved.partition()),
                        "rows written from records of a partition revoked since they were polled");
                assertEquals(FIRST, p.count("SELECT count(*) FROM processed_events WHERE kafka_partition = " + kept.partition()));
            }
        }
    }

    private static KafkaConsumer<byte[], byte[]> member(Pipeline p) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Pipeline.kafka().bootstrapServers());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, p.group);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Records the service's consumers have returned from poll, from their client metrics (same JVM). */
    private static double recordsPolled(String group) throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        double total = 0;
        for (ObjectName name : server.queryNames(new ObjectName("kafka.consumer:type=consumer-fetch-manager-metrics,client-id=*"), null)) {
            if (name.getKeyProperty("client-id").contains(group)) {
                total += (Double) server.getAttribute(name, "records-consumed-total");
            }
        }
        return total;
    }

    private static List<Map.Entry<String, byte[]>> readings(String idPrefix, int n) {
        List<Map.Entry<String, byte[]>> records = new ArrayList<>();
        Instant at = Instant.now();
        for (int i = 0; i < n; i++) {
            records.add(Map.entry("sensor_" + i, Pipeline.utf8(LoadGenerator.reading("sensor_" + i, idPrefix + i, at.plusMillis(i), i))));
        }
        return records;
    }
}
