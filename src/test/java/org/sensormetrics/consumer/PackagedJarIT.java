package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/**
 * The shaded jar as users run it: {@code java -jar}, configured by the NestJS consumer's environment
 * variables and a .env file in its working directory, stopped with SIGTERM.
 */
class PackagedJarIT {

    @Test
    void runsFromEnvironmentAndDotEnvAndStopsCleanlyOnSigterm() throws Exception {
        try (Pipeline p = Pipeline.scenario("jar", 12)) {
            Path workDir = Files.createTempDirectory("sensor-metrics-jar");
            // .env as the seed documents it; the environment wins where both are set
            Files.writeString(workDir.resolve(".env"), String.join("\n",
                    "# read by the service at startup",
                    "KAFKA_TOPIC=" + p.topic,
                    "KAFKA_GROUP_ID=" + p.group + "  # inline comment",
                    "DB_NAME=wrong_database_overridden_by_env",
                    "KAFKA_FROM_BEGINNING=true", ""));
            ProcessBuilder pb = new ProcessBuilder(javaBin(), "-Xmx256m", "-jar",
                    new File("target/sensor-metrics-consumer.jar").getAbsolutePath())
                    .directory(workDir.toFile())
                    .redirectErrorStream(true)
                    .redirectOutput(new File("target/packaged-jar-it.log"));
            pb.environment().putAll(p.serviceEnvironment());
            // these three come from the .env file written above
            pb.environment().keySet().removeAll(java.util.List.of("KAFKA_TOPIC", "KAFKA_GROUP_ID", "KAFKA_FROM_BEGINNING"));
            pb.environment().put("CONSUMER_BATCH_SIZE", "500");
            Process service = pb.start();
            try {
                LoadGenerator.Summary sent = LoadGenerator.produce(p.load(1000, 20_000));
                p.awaitCaughtUp(Duration.ofMinutes(3));
                p.assertExactlyOnce(sent.valid());
                assertTrue(p.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sensor-metrics-consumer'") > 0);
            } finally {
                service.destroy(); // SIGTERM
                assertTrue(service.waitFor(60, TimeUnit.SECONDS), "stops within its shutdown timeout");
            }
            String log = Files.readString(Path.of("target/packaged-jar-it.log"));
            assertTrue(log.contains("shutdown"), log);
            assertEquals(143, service.exitValue(), "terminated by SIGTERM after a clean Camel shutdown");
        }
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }
}
