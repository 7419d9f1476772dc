package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;

import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The database's positions against a Kafka that no longer has what the database lost: the fault suite's
 * pg-async-failover and pg-restore read lost records again; here part of them is gone from Kafka too (retention),
 * which the service must say, in its log, its metrics and its readiness, while it stores what Kafka still has.
 */
class DatabasePositionsTest {

    @Test
    void recordsTheDatabaseLostAndKafkaNoLongerHasAreCountedAndTheRestIsStoredAgain() throws Exception {
        try (Pipeline p = Pipeline.scenario("positions_gone", 1)) {
            TopicPartition tp = new TopicPartition(p.topic, 0);
            p.startService();
            LoadGenerator.produce(p.load(10, 300).withSeed(3).withSequentialIds(true), p.kafkaClientProperties());
            p.awaitCaughtUp(Duration.ofMinutes(2));
            p.stopService();
            assertEquals(Map.of(tp, 300L), p.committedOffsets());

            // a restore to a moment when offsets 0-99 were stored, and a retention that has since removed 0-199
            try (var db = p.db(); var st = db.createStatement()) {
                st.execute("DELETE FROM metrics WHERE kafka_offset >= 100");
                st.execute("UPDATE kafka_positions SET next_offset = 100");
            }
            p.admin().deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(200))).all().get();

            p.startService();
            // the group's committed offsets are at the end already: lag 0 says nothing here
            Pipeline.await("the records Kafka still has stored again", Duration.ofMinutes(2),
                    () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM metrics WHERE kafka_offset >= 200") == 100));
            p.awaitCaughtUp(Duration.ofMinutes(2));
            // 0-99 kept by the restore, 200-299 read again; 100-199 are gone from both
            assertEquals(200, p.count("SELECT count(*) FROM metrics"));
            assertEquals(100, p.count("SELECT count(*) FROM metrics WHERE kafka_offset >= 200"));
            assertEquals(300, p.count("SELECT next_offset FROM kafka_positions"));
            String scrape = p.get("/observe/metrics").getValue();
            assertEquals(100.0, Benchmark.metric(scrape, "sensor_metrics_records_unrecoverable_total"));
            assertEquals(100.0, Benchmark.metric(scrape, "sensor_metrics_records_read_again_total"));
            String ready = p.get("/observe/health/ready").getValue();
            assertTrue(ready.contains("100 records the database lost"), ready);
        }
    }
}
