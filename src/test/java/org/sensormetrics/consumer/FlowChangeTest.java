package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;

/**
 * The two changes of the flow that live in YAML and properties only (routes/ingest/drop-ignored-sensors.camel.yaml,
 * routes/ingest/send-alerts.camel.yaml), switched on by their properties and run from real Kafka into real PostgreSQL.
 */
class FlowChangeTest {

    private static final String TS = "\"timestamp\":\"2026-01-15T10:30:45Z\"";

    private static Map.Entry<String, byte[]> reading(String sensor, String eventId, double value) {
        return Map.entry(sensor, utf8("{\"sensor_id\":\"" + sensor + "\",\"event_id\":\"" + eventId + "\"," + TS + ",\"value\":" + value + "}"));
    }

    /**
     * Readings of the listed sensors are neither stored nor rejected, and counted; their offsets are committed with
     * their batch's, also where they are the last records of a partition.
     */
    @Test
    void readingsOfIgnoredSensorsAreDroppedBeforeStorageAndCounted() throws Exception {
        try (Pipeline p = Pipeline.scenario("ignored", 1)) {
            p.set("ingest.ignored-sensors", "test-bench,old-probe").startService();
            p.send(List.of(reading("s1", "kept-1", 1), reading("test-bench", "dropped-1", 2), reading("s2", "kept-2", 3),
                    Map.entry("old-probe", utf8("not json")), reading("old-probe", "dropped-2", 4),
                    reading("test-bench", "dropped-3", 5)));
            p.awaitCaughtUp(Duration.ofMinutes(2));

            p.assertExactlyOnce(2);
            assertEquals(0, p.count("SELECT count(*) FROM metrics WHERE sensor_id IN ('test-bench', 'old-probe')"));
            // a record that is no reading names no sensor: it is rejected as ever
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(3.0, Benchmark.metric(p.get("/observe/metrics").getValue(), "sensor_metrics_readings_ignored_total"));
            assertEquals(Map.of(new TopicPartition(p.topic, 0), 6L), p.committedOffsets());
            assertEquals(0, p.progress().getFailures());
        }
    }

    /**
     * Readings above the threshold go to the alerts topic keyed by sensor, once each, and only after their batch has
     * committed: while the database refuses writes, none is sent.
     */
    @Test
    void readingsAboveTheThresholdAreSentToTheAlertsTopicOnlyOnceStored() throws Exception {
        try (Pipeline p = Pipeline.scenario("alerts", 2)) {
            String alerts = p.topic + "_alerts";
            Pipeline.kafka().createTopic(alerts, 1);
            p.set("alerts.threshold", "50").set("alerts.topic", alerts).startService();
            p.send(List.of(reading("s1", "low", 49.9), reading("s1", "at", 50), reading("s2", "high", 50.5),
                    Map.entry("s3", utf8("{\"sensor_id\":\"s3\",\"event_id\":\"invalid\",\"value\":99}"))));
            p.awaitCaughtUp(Duration.ofMinutes(2));

            p.refuseWrites(true);
            p.send(List.of(reading("s3", "while-refused", 80)));
            Pipeline.await("a failed batch", Duration.ofMinutes(1), () -> p.progress().getFailures() > 0);
            List<ConsumerRecord<String, String>> sent = readAll(p, alerts);
            assertEquals(List.of("s2"), sent.stream().map(ConsumerRecord::key).toList(), "alerts before the writes were refused");

            p.refuseWrites(false);
            p.awaitCaughtUp(Duration.ofMinutes(2));
            p.assertExactlyOnce(4);
            sent = readAll(p, alerts);
            assertEquals(List.of("s2", "s3"), sent.stream().map(ConsumerRecord::key).toList());
            JsonNode alert = new ObjectMapper().readTree(sent.get(1).value());
            assertEquals("while-refused", alert.get("eventId").asText());
            assertEquals("s3", alert.get("sensorId").asText());
            assertEquals(80.0, alert.get("value").asDouble());
        }
    }

    /** Every record on the topic so far, in order (one partition). */
    private static List<ConsumerRecord<String, String>> readAll(Pipeline p, String topic) {
        Properties props = p.kafkaClientProperties();
        List<ConsumerRecord<String, String>> all = new ArrayList<>();
        try (var consumer = new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            while (consumer.position(tp) < end) {
                consumer.poll(Duration.ofMillis(200)).forEach(all::add);
            }
        }
        return all;
    }
}
