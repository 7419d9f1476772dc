package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * No cluster runs here, so the Camel K deployment is checked, not run: it must deploy exactly the
 * repo's route files (all but the camel-main DataSource wiring it replaces), and every property the
 * routes read must have a value in the files it passes.
 */
class DeploymentManifestTest {

    private static final Path ROUTES = Path.of("routes");
    private static final String CAMEL_MAIN_ONLY = "jdbc-datasource.camel.yaml";

    @Test
    void camelKDeploysExactlyTheRepositoryRouteFiles() throws IOException {
        String script = Files.readString(Path.of("deploy/camel-k/kamel-run.sh"));
        Set<String> deployed = matches(Pattern.compile("routes/([\\w.-]+\\.camel\\.yaml)"), script);
        Set<String> inRepo;
        try (Stream<Path> files = Files.list(ROUTES)) {
            inRepo = files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".camel.yaml"))
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
