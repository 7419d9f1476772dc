package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The packaged service against a broker whose only client listener is SASL_SSL (SCRAM-SHA-512, users made when
 * its storage was formatted), against one whose only listener is SSL with client certificates required, and
 * against a PostgreSQL that takes nothing but TLS with a password ({@code hostssl ... scram-sha-256}), reached
 * with {@code sslmode=verify-full}; certificates made by {@link TestCertificates}. Then the same service wrongly
 * configured, four ways. Everything every service process printed and served is searched for the secrets it was
 * given.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SecuredConnectionsIT {

    private static final String KAFKA_USER = "sensor-metrics";
    // quotes and a backslash: the JAAS line the service builds must quote them
    private static final String KAFKA_PASSWORD = "kafka-\"secret\\-" + System.nanoTime();
    private static final String DB_PASSWORD = "db-secret-" + System.nanoTime();
    private static final Path LOGS = Path.of("target/secured");

    private static TestCertificates certs;
    private static KafkaCluster broker;
    private static EmbeddedPostgres postgres;
    /** Every log written and every body served, with the secrets the process was given, for the last test. */
    private static final List<Path> logs = new ArrayList<>();
    private static final List<String> served = new ArrayList<>();
    private static final List<String> secrets = new ArrayList<>(List.of(KAFKA_PASSWORD, DB_PASSWORD, TestCertificates.PKCS12_PASSWORD));

    @BeforeAll
    static void startSecuredServers() throws Exception {
        Files.createDirectories(LOGS);
        certs = TestCertificates.create(LOGS.resolve("certificates"));
        broker = KafkaCluster.start(LOGS.resolve("kafka-sasl-ssl"), 1, KafkaCluster.Security.scram(certs, KAFKA_USER, KAFKA_PASSWORD));
        postgres = EmbeddedPostgres.startSecured(Path.of("target/secured-postgres"), certs, DB_PASSWORD);
    }

    @AfterAll
    static void stopServers() throws Exception {
        try {
            if (broker != null) {
                broker.close();
            }
        } finally {
            if (postgres != null) {
                postgres.close();
            }
        }
    }

    @Test
    void everyEventOnceOverSaslSslToKafkaAndVerifiedTlsToPostgres() throws Exception {
        try (Pipeline p = Pipeline.scenario("sasl_ssl", 6, broker.broker(), postgres)) {
            storesEveryEventOnce(p, "sasl-ssl", 20_000, Map.of());
        }
    }

    @Test
    void kill9ScenarioOfTheFaultSuiteOnTheSecuredServers() throws Exception {
        FaultSuite.Result r = FaultSuite.run("kill9", 100_000, broker, postgres);
        System.out.println(r);
        assertEquals(List.of(), r.violations());
        assertEquals(0, r.lost());
        assertEquals(0, r.duplicated());
        try (var scenarioLogs = Files.newDirectoryStream(Path.of("target/faults"), "kill9-*.log")) {
            scenarioLogs.forEach(logs::add);
        }
    }

    @Test
    void everyEventOnceOverMutualTls() throws Exception {
        try (KafkaCluster mtls = KafkaCluster.start(LOGS.resolve("kafka-mtls"), 1, KafkaCluster.Security.mutualTls(certs));
             Pipeline p = Pipeline.scenario("mtls", 6, mtls.broker(), postgres)) {
            // static members, whose clean stop leaves the group through an admin client of the consumers' settings:
            // without it they would stay members for the session timeout (30 s)
            storesEveryEventOnce(p, "mtls", 10_000, Map.of("KAFKA_GROUP_INSTANCE_ID", "mtls"));
            assertEquals(List.of(), p.members(), "left the group over mutual TLS");
        }
    }

    /**
     * A service on the scenario's servers, with env beside the scenario's settings, stores every event once, over
     * TLS only, and serves what it should; then it stops.
     */
    private static void storesEveryEventOnce(Pipeline p, String name, long events, Map<String, String> env) throws Exception {
        ServiceProcess service = start(p, name, env);
        try {
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(500, events), p.kafkaClientProperties());
            p.awaitCaughtUp(Duration.ofMinutes(3));
            p.assertExactlyOnce(sent.valid());
            assertServing(service);
            assertEquals(0, p.count("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                    + "WHERE a.application_name = 'sensor-metrics-consumer' AND NOT s.ssl"), "every connection of the service is TLS");
        } finally {
            assertTrue(service.stop(), "stops on SIGTERM");
        }
    }

    /** The replay tool as documented (its route, the security beans, its properties), settings as the service's. */
    @Test
    void replayToolSendsOverSaslSsl() throws Exception {
        try (Pipeline p = Pipeline.scenario("replay_sasl_ssl", 1, broker.broker(), postgres)) {
            Path dir = Files.createDirectories(LOGS.resolve(p.topic + "-replay"));
            org.apache.camel.main.Main replay = new org.apache.camel.main.Main();
            replay.configure().withRoutesIncludePattern("file:tools/replay-rejected.camel.yaml,file:routes/kafka-security.camel.yaml");
            replay.setPropertyPlaceholderLocations("file:tools/replay.properties");
            replay.addOverrideProperty("kafka.brokers", broker.bootstrapServers());
            replay.addOverrideProperty("kafka.topic", p.topic);
            replay.addOverrideProperty("replay.directory", dir.toString());
            // the tool's own property for each of the service's variables: kafka.sasl.password = {{env:KAFKA_SASL_PASSWORD:}}
            Map<String, String> keyOf = new HashMap<>();
            for (String line : Files.readAllLines(Path.of("tools/replay.properties"))) {
                var m = java.util.regex.Pattern.compile("^(\\S+) = \\{\\{env:(\\w+):").matcher(line);
                if (m.find()) {
                    keyOf.put(m.group(2), m.group(1));
                }
            }
            broker.broker().serviceEnvironment().forEach((name, value) -> replay.addOverrideProperty(keyOf.get(name), value));
            replay.start();
            try {
                Files.write(dir.resolve("fixed.jsonl"), List.of(
                        LoadGenerator.reading("s-1", "replayed-1", java.time.Instant.now(), 1),
                        LoadGenerator.reading("s-1", "replayed-2", java.time.Instant.now(), 2)));
                Pipeline.await("file replayed", Duration.ofMinutes(1), () -> Files.exists(dir.resolve("done").resolve("fixed.jsonl")));
                assertEquals(2L, p.offsets(org.apache.kafka.clients.admin.OffsetSpec.latest()).values().stream().mapToLong(Long::longValue).sum());
            } finally {
                replay.stop();
                replay.shutdown();
            }
        }
    }

    @Test
    void wrongKafkaPassword() throws Exception {
        refusedThenResumed("wrong-kafka-password", Map.of("KAFKA_SASL_PASSWORD", "not-" + KAFKA_PASSWORD), "kafka-consumer-group",
                "Authentication failed", null);
    }

    @Test
    void untrustedBrokerCertificate() throws Exception {
        refusedThenResumed("untrusted-broker", Map.of("KAFKA_SSL_TRUSTSTORE_LOCATION", certs.otherCa().toString()), "kafka-consumer-group",
                "certificate not trusted", null);
    }

    @Test
    void wrongDatabasePassword() throws Exception {
        refusedThenResumed("wrong-db-password", Map.of("DB_PASSWORD", "not-" + DB_PASSWORD), "database", "password authentication failed", null);
    }

    @Test
    void databaseCertificateForAnotherHost() throws Exception {
        refusedThenResumed("db-other-host", Map.of(), "database", "host name mismatch", "elsewhere");
    }

    /**
     * With the wrong setting the service stores nothing, readiness names the cause, and so does one log line per
     * retry, without a stack trace; started again with the right one, it stores every event once. certificate: what
     * PostgreSQL serves meanwhile (null: its own).
     */
    private void refusedThenResumed(String name, Map<String, String> wrong, String check, String cause, String certificate) throws Exception {
        secrets.addAll(wrong.values().stream().filter(v -> v.startsWith("not-")).toList());
        try (Pipeline p = Pipeline.scenario(name.replace('-', '_'), 2, broker.broker(), postgres)) {
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(50, 2_000), p.kafkaClientProperties());
            if (certificate != null) {
                postgres.serveCertificate(certs, certificate);
            }
            ServiceProcess refused = start(p, name, wrong);
            Path log = logs.get(logs.size() - 1);
            try {
                String message = awaitDown(refused.httpPort(), check, cause);
                System.out.println(name + ": readiness " + check + " DOWN: " + message);
                Thread.sleep(15_000);
                List<String> lines = Files.readAllLines(log);
                List<String> naming = lines.stream().filter(l -> l.contains(cause)).toList();
                System.out.println(name + ": " + naming.size() + " log lines name the cause, e.g. " + (naming.isEmpty() ? "none" : naming.get(0)));
                lines.stream().filter(l -> l.contains("WARN") || l.contains("ERROR")).map(l -> l.length() > 300 ? l.substring(0, 300) : l)
                        .distinct().limit(20).forEach(l -> System.out.println("   " + l));
                long stackLines = lines.stream().filter(l -> l.startsWith("\tat ")).count();
                System.out.println(name + ": stack trace lines " + stackLines);
                assertFalse(naming.isEmpty(), "a log line names the cause");
                // once per retry, whose back-off doubles from 1 s: a handful in these seconds, not one per poll
                assertTrue(naming.size() <= 20, naming.size() + " lines");
                assertEquals(0, stackLines, "no stack trace");
            } finally {
                boolean stopped = refused.stop();
                if (certificate != null) {
                    postgres.serveCertificate(certs, "server"); // which the test's own connections verify too
                }
                assertTrue(stopped, "stops on SIGTERM while it retries");
            }
            boolean schemaMade = p.count("SELECT count(*) FROM pg_class WHERE relname = 'metrics'") > 0;
            assertEquals(0, schemaMade ? p.count("SELECT count(*) FROM metrics") : 0, "nothing stored");
            ServiceProcess fixed = start(p, name + "-fixed", Map.of());
            try {
                p.awaitCaughtUp(Duration.ofMinutes(2));
                p.assertExactlyOnce(sent.valid());
            } finally {
                fixed.stop();
            }
        }
    }

    /** The message of the named readiness check once it is DOWN for that cause. */
    private static String awaitDown(int port, String check, String cause) throws Exception {
        String[] message = {null};
        Pipeline.await("readiness check " + check + " DOWN naming " + cause, Duration.ofSeconds(60), () -> Pipeline.safe(() -> {
            var ready = Pipeline.get(port, "/observe/health/ready");
            served.add("/observe/health/ready " + ready.getValue());
            for (var c : new com.fasterxml.jackson.databind.ObjectMapper().readTree(ready.getValue()).get("checks")) {
                if (ready.getKey() == 503 && check.equals(c.get("name").asText()) && "DOWN".equals(c.get("status").asText())) {
                    message[0] = c.path("message").asText();
                    return message[0].contains(cause);
                }
            }
            return false;
        }));
        return message[0];
    }

    /** Lag metric, readiness UP, the read API answering; what they served is kept for the secrets check. */
    private static void assertServing(ServiceProcess service) throws Exception {
        int port = service.httpPort();
        Pipeline.await("readiness UP", Duration.ofSeconds(30), () -> Pipeline.safe(() -> Pipeline.get(port, "/observe/health/ready").getKey() == 200));
        for (String path : List.of("/observe/health", "/observe/health/ready", "/observe/health/live", "/observe/metrics",
                "/api/metrics?limit=5", "/api/metrics/summary", "/api/rejected?limit=5")) {
            var answer = Pipeline.get(port, path);
            assertEquals(200, answer.getKey(), path + ": " + answer.getValue());
            served.add(path + " " + answer.getValue());
        }
        String metrics = Pipeline.get(port, "/observe/metrics").getValue();
        assertTrue(metrics.contains("sensor_metrics_consumer_lag_records{"), "lag metric served");
    }

    private static ServiceProcess start(Pipeline p, String name, Map<String, String> env) throws Exception {
        Path log = LOGS.resolve(name + "-" + logs.size() + ".log");
        Files.deleteIfExists(log);
        logs.add(log);
        return ServiceProcess.start(p, log, "256m", new HashMap<>(env));
    }

    @Test
    @Order(Integer.MAX_VALUE)
    void noSecretInAnyLogOrAnswer() throws Exception {
        List<String> found = new ArrayList<>();
        for (Path log : logs) {
            if (Files.exists(log)) {
                String text = Files.readString(log);
                secrets.stream().filter(text::contains).forEach(secret -> found.add(log + " holds a secret"));
            }
        }
        for (String body : served) {
            secrets.stream().filter(body::contains).forEach(secret -> found.add(body.substring(0, body.indexOf(' ')) + " served a secret"));
        }
        assertFalse(logs.isEmpty());
        assertEquals(List.of(), found);
    }
}
