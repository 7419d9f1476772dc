package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import org.junit.jupiter.api.Test;

/**
 * No cluster runs here, so the Camel K deployment is checked, not run: it must deploy exactly the
 * repo's route files (all but the camel-main DataSource wiring it replaces), every property the
 * routes read must have a value in the files it passes, and the KEDA autoscaler must target it.
 */
class DeploymentManifestTest {

    private static final Path ROUTES = Path.of("routes");
    private static final String CAMEL_MAIN_ONLY = "jdbc-datasource.camel.yaml";

    @Test
    void camelKDeploysExactlyTheRepositoryRouteFiles() throws IOException {
        String script = Files.readString(Path.of("deploy/camel-k/kamel-run.sh"));
        Set<String> deployed = matches(Pattern.compile("routes/([\\w./-]+\\.camel\\.yaml)"), script);
        Set<String> inRepo;
        try (Stream<Path> files = Files.walk(ROUTES)) {
            inRepo = files.map(f -> ROUTES.relativize(f).toString()).filter(n -> n.endsWith(".camel.yaml"))
                    .filter(n -> !n.equals(CAMEL_MAIN_ONLY)).collect(Collectors.toCollection(TreeSet::new));
        }
        assertEquals(inRepo, deployed);
    }

    @Test
    void everyPropertyTheRoutesReadIsSet() throws IOException {
        Properties props = new Properties();
        try (var in = Files.newBufferedReader(Path.of("application.properties"))) {
            props.load(in);
        }
        try (var in = Files.newBufferedReader(Path.of("deploy/camel-k/camel-k.properties"))) {
            props.load(in);
        }
        assertTrue(props.containsKey("quarkus.datasource.jdbc.url"));
        Set<String> read = new TreeSet<>();
        try (Stream<Path> files = Files.walk(ROUTES)) {
            for (Path f : files.filter(Files::isRegularFile).filter(f -> !f.getFileName().toString().equals(CAMEL_MAIN_ONLY)).toList()) {
                // {{name}} in routes, ${properties:name} in the parameters of the SQL files
                read.addAll(matches(Pattern.compile("\\{\\{([\\w.-]+)}}|\\$\\{properties:([\\w.-]+)}"), Files.readString(f)));
            }
        }
        assertTrue(read.contains("kafka.brokers"), read.toString());
        Set<String> missing = new TreeSet<>(read);
        missing.removeIf(props::containsKey);
        assertEquals(Set.of(), missing, "read by routes but set nowhere");
    }

    /**
     * On Camel K the secrets come from Kubernetes secrets, never from a file in the repository: each secret setting
     * the routes read is set in camel-k.properties from a ${NAME} Quarkus finds in the mounted secret, blank by
     * default, and the database URL carries the same TLS settings as application.properties'.
     */
    @Test
    void camelKTakesSecretsFromKubernetesSecretsAndTlsFromTheSameSettings() throws IOException {
        String script = Files.readString(Path.of("deploy/camel-k/kamel-run.sh"));
        for (String secret : List.of("--config secret:sensor-metrics-db", "--config secret:sensor-metrics-kafka",
                "--resource secret:sensor-metrics-tls@")) {
            assertTrue(script.contains(secret), secret);
        }
        Properties app = new Properties();
        try (var in = Files.newBufferedReader(Path.of("application.properties"))) {
            app.load(in);
        }
        Properties camelK = new Properties();
        try (var in = Files.newBufferedReader(Path.of("deploy/camel-k/camel-k.properties"))) {
            camelK.load(in);
        }
        List<String> secretKeys = app.stringPropertyNames().stream()
                .filter(k -> k.startsWith("kafka.") && (k.endsWith("password") || k.endsWith("jaas-config"))).sorted().toList();
        assertEquals(5, secretKeys.size(), secretKeys.toString());
        for (String key : secretKeys) {
            String env = envName(app, key);
            assertEquals("${" + env + ":}", camelK.getProperty(key), key);
            assertEquals("{{env:" + env + ":}}", app.getProperty(key), key + " has no default");
        }
        assertEquals("{{env:DB_PASSWORD:}}", app.getProperty("db.password"));
        assertFalse(camelK.containsKey("quarkus.datasource.password"), "from the secret sensor-metrics-db only");
        String url = camelK.getProperty("quarkus.datasource.jdbc.url");
        for (String parameter : List.of("sslmode=${DB_SSL_MODE:", "sslrootcert=${DB_SSL_ROOT_CERT:", "sslcert=${DB_SSL_CERT:", "sslkey=${DB_SSL_KEY:")) {
            assertTrue(url.contains(parameter), parameter);
        }
    }

    /** NAME of a {{env:NAME:default}} setting. */
    private static String envName(Properties props, String key) {
        Matcher m = Pattern.compile("\\{\\{env:(\\w+):.*}}").matcher(props.getProperty(key));
        assertTrue(m.matches(), key);
        return m.group(1);
    }

    /** The KEDA autoscaler must scale the integration kamel-run.sh creates, on the lag of the group and topic it reads. */
    @Test
    void kedaScalesTheIntegrationOnItsOwnGroupsLag() throws IOException {
        JsonNode keda = new ObjectMapper(new YAMLFactory()).readTree(Path.of("deploy/keda/scaled-object.yaml").toFile());
        String script = Files.readString(Path.of("deploy/camel-k/kamel-run.sh"));
        Matcher name = Pattern.compile("--name (\\S+)").matcher(script);
        assertTrue(name.find());
        JsonNode target = keda.at("/spec/scaleTargetRef");
        assertEquals("Integration", target.path("kind").asText());
        assertEquals(name.group(1), target.path("name").asText());

        Properties props = new Properties();
        try (var in = Files.newBufferedReader(Path.of("application.properties"))) {
            props.load(in);
        }
        JsonNode trigger = keda.at("/spec/triggers/0");
        assertEquals("kafka", trigger.path("type").asText());
        assertEquals(envDefault(props, "kafka.group-id"), trigger.at("/metadata/consumerGroup").asText());
        assertEquals(envDefault(props, "kafka.topic"), trigger.at("/metadata/topic").asText());
        assertTrue(Long.parseLong(trigger.at("/metadata/lagThreshold").asText()) > 0);
        int min = keda.at("/spec/minReplicaCount").asInt();
        int max = keda.at("/spec/maxReplicaCount").asInt();
        assertTrue(min >= 1 && min <= max, min + ".." + max);
        // KAFKA_GROUP_INSTANCE_ID falls back to the pod's name on Camel K
        try (var in = Files.newBufferedReader(Path.of("deploy/camel-k/camel-k.properties"))) {
            props.load(in);
        }
        assertTrue(props.getProperty("kafka.group-instance-id", "").contains("POD_NAME"));
    }

    /** The default of a {{env:NAME:default}} setting. */
    private static String envDefault(Properties props, String key) {
        Matcher m = Pattern.compile("\\{\\{env:\\w+:(.*)}}").matcher(props.getProperty(key));
        assertTrue(m.matches(), key);
        return m.group(1);
    }

    private static Set<String> matches(Pattern pattern, String text) {
        Set<String> found = new TreeSet<>();
        Matcher m = pattern.matcher(text);
        while (m.find()) {
            for (int g = 1; g <= m.groupCount(); g++) {
                if (m.group(g) != null) {
                    found.add(m.group(g));
                }
            }
        }
        return found;
    }
}
