package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;

/**
 * What an operator and a dashboard see over HTTP, on the real broker and database: health, Prometheus
 * metrics (every one the Grafana dashboard queries), and the read API with its 400s.
 */
class OperateServiceTest {

    private static final Duration CATCH_UP = Duration.ofMinutes(3);
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void readApiAsksForCredentialsWhenGivenUsersWhileProbesAndMetricsStayOpen() throws Exception {
        String password = "api-secret-" + System.nanoTime();
        Path users = Files.createTempFile("api-users", ".properties");
        Files.writeString(users, "user.dashboard = " + password + "\n");
        try (Pipeline p = Pipeline.scenario("api_auth", 1).withEnv("API_AUTH_ENABLED", "true").withEnv("API_BASIC_AUTH_FILE", users.toString())) {
            p.startService();
            Pipeline.await("readiness UP without credentials", Duration.ofSeconds(60),
                    () -> Pipeline.safe(() -> p.get("/observe/health/ready").getKey() == 200));
            assertEquals(200, p.get("/observe/metrics").getKey());
            assertEquals(200, p.get("/observe/health/live").getKey());
            String api = "/api/metrics?limit=1";
            var refused = Pipeline.get(p.httpPort, api, null);
            System.out.println("without credentials: " + refused.getKey());
            assertEquals(401, refused.getKey());
            assertEquals(401, Pipeline.get(p.httpPort, api, basic("dashboard", "not-" + password)).getKey());
            assertEquals(401, Pipeline.get(p.httpPort, "/api/metrics/summary", null).getKey());
            var allowed = Pipeline.get(p.httpPort, api, basic("dashboard", password));
            System.out.println("with credentials: " + allowed.getKey() + " " + allowed.getValue());
            assertEquals(200, allowed.getKey());
        } finally {
            Files.delete(users);
        }
    }

