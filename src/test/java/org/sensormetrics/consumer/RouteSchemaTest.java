package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import org.junit.jupiter.api.Test;

/**
 * Every YAML file under routes/ and tools/ is valid for the Camel YAML DSL JSON schema of the Camel version the
 * project runs (schema/camelYamlDsl.json inside the camel-yaml-dsl jar: what Kaoto and the VS Code tooling read),
 * checked with the networknt validator Camel's own YAML validator uses. A failure names the file, the path in it
 * and the rule.
 */
class RouteSchemaTest {

    @Test
    void everyRouteFileIsValidForCamelsYamlSchema() throws IOException {
        JsonSchema schema;
        try (InputStream in = org.apache.camel.dsl.yaml.YamlRoutesBuilderLoader.class.getResourceAsStream("/schema/camelYamlDsl.json")) {
            assertTrue(in != null, "schema/camelYamlDsl.json is in camel-yaml-dsl");
            schema = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4).getSchema(in);
        }
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (String dir : List.of("routes", "tools")) {
            try (Stream<Path> files = Files.walk(Path.of(dir))) {
                for (Path file : files.filter(f -> f.toString().endsWith(".yaml")).sorted().toList()) {
                    JsonNode routes = yaml.readTree(file.toFile());
                    for (ValidationMessage m : schema.validate(routes)) {
                        problems.add(file + ": " + m.getMessage() + " (rule " + m.getType() + ")"); // the message starts with the path
                    }
                    checked++;
                }
            }
        }
        assertTrue(checked >= 8, "route files found: " + checked);
        assertEquals("", String.join("\n", problems));
    }
}
