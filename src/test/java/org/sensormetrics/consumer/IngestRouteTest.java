package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The ingest route on a real Kafka broker and a real PostgreSQL server. Every scenario counts rows and
 * committed offsets afterwards: each valid event exactly once, each invalid record once with its reason.
 */
class IngestRouteTest {

    private static final Duration CATCH_UP = Duration.ofMinutes(3);

    @Test
    void storesEveryEventExactlyOnceAndCommitsToTheEnd() throws Exception {
        try (Pipeline p = Pipeline.scenario("bulk", 12)) {
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(1000, 20_000));
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(sent.valid());
            assertEquals(0, p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(12, p.committedOffsets().size(), "every partition has a committed offset");
        }
    }

    @Test
    void storesDuplicatesOnceWhetherInTheSamePollOrLater() throws Exception {
        try (Pipeline p = Pipeline.scenario("dups", 12)) {
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(200, 10_000).withShares(0.1, 0));
            assertTrue(sent.duplicates() > 800, "about a tenth sent twice: " + sent);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(sent.valid());
            assertEquals(sent.duplicates(), p.progress().getDuplicates());
        }
    }

    @Test
    void keepsEachSensorsRowsInKafkaOffsetOrder() throws Exception {
        try (Pipeline p = Pipeline.scenario("order", 6)) {
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(50, 10_000));
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(sent.valid());
            assertEquals(0, p.count("""
                    SELECT count(*) FROM (
                      SELECT p.kafka_offset, lag(p.kafka_offset) OVER (PARTITION BY m.sensor_id ORDER BY m.id) AS previous
                      FROM metrics m JOIN processed_events p USING (event_id)) rows
                    WHERE previous > kafka_offset"""), "a sensor's metrics.id order differs from its offset order");
        }
    }

    @Test
    void recordsEveryKindOfInvalidRecordOnceAndStoresTheValidOnesAroundThem() throws Exception {
        try (Pipeline p = Pipeline.scenario("invalid", 3)) {
            p.startService();
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            int valid = 0;
            int i = 0;
            for (var kind : LoadGenerator.INVALID_KINDS.entrySet()) {
                records.add(Map.entry("sensor_" + i, reading("sensor_" + i, "ok-before-" + i)));
                records.add(Map.entry("sensor_" + i, kind.getValue().apply(i)));
                records.add(Map.entry("sensor_" + i, reading("sensor_" + i, "ok-after-" + i)));
                valid += 2;
                i++;
            }
            // accepted forms: epoch seconds, epoch milliseconds, other offsets, extra fields, non-ASCII text, and
            // years more than 292 away from 1970 (which once overflowed a nanosecond count and failed the batch)
            records.add(Map.entry("s", utf8("{\"sensor_id\":\"s\",\"event_id\":\"epoch-s\",\"timestamp\":1705314645.5,\"value\":1}")));
            records.add(Map.entry("s", utf8("{\"sensor_id\":\"s\",\"event_id\":\"epoch-ms\",\"timestamp\":1705314645123,\"value\":2}")));
            records.add(Map.entry("s", utf8("{\"sensor_id\":\"s\",\"event_id\":\"offset\",\"timestamp\":\"2024-01-15T12:30:45.123456789+02:00\",\"value\":-3.5,\"unit\":\"°C\"}")));
            records.add(Map.entry("s", utf8("{\"sensor_id\":\"s\",\"event_id\":\"far-epoch-ms\",\"timestamp\":10000000000000,\"value\":4}")));
            records.add(Map.entry("s", utf8("{\"sensor_id\":\"s\",\"event_id\":\"year-100\",\"timestamp\":\"0100-03-01T00:00:00.5Z\",\"value\":5}")));
            valid += 5;
            p.send(records);
            p.awaitCaughtUp(CATCH_UP);

            int invalid = LoadGenerator.INVALID_KINDS.size();
            p.assertExactlyOnce(valid);
            assertEquals(invalid, p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(invalid, p.count("SELECT count(DISTINCT (kafka_topic, kafka_partition, kafka_offset)) FROM rejected_events"));
            assertEquals(0, p.count("SELECT count(*) FROM rejected_events WHERE reason = '' OR kafka_offset IS NULL OR record_key IS NULL"));
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events WHERE payload_encoding = 'base64'"), "binary garbage kept as base64");
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events WHERE reason LIKE 'payload of % bytes exceeds%'"));
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events WHERE payload = 'sensor_1 42.5 0' OR payload LIKE 'sensor_1 42.5%'"));
            assertEquals(1, p.count("""
                    SELECT count(*) FROM metrics WHERE event_id = 'epoch-s' AND timestamp = '2024-01-15T10:30:45.5Z'"""));
            assertEquals(1, p.count("""
                    SELECT count(*) FROM metrics WHERE event_id = 'epoch-ms' AND timestamp = '2024-01-15T10:30:45.123Z'"""));
            assertEquals(1, p.count("""
                    SELECT count(*) FROM metrics WHERE event_id = 'offset' AND timestamp = '2024-01-15T10:30:45.123457Z'"""));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'far-epoch-ms' AND timestamp = '2286-11-20T17:46:40Z'"));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'year-100' AND timestamp = '0100-03-01T00:00:00.5Z'"));
            assertEquals(invalid, p.progress().getRejected());
            assertEquals(0, p.progress().getFailures(), "no invalid record may fail a batch");
        }
    }

    @Test
    void commitsNothingWhileTheDatabaseRefusesWritesAndLosesNothingAfterwards() throws Exception {
        try (Pipeline p = Pipeline.scenario("readonly", 4)) {
            p.startService();
            var load = p.load(100, 5_000);
            LoadGenerator.Summary first = LoadGenerator.produce(load);
            p.awaitCaughtUp(CATCH_UP);

            p.awaitSettledGroup(2); // both poll threads (CONSUMER_THREADS)
            int generation = EmbeddedKafka.generation(p.group);
            List<String> members = p.members();
            p.refuseWrites(true);
            Map<TopicPartition, Long> before = p.committedOffsets();
            LoadGenerator.Summary second = LoadGenerator.produce(load.withEvents(5_000).withSeed(load.seed() + 1));
            Pipeline.await("failed batches", Duration.ofSeconds(60), () -> p.progress().getFailures() >= 2);
            for (int look = 0; look < 5; look++) {
                assertEquals(before, p.committedOffsets(), "no offset may move while writes fail");
                Thread.sleep(1000);
            }
            assertEquals(first.valid(), p.count("SELECT count(*) FROM metrics"));

            p.refuseWrites(false);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(first.valid() + second.valid());
            // failed batches are retried by consumers that keep their membership and partitions
            assertEquals(generation, EmbeddedKafka.generation(p.group), "rebalances while batches failed");
            assertEquals(members, p.members(), "the group's members after the failures");
        }
    }

    @Test
    void resumesWithoutLossOrDoublesAfterAStopMidStream() throws Exception {
        try (Pipeline p = Pipeline.scenario("restart", 12)) {
            p.startService();
            // the stream's first half races the stop; its second half is sent while the service is down, so the stop
            // is mid-stream by construction (sent at once, all 30,000 could be stored before a stop took effect)
            var half = p.load(500, 15_000);
            Thread producer = new Thread(() -> LoadGenerator.produce(half));
            producer.start();
            Pipeline.await("first rows", Duration.ofSeconds(60), () -> p.progress().getStored() > 3000);
            p.stopService();
            long storedAtStop = p.count("SELECT count(*) FROM metrics");
            producer.join();
            LoadGenerator.produce(half.withSeed(half.seed() + 1));
            p.startService();
            p.awaitCaughtUp(CATCH_UP);
            assertTrue(storedAtStop < 2 * half.events(), "stopped mid-stream");
            p.assertExactlyOnce(2 * half.events());
        }
    }

    @Test
    void startingAtTheEndSkipsOldRecordsButNeverTheRecordsOfAFailedFirstBatch() throws Exception {
        try (Pipeline p = Pipeline.scenario("latest", 4)) {
            var load = p.load(100, 2_000);
            LoadGenerator.produce(load); // before the group exists: not to be read
            Instant since = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MICROS);
            p.set("kafka.from-beginning", "false");
            p.startService();
            Pipeline.await("group positioned at the end", Duration.ofSeconds(60), () -> Pipeline.safe(() -> p.committedOffsets().size() == 4));
            p.refuseWrites(true);
            LoadGenerator.Summary fresh = LoadGenerator.produce(load.withEvents(3_000).withSeed(load.seed() + 1));
            Pipeline.await("a failed first batch", Duration.ofSeconds(60), () -> p.progress().getFailures() >= 1);
            p.refuseWrites(false);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(fresh.valid());
            assertEquals(0, p.count("SELECT count(*) FROM metrics WHERE timestamp < '" + since + "'"),
                    "records from before the group's first start are not read");
        }
    }

    @Test
    void storesSqlInjectionStringsVerbatimAndHarmless() throws Exception {
        try (Pipeline p = Pipeline.scenario("injection", 1)) {
            p.startService();
            String[] evil = {"'); DROP TABLE metrics; --", "x' OR '1'='1", "\\\\'; DELETE FROM processed_events; --",
                    "$$; TRUNCATE metrics; $$", "Robert'); DROP TABLE rejected_events;--", ":#rows", "?", "${body}"};
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            for (int i = 0; i < evil.length; i++) {
                String s = json(evil[i]);
                records.add(Map.entry(evil[i], utf8("{\"sensor_id\":" + s + ",\"event_id\":" + json(evil[i] + i)
                        + ",\"timestamp\":\"2024-01-15T10:30:45Z\",\"value\":" + i + ",\"note\":" + s + "}")));
                records.add(Map.entry(evil[i], utf8("{\"sensor_id\":" + s + ",\"event_id\":" + json("bad" + i)
                        + ",\"timestamp\":" + s + ",\"value\":1}")));
            }
            p.send(records);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(evil.length);
            assertEquals(evil.length, p.count("SELECT count(*) FROM rejected_events"));
            try (var c = p.db(); var st = c.prepareStatement("SELECT count(*) FROM metrics WHERE sensor_id = ? AND event_id = ?")) {
                for (int i = 0; i < evil.length; i++) {
                    st.setString(1, evil[i]);
                    st.setString(2, evil[i] + i);
                    try (ResultSet rs = st.executeQuery()) {
                        rs.next();
                        assertEquals(1, rs.getLong(1), "stored verbatim: " + evil[i]);
                    }
                }
            }
            try (var c = p.db(); var st = c.prepareStatement("SELECT count(*) FROM rejected_events WHERE record_key = ? AND reason LIKE '%' || ? || '%'")) {
                for (String e : evil) {
                    st.setString(1, e);
                    st.setString(2, e);
                    try (ResultSet rs = st.executeQuery()) {
                        rs.next();
                        assertEquals(1, rs.getLong(1), "reason quotes the bad timestamp verbatim: " + e);
                    }
                }
            }
        }
    }

    /** A batch of readings only goes through COPY's text format: its escapes and its timestamps must be exact. */
    @Test
    void copiesTextThatCopyEscapesAndTimesAtTheEndsOfTheRangeVerbatim() throws Exception {
        try (Pipeline p = Pipeline.scenario("copy_text", 1)) {
            p.startService();
            // as JSON string literals: \t is a tab, \\ one backslash, \\N the two characters COPY would read as null
            String[] texts = {"tab\\there", "new\\nline", "carriage\\rreturn", "back\\\\slash", "\\\\N", "\\\\.", "°C ü 漢字 🚀",
                    "mixed\\t°\\\\\\n🚀", "'); DROP TABLE metrics; --", " leading and trailing "};
            String[] times = {"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z",
                    "1970-01-01T00:00:00.000001Z", "2024-02-29T12:34:56.5+05:30"};
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            for (int i = 0; i < texts.length; i++) {
                records.add(Map.entry("k" + i, utf8("{\"sensor_id\":\"" + texts[i] + "\",\"event_id\":\"" + texts[i] + i
                        + "\",\"timestamp\":\"" + times[i % times.length] + "\",\"value\":" + (i - 0.1) + "}")));
            }
            p.send(records);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(texts.length);
            try (var c = p.db(); var st = c.prepareStatement("""
                    SELECT count(*) FROM metrics m JOIN processed_events e USING (event_id)
                    WHERE m.sensor_id = ? AND m.event_id = ? AND m.timestamp = ? AND e.event_time = m.timestamp AND m.value = ?""")) {
                for (int i = 0; i < texts.length; i++) {
                    String text = new com.fasterxml.jackson.databind.ObjectMapper().readValue("\"" + texts[i] + "\"", String.class);
                    st.setString(1, text);
                    st.setString(2, text + i);
                    st.setObject(3, java.time.OffsetDateTime.parse(times[i % times.length]));
                    st.setDouble(4, i - 0.1);
                    try (ResultSet rs = st.executeQuery()) {
                        rs.next();
                        assertEquals(1, rs.getLong(1), "stored verbatim: " + text + " at " + times[i % times.length]);
                    }
                }
            }
        }
    }

    private static byte[] reading(String sensor, String eventId) {
        return utf8(LoadGenerator.reading(sensor, eventId, Instant.parse("2024-01-15T10:30:45.123456789Z"), 42.5));
    }

    private static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\');
            }
            b.append(c);
        }
        return b.append('"').toString();
    }

}