    /** A static member's consumers have client ids of their own; readiness must still find their partitions. */
    @Test
    void readinessIsUpForAStaticMember() throws Exception {
        try (Pipeline p = Pipeline.scenario("static_ready", 2).withEnv("KAFKA_GROUP_INSTANCE_ID", "static-ready")) {
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(10, 500));
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(sent.valid());
            Pipeline.await("readiness UP", Duration.ofSeconds(30), () -> Pipeline.safe(() -> p.get("/observe/health/ready").getKey() == 200));
            assertEquals(List.of("static-ready-0", "static-ready-1"), p.members());
        }
    }

    private static String basic(String user, String password) {
        return "Basic " + java.util.Base64.getEncoder().encodeToString(utf8(user + ":" + password));
    }

    @Test
    void servesHealthMetricsAndTheReadApiAfterTraffic() throws Exception {
        try (Pipeline p = Pipeline.scenario("operate", 3)) {
            p.startService();
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            Instant t0 = Instant.parse("2024-01-15T10:00:00Z");
            for (int i = 0; i < 10; i++) {
                records.add(Map.entry("s-a", utf8(LoadGenerator.reading("s-a", "a-" + i, t0.plusSeconds(i), i))));
            }
            records.add(Map.entry("s-b", utf8(LoadGenerator.reading("s-b", "b-0", t0, 100))));
            records.add(Map.entry("s-b", utf8("not json")));
            records.add(Map.entry("s-b", utf8("{\"sensor_id\":\"s-b\",\"event_id\":\"b-1\",\"timestamp\":\"yesterday\",\"value\":1}")));
            p.send(records);
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(11);
            // the pool's sessions plan without JIT compilation (docs/decisions.md 25) and under the statement timeout
            assertEquals("off", p.serviceSessionSetting("jit"));
            assertEquals("1min", p.serviceSessionSetting("statement_timeout"));

            // lag reaches 0 on the service's own gauge, and every readiness check is UP
            Pipeline.await("lag gauge 0 on every partition", Duration.ofSeconds(30), () -> Pipeline.safe(() -> {
                String scrape = p.get("/observe/metrics").getValue();
                return Pattern.compile("^sensor_metrics_consumer_lag_records\\{[^}]*} 0\\.0$", Pattern.MULTILINE)
                        .matcher(scrape).results().count() == 3;
            }));
            var ready = p.get("/observe/health/ready");
            assertEquals(200, ready.getKey(), ready.getValue());
            JsonNode checks = JSON.readTree(ready.getValue()).get("checks");
            for (String check : List.of("database", "kafka-consumer-group", "ingest")) {
                assertEquals("UP", status(checks, check), ready.getValue());
            }
            assertEquals(200, p.get("/observe/health/live").getKey());

            String scrape = p.get("/observe/metrics").getValue();
            assertTrue(scrape.contains("\nsensor_metrics_events_stored_total 11.0"), scrape);
            assertTrue(scrape.contains("\nsensor_metrics_records_rejected_total{reason=\"not_json\"} 1.0"), scrape);
            assertTrue(scrape.contains("\nsensor_metrics_records_rejected_total{reason=\"invalid_timestamp\"} 1.0"), scrape);
            // each batch's transaction (Camel's route timer of store-batch), its offset commit, its size
            for (String timer : List.of("camel_route_policy_seconds_count\\{[^}]*routeId=\"store-batch\"[^}]*}",
                    "sensor_metrics_offset_commit_seconds_count", "sensor_metrics_batch_size_count")) {
                Matcher count = Pattern.compile("^" + timer + "(\\{[^}]*})? ([0-9.]+)$", Pattern.MULTILINE).matcher(scrape);
                assertTrue(count.find() && Double.parseDouble(count.group(2)) >= 1, timer + " in " + scrape);
            }
            Set<String> exposed = new TreeSet<>();
            Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)", Pattern.MULTILINE).matcher(scrape).results()
                    .forEach(m -> exposed.add(m.group(1)));
            Set<String> queried = dashboardMetrics();
            assertTrue(queried.size() >= 8, "the dashboard queries " + queried);
            queried.removeAll(exposed);
            assertEquals(Set.of(), queried, "metrics the Grafana dashboard queries but the service does not expose");

            // read API: newest first, paging, time range, summary, rejected
            JsonNode page = json(p.get("/api/metrics?sensorId=s-a&limit=3"));
            assertEquals(3, page.size());
            assertEquals("a-9", page.get(0).get("event_id").asText());
            assertEquals("a-7", page.get(2).get("event_id").asText());
            assertEquals("a-6", json(p.get("/api/metrics?sensorId=s-a&limit=1&offset=3")).get(0).get("event_id").asText());
            JsonNode range = json(p.get("/api/metrics?sensorId=s-a&from=2024-01-15T10:00:02Z&to=2024-01-15T12:00:04%2B02:00"));
            assertEquals(3, range.size(), range.toString()); // 10:00:02 to 10:00:04 UTC
            assertEquals(11, json(p.get("/api/metrics")).size());

            JsonNode summary = json(p.get("/api/metrics/summary?sensorId=s-a"));
            assertEquals(10, summary.get("total_events").asLong());
            assertEquals(t0, Instant.parse(summary.get("from").asText().replace("+00:00", "Z")));
            assertEquals(t0.plusSeconds(9), Instant.parse(summary.get("to").asText().replace("+00:00", "Z")));
            assertTrue(summary.get("lag_seconds").asDouble() > 0);
            assertEquals(0, json(p.get("/api/metrics/summary?sensorId=nobody")).get("total_events").asLong());

            JsonNode rejected = json(p.get("/api/rejected?limit=1"));
            assertEquals(1, rejected.size());
            assertTrue(rejected.get(0).get("reason").asText().startsWith("timestamp \"yesterday\""), rejected.toString());
            assertEquals(2, json(p.get("/api/rejected")).size());

            // bad parameters: 400, naming the parameter
            assertBadRequest(p, "/api/metrics?limit=0", "limit");
            assertBadRequest(p, "/api/metrics?limit=abc", "limit");
            assertBadRequest(p, "/api/metrics?limit=1000000", "limit");
            assertBadRequest(p, "/api/metrics?offset=-1", "offset");
            assertBadRequest(p, "/api/metrics?from=yesterday", "from");
            assertBadRequest(p, "/api/metrics/summary?to=2024-13-01T00:00:00Z", "to");
            assertBadRequest(p, "/api/metrics?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from");
            assertBadRequest(p, "/api/metrics?sensorId=" + "x".repeat(256), "sensorId");
            assertBadRequest(p, "/api/rejected?limit=-5", "limit");
            assertBadRequest(p, "/api/metrics?sensorId=a&sensorId=b", "sensorId");
            assertEquals(404, p.get("/api/nothing").getKey());
        }
    }

    @Test
    void readinessIsDownWithTheReasonWhileTheDatabaseIsDownAndRecoversAlone() throws Exception {
        try (Pipeline p = Pipeline.scenario("ready", 2)) {
            p.startService();
            LoadGenerator.Summary first = LoadGenerator.produce(p.load(10, 1_000));
            p.awaitCaughtUp(CATCH_UP);
            Pipeline.await("ready", Duration.ofSeconds(30), () -> Pipeline.safe(() -> p.get("/observe/health/ready").getKey() == 200));

            Pipeline.postgres().stop();
            try {
                LoadGenerator.Summary second = LoadGenerator.produce(p.load(10, 1_000).withSeed(7));
                Pipeline.await("readiness DOWN naming the database", Duration.ofSeconds(60), () -> Pipeline.safe(() -> {
                    var ready = p.get("/observe/health/ready");
                    JsonNode checks = JSON.readTree(ready.getValue()).get("checks");
                    return ready.getKey() == 503 && "DOWN".equals(status(checks, "database"))
                            && message(checks, "database").startsWith("PostgreSQL unreachable")
                            && "DOWN".equals(status(checks, "ingest"));
                }));
                Pipeline.postgres().restart();
                p.awaitCaughtUp(CATCH_UP);
                Pipeline.await("ready again", Duration.ofSeconds(60), () -> Pipeline.safe(() -> p.get("/observe/health/ready").getKey() == 200));
                p.assertExactlyOnce(first.valid() + second.valid());
            } finally {
                if (!Pipeline.safe(() -> p.count("SELECT 1") == 1)) {
                    Pipeline.postgres().restart();
                }
            }
        }
    }

    @Test
    void readinessNamesAnUnreachableBroker() throws Exception {
        int closedPort = EmbeddedPostgres.freePort();
        try (Pipeline p = Pipeline.scenario("nobroker", 1).set("kafka.brokers", "127.0.0.1:" + closedPort)) {
            p.startService();
            Pipeline.await("readiness DOWN naming the broker", Duration.ofSeconds(60), () -> Pipeline.safe(() -> {
                var ready = p.get("/observe/health/ready");
                return ready.getKey() == 503
                        && message(JSON.readTree(ready.getValue()).get("checks"), "kafka-consumer-group")
                                .startsWith("Kafka unreachable at 127.0.0.1:" + closedPort);
            }));
            assertEquals(200, p.get("/observe/health/live").getKey(), "alive: restarting would not bring the broker back");
        }
    }

    @Test
    void readinessIsDownWhileThisInstanceHasNoPartition() throws Exception {
        try (Pipeline p = Pipeline.scenario("idle", 1).set("consumer.threads", "1")) {
            // another member of the group holds the only partition: the range assignor gives it to the
            // member id that sorts first, and "a-..." sorts before the service's "consumer-..."
            Properties props = new Properties();
            props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Pipeline.kafka().bootstrapServers());
            props.put(ConsumerConfig.GROUP_ID_CONFIG, p.group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, "a-partition-holder");
            props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            AtomicBoolean holding = new AtomicBoolean(true);
            Thread holder = new Thread(() -> {
                try (var other = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                    other.subscribe(List.of(p.topic));
                    while (holding.get()) {
                        other.poll(Duration.ofMillis(200));
                    }
                }
            });
            holder.start();
            try {
                p.startService();
                Pipeline.await("readiness DOWN: no partition here", Duration.ofSeconds(90), () -> Pipeline.safe(() -> {
                    var ready = p.get("/observe/health/ready");
                    return ready.getKey() == 503 && message(JSON.readTree(ready.getValue()).get("checks"), "kafka-consumer-group")
                            .startsWith("no partition of " + p.topic + " is assigned to this instance");
                }));
            } finally {
                holding.set(false);
                holder.join(30_000);
            }
            // the other member left: the partition comes here, and so does readiness
            Pipeline.await("readiness UP", Duration.ofSeconds(90), () -> Pipeline.safe(() -> p.get("/observe/health/ready").getKey() == 200));
        }
    }

    @Test
    void lagDoesNotCountRecordsRetentionDeletedBeforeTheGroupReadThem() throws Exception {
        try (Pipeline p = Pipeline.scenario("retention", 2)) {
            Instant t0 = Instant.parse("2024-01-15T10:00:00Z");
            List<Map.Entry<String, byte[]>> old = new ArrayList<>();
            List<Map.Entry<String, byte[]>> kept = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                old.add(Map.entry("s-old", utf8(LoadGenerator.reading("s-old", "old-" + i, t0.plusSeconds(i), i))));
                kept.add(Map.entry("s-new", utf8(LoadGenerator.reading("s-new", "new-" + i, t0.plusSeconds(i), i))));
            }
            // partition 1 had records once, and retention deleted all of them before this group started
            p.send(1, old);
            var partition1 = new org.apache.kafka.common.TopicPartition(p.topic, 1);
            p.admin().deleteRecords(Map.of(partition1, org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(5))).all().get();
            p.send(0, kept);
            p.startService();
            p.awaitCaughtUp(CATCH_UP);
            p.assertExactlyOnce(5);
            // the group never commits partition 1 (nothing left to read there); its lag is still 0, not 5
            Pipeline.await("lag gauge 0 on both partitions", Duration.ofSeconds(30), () -> Pipeline.safe(() ->
                    Pattern.compile("^sensor_metrics_consumer_lag_records\\{[^}]*} 0\\.0$", Pattern.MULTILINE)
                            .matcher(p.get("/observe/metrics").getValue()).results().count() == 2));
            assertFalse(p.committedOffsets().containsKey(partition1));
        }
    }

    @Test
    void theConsumerGroupCheckConnectsLikeTheConsumers() throws Exception {
        // TLS against the plaintext test broker: if the admin client took the component's security settings,
        // it cannot connect either, and says so (instead of "no partition assigned")
        try (Pipeline p = Pipeline.scenario("tls", 1).set("camel.component.kafka.security-protocol", "SSL")) {
            p.startService();
            Pipeline.await("readiness DOWN naming the broker", Duration.ofSeconds(60), () -> Pipeline.safe(() ->
                    message(JSON.readTree(p.get("/observe/health/ready").getValue()).get("checks"), "kafka-consumer-group")
                            .startsWith("Kafka unreachable")));
        }
    }

    /** Metric names in the dashboard's PromQL: identifiers followed by a selector or a range. */
    static Set<String> dashboardMetrics() throws Exception {
        JsonNode dashboard = JSON.readTree(Files.readString(Path.of("deploy/grafana/sensor-metrics-dashboard.json")));
        Set<String> names = new TreeSet<>();
        Pattern metric = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)\\{");
        for (JsonNode panel : dashboard.get("panels")) {
            for (JsonNode target : panel.get("targets")) {
                Matcher m = metric.matcher(target.get("expr").asText());
                while (m.find()) {
                    names.add(m.group(1));
                }
            }
        }
        return names;
    }

    private static void assertBadRequest(Pipeline p, String path, String parameter) throws Exception {
        var response = p.get(path);
        assertEquals(400, response.getKey(), path + " -> " + response.getValue());
        JsonNode error = JSON.readTree(response.getValue());
        assertEquals(parameter, error.get("parameter").asText(), response.getValue());
        assertTrue(error.get("message").asText().startsWith(parameter + " "), response.getValue());
    }

    private static JsonNode json(Map.Entry<Integer, String> response) throws Exception {
        assertEquals(200, response.getKey(), response.getValue());
        return JSON.readTree(response.getValue());
    }

    private static String status(JsonNode checks, String name) {
        for (JsonNode check : checks) {
            if (name.equals(check.get("name").asText())) {
                return check.get("status").asText();
            }
        }
        return "missing";
    }

    private static String message(JsonNode checks, String name) {
        for (JsonNode check : checks) {
            if (name.equals(check.get("name").asText()) && check.has("message")) {
                return check.get("message").asText();
            }
        }
        return "";
    }
}
