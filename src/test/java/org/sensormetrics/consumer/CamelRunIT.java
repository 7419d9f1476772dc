package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * The routes as integration engineers run them: the README's `camel run` command, word for word, with the Camel
 * CLI (camel-jbang-core from Maven Central, no JBang installer): the route files, the helper sources and the
 * properties, nothing compiled by Maven. Against a SASL_SSL-only broker and a TLS-only PostgreSQL, configured
 * through the environment as for the jar (SecuredConnectionsIT). Counts rows afterwards.
 */
class CamelRunIT {

    @Test
    void camelRunStoresEveryEventExactlyOnce() throws Exception {
        Path dir = Path.of("target/camel-run-secured");
        TestCertificates certs = TestCertificates.create(dir.resolve("certificates"));
        String kafkaPassword = "camel-run-secret-" + System.nanoTime();
        String dbPassword = "camel-run-db-secret-" + System.nanoTime();
        try (KafkaCluster broker = KafkaCluster.start(dir.resolve("kafka"), 1, KafkaCluster.Security.scram(certs, "camel-run", kafkaPassword));
             EmbeddedPostgres postgres = EmbeddedPostgres.startSecured(Path.of("target/camel-run-postgres"), certs, dbPassword);
             Pipeline p = Pipeline.scenario("camelrun", 6, broker.broker(), postgres)) {
            // exactly the README's command, `camel` being the Camel CLI from Maven Central
            String readme = Files.readString(Path.of("README.md"));
            Matcher m = Pattern.compile("(?m)^.*?(camel run routes/.*)$").matcher(readme);
            assertTrue(m.find(), "the README has a camel run command");
            String camelRun = m.group(1).strip();
            List<String> command = List.of("bash", "-c", "camel() { exec '" + javaBin() + "' -Xmx512m -cp '" + cliClasspath()
                    + "' src/test/camel-cli/CamelCli.java \"$@\"; }; " + camelRun);
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(new File("target/camel-run-it.log"));
            pb.environment().putAll(p.serviceEnvironment());
            int port = Integer.parseInt(pb.environment().get("PORT"));
            Process camel = pb.start();
            try {
                LoadGenerator.Summary sent = LoadGenerator.produce(p.load(500, 10_000), p.kafkaClientProperties());
                p.awaitCaughtUp(Duration.ofMinutes(5));
                p.assertExactlyOnce(sent.valid());
                // the same HTTP side on PORT: read API, readiness, the service's own metrics
                assertTrue(Pipeline.get(port, "/api/metrics/summary").getValue().contains("\"total_events\" : " + sent.valid()));
                // readiness follows the group within one check (LAG_INTERVAL_MS, 5 s)
                Pipeline.await("readiness UP", Duration.ofSeconds(30),
                        () -> Pipeline.safe(() -> Pipeline.get(port, "/observe/health/ready").getKey() == 200));
                assertTrue(Pipeline.get(port, "/observe/metrics").getValue().contains("sensor_metrics_events_stored_total"));
            } finally {
                camel.destroy();
                assertTrue(camel.waitFor(60, TimeUnit.SECONDS), "camel run stops on SIGTERM");
            }
            String log = Files.readString(Path.of("target/camel-run-it.log"));
            assertFalse(log.contains(kafkaPassword) || log.contains(dbPassword), "a password in camel run's log");
        }
    }

    private static String cliClasspath() throws Exception {
        Path out = Path.of("target/camel-cli.classpath").toAbsolutePath();
        if (!Files.exists(out)) {
            Process mvn = new ProcessBuilder("mvn", "-B", "-q", "-f", "src/test/camel-cli/pom.xml",
                    "dependency:build-classpath", "-Dmdep.outputFile=" + out).inheritIO().start();
            assertEquals(0, mvn.waitFor(), "resolving camel-jbang-core from Maven Central");
        }
        return Files.readString(out).strip();
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }
}
