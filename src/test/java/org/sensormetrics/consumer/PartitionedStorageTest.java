package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The partitioned layout on a real broker and database: partitions made ahead and for whatever event time a
 * batch brings, retention that drops whole partitions while ingest runs, a database whose processed_events is a
 * table of its own, and a database of the reference schema that keeps working and then migrates without losing a row.
 */
class PartitionedStorageTest {

    private static final Duration CATCH_UP = Duration.ofMinutes(3);

    @Test
    void makesPartitionsAheadAndForLateBackfilledAndDistantReadings() throws Exception {
        try (Pipeline p = Pipeline.scenario("partitions", 4)) {
            p.startService();
            Pipeline.await("partitions ahead", Duration.ofSeconds(60), () -> Pipeline.safe(() -> p.count("""
                    SELECT count(*) FROM sensor_metrics_partitions('metrics')
                    WHERE range_end > now() + INTERVAL '3 days'""") == 1));
            assertEquals(4, p.count("SELECT count(*) FROM sensor_metrics_partitions('metrics') WHERE range_end > now()"),
                    "today and 3 days ahead");

            Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            List<String> times = new ArrayList<>();
            // late data, a backfill of an old topic (one reading an hour for 60 days, half a year back), the edges
            // of what the contract allows, and epoch numbers
            times.add("\"" + now.minus(2, ChronoUnit.DAYS) + "\"");
            for (int h = 0; h < 60 * 24; h++) {
                times.add("\"" + now.minus(200, ChronoUnit.DAYS).plus(h, ChronoUnit.HOURS) + "\"");
            }
            times.addAll(List.of("\"0001-01-01T00:00:00Z\"", "\"9999-12-31T23:59:59.999999Z\"", "0", "1705314645123",
                    "\"2262-04-12T00:00:00+14:00\"", "\"" + now.plus(400, ChronoUnit.DAYS) + "\""));
            for (int i = 0; i < times.size(); i++) {
                records.add(Map.entry("s" + i % 7, utf8("{\"sensor_id\":\"s" + i % 7 + "\",\"event_id\":\"e" + i
                        + "\",\"timestamp\":" + times.get(i) + ",\"value\":" + i + "}")));
            }
            records.addAll(records.subList(0, 100)); // redelivered: stored once
            p.send(records);
            p.awaitCaughtUp(CATCH_UP);

            p.assertExactlyOnce(times.size());
            assertEquals(0, p.progress().getFailures(), "no batch may fail for want of a partition");
            assertEquals(0, p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'e0' AND timestamp = '" + now.minus(2, ChronoUnit.DAYS) + "'"));
            assertEquals(0, p.count("""
                    SELECT count(*) FROM (SELECT tableoid::regclass AS part, timestamp FROM metrics) m
                    JOIN sensor_metrics_partitions('metrics') b USING (part)
                    WHERE m.timestamp < b.range_start OR m.timestamp >= b.range_end
                       OR b.range_end - b.range_start <> INTERVAL '1 day'"""), "daily partitions");
            assertEquals(1, p.count("SELECT count(*) FROM pg_class WHERE relname = 'metrics_p00010101'"));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE timestamp = '9999-12-31T23:59:59.999999Z'"), "to the microsecond");
            p.awaitRollupsExact();
        }
    }

    @Test
    void retentionDropsWholePartitionsWhileIngestRunsAndRejectsOlderReadings() throws Exception {
        try (Pipeline p = Pipeline.scenario("retention", 4)) {
            // ten days of readings, 100 a day, kept while retention is off
            Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
            List<Map.Entry<String, byte[]>> history = new ArrayList<>();
            for (int day = 0; day < 10; day++) {
                for (int i = 0; i < 100; i++) {
                    history.add(Map.entry("s" + i % 5, utf8(LoadGenerator.reading("s" + i % 5, "old-" + day + "-" + i,
                            now.minus(day, ChronoUnit.DAYS).minus(i, ChronoUnit.MINUTES), i))));
                }
            }
            p.startService();
            p.send(history);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(history.size());
            p.stopService();

            // 4.5 days: the maintenance, every second, drops what ends before now - 4.5 days - 1 hour while a live
            // load is stored
            p.set("retention.days", "4.5").set("db.partition.maintenance-interval-ms", "1000");
            LoadGenerator.Options live = p.load(200, 100_000).withRate(10_000);
            Thread producer = new Thread(() -> LoadGenerator.produce(live));
            producer.start();
            p.startService();
            Pipeline.await("old partitions dropped", Duration.ofSeconds(60), () -> Pipeline.safe(() -> p.count(
                    "SELECT count(*) FROM metrics WHERE timestamp < now() - INTERVAL '7 days'") == 0));
            assertTrue(producer.isAlive() || p.lag() > 0, "dropped while ingest was running");
            producer.join();
            // the readings older than the window, sent again: rejected with the reason, never stored again
            p.send(history);
            p.awaitCaughtUp(CATCH_UP);

            String cutoff = "now() - INTERVAL '4.5 days' - INTERVAL '1 hour'";
            assertEquals(0, p.count("SELECT count(*) FROM sensor_metrics_partitions('metrics') WHERE range_end <= " + cutoff));
            // days 0-4 are inside the window (the nearest reading to its edge is 10 hours away), days 5-9 outside
            assertEquals(500, p.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%older than the retention window of 4.5 days (RETENTION_DAYS)'"));
            assertEquals(500, p.count("SELECT count(*) FROM metrics WHERE event_id LIKE 'old-%' AND timestamp > now() - INTERVAL '4.5 days'"));
            // and of the readings outside it, those in partitions that were not yet due are still there, once
            long keptByPartition = p.count("SELECT count(*) FROM metrics WHERE event_id LIKE 'old-%'");
            long due = 0;
            try (Connection c = p.db(); var st = c.createStatement();
                 var rs = st.executeQuery("SELECT min(range_start) FROM sensor_metrics_partitions('metrics')")) {
                rs.next();
                Instant oldestKept = rs.getTimestamp(1).toInstant();
                for (var r : history) {
                    String json = new String(r.getValue(), java.nio.charset.StandardCharsets.UTF_8);
                    if (!Instant.parse(json.replaceAll(".*\"timestamp\":\"([^\"]+)\".*", "$1")).isBefore(oldestKept)) {
                        due++;
                    }
                }
            }
            assertEquals(due, keptByPartition, "rows of partitions that were not due are all kept");
            assertEquals(keptByPartition + live.events(), p.count("SELECT count(*) FROM metrics"));
            assertEquals(p.count("SELECT count(*) FROM metrics"), p.count("SELECT count(*) FROM processed_events"));
            assertEquals(0, p.count("SELECT count(*) FROM metrics WHERE timestamp < now() - INTERVAL '5 days' - INTERVAL '1 day'"));
            assertEquals(live.events(), p.count("SELECT count(DISTINCT event_id) FROM metrics WHERE event_id NOT LIKE 'old-%'"));
            assertEquals(0, p.progress().getFailures(), "dropping partitions failed no batch");
            assertEquals(0, p.lag());
        }
    }

    @Test
    void aDatabaseWithAProcessedEventsTableKeepsItsClaimsAndItsRetention() throws Exception {
        try (Pipeline p = Pipeline.scenario("two_tables", 4)) {
            // the layout before processed_events became a view: 100 events stored ten days ago, 100 an hour ago
            Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
            List<Map.Entry<String, byte[]>> recent = new ArrayList<>();
            List<Instant> times = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                times.add(i < 100 ? now.minus(10, ChronoUnit.DAYS).truncatedTo(ChronoUnit.DAYS).plus(i, ChronoUnit.MINUTES)
                        : now.minus(200 - i, ChronoUnit.SECONDS));
            }
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute(Files.readString(Path.of("src/test/resources/two-table-partitioned-schema.sql")));
                for (Instant day : new java.util.TreeSet<>(times.stream().map(t -> t.truncatedTo(ChronoUnit.DAYS)).toList())) {
                    String suffix = day.toString().substring(0, 10).replace("-", "");
                    for (String table : List.of("metrics", "processed_events")) {
                        st.execute("CREATE TABLE " + table + "_p" + suffix + " PARTITION OF " + table + " FOR VALUES FROM ('"
                                + day + "') TO ('" + day.plus(1, ChronoUnit.DAYS) + "')");
                    }
                }
                for (int i = 0; i < times.size(); i++) {
                    st.execute("INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset, event_time) VALUES ('before-"
                            + i + "', 's1', 0, " + (1_000_000 + i) + ", '" + times.get(i) + "')");
                    st.execute("INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s1', 'before-" + i + "', '"
                            + times.get(i) + "', " + i + ")");
                    if (i >= 100) {
                        recent.add(Map.entry("s1", utf8(LoadGenerator.reading("s1", "before-" + i, times.get(i), i))));
                    }
                }
            }
            p.set("retention.days", "5").set("db.partition.maintenance-interval-ms", "1000");
            p.startService();
            p.send(recent); // redelivered: already stored, so skipped
            LoadGenerator.Summary after = LoadGenerator.produce(p.load(100, 5_000));
            p.awaitCaughtUp(CATCH_UP);
            Pipeline.await("the old table's expired partition dropped", Duration.ofSeconds(60), () -> Pipeline.safe(() -> p.count(
                    "SELECT count(*) FROM processed_events_legacy WHERE event_time < now() - INTERVAL '6 days'") == 0));

            assertEquals(1, p.count("SELECT count(*) FROM pg_class WHERE relname = 'processed_events' AND relkind = 'v'"));
            p.assertExactlyOnce(100 + after.valid());
            assertEquals(0, p.count("SELECT count(*) FROM metrics WHERE timestamp < now() - INTERVAL '6 days'"));
            assertEquals(100, p.count("SELECT count(*) FROM processed_events WHERE kafka_offset >= 1000000"), "the claims stored before, as they were");
            assertEquals(100, p.count("SELECT count(*) FROM processed_events_legacy"), "no batch writes the old table");
            assertEquals(0, p.progress().getFailures());
            p.awaitRollupsExact();
        }
    }

