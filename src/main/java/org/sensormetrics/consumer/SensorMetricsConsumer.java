package org.sensormetrics.consumer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.apache.camel.main.BaseMainSupport;
import org.apache.camel.main.Main;
import org.apache.camel.main.MainListenerSupport;
import org.apache.camel.spi.PropertiesFunction;

/**
 * Starts the integration on camel-main: the YAML routes and beans packaged from routes/, configured by
 * application.properties. All behaviour lives in those files; this class only adds what camel-main lacks:
 * a .env file in the working directory as a fallback for environment variables, as the NestJS consumer
 * read it.
 */
public final class SensorMetricsConsumer {

    private SensorMetricsConsumer() {
    }

    public static void main(String[] args) throws Exception {
        newMain(readDotEnv(Path.of(".env"))).run(args);
    }

    /**
     * A Main ready to run the packaged routes.
     *
     * @param fallback values for the environment variables the properties read ({{env:NAME}}), used
     *                 where the variable is not set: the .env file, or a test's settings
     */
    public static Main newMain(Map<String, String> fallback) {
        Main main = new Main(SensorMetricsConsumer.class);
        // each folder by name: in a jar, Camel 4.18 resolved classpath:routes/**/*.camel.yaml to files it then could not
        // open (the folder left out of their names)
        main.configure().withRoutesIncludePattern("classpath:routes/*.camel.yaml,classpath:routes/ingest/*.camel.yaml,"
                + "classpath:routes/storage/*.camel.yaml,classpath:routes/read-api/*.camel.yaml");
        main.addMainListener(new MainListenerSupport() {
            @Override
            public void beforeConfigure(BaseMainSupport m) {
                m.getCamelContext().getPropertiesComponent().addPropertiesFunction(new EnvWithDotEnv(fallback));
            }
        });
        return main;
    }

    static Map<String, String> readDotEnv(Path file) throws IOException {
        Map<String, String> values = new HashMap<>();
        if (!Files.isRegularFile(file)) {
            return values;
        }
        for (String line : Files.readAllLines(file)) {
            String trimmed = line.strip();
            if (trimmed.isEmpty() || trimmed.startsWith("#") || !trimmed.contains("=")) {
                continue;
            }
            if (trimmed.startsWith("export ")) {
                trimmed = trimmed.substring(7).strip();
            }
            int eq = trimmed.indexOf('=');
            String value = trimmed.substring(eq + 1).strip();
            if (value.length() >= 2 && (value.startsWith("\"") && value.endsWith("\"") || value.startsWith("'") && value.endsWith("'"))) {
                value = value.substring(1, value.length() - 1);
            } else {
                // dotenv style: "KAFKA_MIN_BYTES=1024  # comment"
                int hash = value.indexOf(" #");
                value = hash >= 0 ? value.substring(0, hash).strip() : value;
            }
            values.put(trimmed.substring(0, eq).strip(), value);
        }
        return values;
    }

    /** {@code {{env:NAME:default}}} as Camel has it, with the .env file consulted when NAME is not set. */
    static final class EnvWithDotEnv implements PropertiesFunction {
        private final Map<String, String> dotEnv;

        EnvWithDotEnv(Map<String, String> dotEnv) {
            this.dotEnv = dotEnv;
        }

        @Override
        public String getName() {
            return "env";
        }

        @Override
        public String apply(String remainder) {
            int colon = remainder.indexOf(':');
            String name = colon < 0 ? remainder : remainder.substring(0, colon);
            String value = System.getenv(name);
            if (value == null) {
                value = dotEnv.get(name);
            }
            if (value == null && colon >= 0) {
                value = remainder.substring(colon + 1);
            }
            return value;
        }
    }
}