    @Test
    void aReferenceSchemaDatabaseKeepsWorkingAndMigratesWithoutLoss() throws Exception {
        try (Pipeline p = Pipeline.scenario("migration", 4)) {
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute(Files.readString(Path.of("src/test/resources/reference-schema.sql")));
            }
            p.set("db.schema.create", "false");
            p.startService();
            LoadGenerator.Summary before = LoadGenerator.produce(p.load(300, 8_000).withShares(0.05, 0.01));
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(before.valid());
            assertEquals(0, p.count("SELECT count(*) FROM pg_partitioned_table"), "the reference tables are left as they are");
            long maxId = p.count("SELECT max(id) FROM metrics");
            // no rollups on this layout: the summary counts the readings, and series say why there are none
            var summary = p.get("/api/metrics/summary");
            assertEquals(before.valid(), new com.fasterxml.jackson.databind.ObjectMapper().readTree(summary.getValue()).get("total_events").asLong());
            var series = p.get("/api/metrics/series?sensorId=sensor_1&step=1h");
            assertEquals(404, series.getKey(), series.getValue());
            assertTrue(series.getValue().contains("ROLLUPS_ENABLED=true and the partitioned layout"), series.getValue());
            p.stopService();

            p.migrateToPartitionedLayout();
            assertEquals(5, p.count("SELECT count(*) FROM pg_partitioned_table"), "metrics and the four rollups");
            p.assertExactlyOnce(before.valid());
            assertEquals(0, p.count("SELECT count(*) FROM processed_events WHERE kafka_offset IS NULL"), "each claim's Kafka coordinates kept");
            assertEquals(maxId, p.count("SELECT max(id) FROM metrics"), "metrics.id kept");

            // an operator replays the whole topic after the migration, and new events arrive
            Map<TopicPartition, OffsetAndMetadata> start = new HashMap<>();
            for (int partition = 0; partition < 4; partition++) {
                start.put(new TopicPartition(p.topic, partition), new OffsetAndMetadata(0));
            }
            p.admin().alterConsumerGroupOffsets(p.group, start).all().get();
            p.set("db.schema.create", "true");
            p.startService();
            LoadGenerator.Summary after = LoadGenerator.produce(p.load(300, 8_000).withShares(0.05, 0.01));
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(before.valid() + after.valid());
            assertEquals(before.invalid() + after.invalid(), p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(before.valid(), p.count("SELECT count(*) FROM metrics WHERE id <= " + maxId), "new ids continue after the old ones");
            assertEquals(0, p.progress().getFailures());
            p.awaitRollupsExact();
        }
    }
}
