package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

/**
 * The message contract is the file beside the ingest route (routes/ingest/sensor-reading.schema.json): a field is added to what is
 * stored by editing files under routes/ only, here a copy of them, and the service run from that copy stores it from
 * real Kafka into real PostgreSQL.
 */
class MessageContractTest {

    @Test
    void anOptionalFieldAddedInTheRouteFilesIsStoredAndCheckedAgainstItsType() throws Exception {
        // the contract: an optional string of up to 16 characters, fed to column unit
        Path routes = routesWith("unit", new ObjectMapper().createObjectNode().put("type", "string").put("maxLength", 16),
                "VARCHAR(16)", "text");
        try (Pipeline p = startedOn("contract", routes)) {
            // readings only, written with COPY (BatchCopy); then a batch with rejected records, written by the statement
            p.send(List.of(
                    Map.entry("s1", utf8("{\"sensor_id\":\"s1\",\"event_id\":\"with-unit\"," + TS + ",\"value\":21.5,\"unit\":\"°C\"}")),
                    Map.entry("s1", utf8("{\"sensor_id\":\"s1\",\"event_id\":\"without-unit\"," + TS + ",\"value\":22}"))));
            p.awaitCaughtUp(Duration.ofMinutes(2));
            p.send(List.of(
                    Map.entry("s1", utf8("{\"sensor_id\":\"s1\",\"event_id\":\"null-unit\"," + TS + ",\"value\":23,\"unit\":null}")),
                    Map.entry("s2", utf8("{\"sensor_id\":\"s2\",\"event_id\":\"number-unit\"," + TS + ",\"value\":24,\"unit\":42}")),
                    Map.entry("s2", utf8("{\"sensor_id\":\"s2\",\"event_id\":\"long-unit\"," + TS + ",\"value\":25,\"unit\":\"degrees celsius!\"}")),
                    Map.entry("s2", utf8("{\"sensor_id\":\"s2\",\"event_id\":\"too-long-unit\"," + TS + ",\"value\":26,\"unit\":\"degrees celsius!!\"}"))));
            p.awaitCaughtUp(Duration.ofMinutes(2));

            p.assertExactlyOnce(4);
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'with-unit' AND unit = '°C'"));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'long-unit' AND unit = 'degrees celsius!'"));
            assertEquals(2, p.count("SELECT count(*) FROM metrics WHERE event_id IN ('without-unit', 'null-unit') AND unit IS NULL"));
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events WHERE reason = 'unit must be a string, got number'"));
            assertEquals(1, p.count("SELECT count(*) FROM rejected_events WHERE reason = 'unit is 17 characters, longer than 16'"));
            assertEquals(0, p.progress().getFailures());
        }
    }

    /**
     * A column whose SQL type is not the binary form of its field's JSON type (numeric for a number): COPY refuses
     * the batch, and the statement, which casts, writes it in the same transaction.
     */
    @Test
    void aColumnOfAnotherTypeThanItsFieldIsWrittenByTheStatement() throws Exception {
        Path routes = routesWith("battery", new ObjectMapper().createObjectNode().put("type", "number").put("minimum", 0),
                "NUMERIC(6,2)", "float8");
        try (Pipeline p = startedOn("contract_numeric", routes)) {
            p.send(List.of(
                    Map.entry("s1", utf8("{\"sensor_id\":\"s1\",\"event_id\":\"charged\"," + TS + ",\"value\":1,\"battery\":97.25}")),
                    Map.entry("s1", utf8("{\"sensor_id\":\"s1\",\"event_id\":\"unknown\"," + TS + ",\"value\":2}"))));
            p.awaitCaughtUp(Duration.ofMinutes(2));

            p.assertExactlyOnce(2);
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'charged' AND battery = 97.25"));
            assertEquals(1, p.count("SELECT count(*) FROM metrics WHERE event_id = 'unknown' AND battery IS NULL"));
            assertEquals(0, p.progress().getFailures());
        }
    }

    private static final String TS = "\"timestamp\":\"2026-01-15T10:30:45Z\"";

    /** The service, run from the route files under {@code routes}. */
    private static Pipeline startedOn(String scenario, Path routes) throws Exception {
        Pipeline p = Pipeline.scenario(scenario, 2);
        try {
            p.set("camel.main.routes-include-pattern", "file:" + routes + "/**/*.camel.yaml").set("sql.location", "file:" + routes);
            p.startService();
            return p;
        } catch (Exception | AssertionError e) {
            p.close();
            throw e;
        }
    }

    /**
     * A copy of routes/ with one more optional field: in the contract, as a metrics column of the given SQL type in
     * schema.sql, and in store-batch.sql as an array of the given element type.
     */
    private static Path routesWith(String field, ObjectNode spec, String columnType, String arrayType) throws Exception {
        Path routes = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "routes-with-" + field);
        try (Stream<Path> files = Files.walk(Path.of("routes"))) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Path copy = routes.resolve(Path.of("routes").relativize(f));
                Files.createDirectories(copy.getParent());
                Files.copy(f, copy);
            }
        }
        Path ingest = routes.resolve("ingest");
        Path schema = routes.resolve("storage/schema.sql");
        ObjectMapper json = new ObjectMapper();
        ObjectNode contract = (ObjectNode) json.readTree(ingest.resolve("sensor-reading.schema.json").toFile());
        ((ObjectNode) contract.get("properties")).set(field, spec.put("x-column", field));
        json.writerWithDefaultPrettyPrinter().writeValue(ingest.resolve("sensor-reading.schema.json").toFile(), contract);
        Files.writeString(schema, Files.readString(schema)
                + "\nALTER TABLE metrics ADD COLUMN IF NOT EXISTS " + field + " " + columnType + ";\n");
        String statement = Files.readString(ingest.resolve("store-batch.sql"));
        String edited = statement.replace("CAST(:#value AS float8[]))", "CAST(:#value AS float8[]), CAST(:#" + field + " AS " + arrayType + "[]))")
                .replace("event_time_us, value)", "event_time_us, value, " + field + ")")
                .replace("kafka_partition, kafka_offset)\n  SELECT id, sensor_id, event_id, event_time, value, kafka_partition, kafka_offset\n",
                        "kafka_partition, kafka_offset, " + field + ")\n  SELECT id, sensor_id, event_id, event_time, value, kafka_partition, kafka_offset, "
                        + field + "\n");
        assertTrue(!edited.equals(statement) && edited.contains(field + ")\n  SELECT"), "the statement was edited");
        Files.writeString(ingest.resolve("store-batch.sql"), edited);
        return routes;
    }

    @Test
    void aContractTheValidatorCannotEnforceFailsAtStartupWithTheReason() {
        ObjectMapper json = new ObjectMapper();
        var e = assertThrows(IllegalArgumentException.class, () -> SensorReadingContract.parse(json.readTree("""
                {"properties": {"event_id": {"type": "string", "pattern": "^[a-f0-9-]+$", "x-column": "event_id"}}}"""), "test"));
        assertEquals("message contract test: field event_id: keyword pattern is not enforced by the validator", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SensorReadingContract.parse(json.readTree("""
                {"required": ["event_id"], "properties": {"event_id": {"type": "string", "x-column": "event_id"}}}"""), "test"));
        assertEquals("message contract test: a required field must feed column " + e.getMessage().replaceAll(".* ", ""), e.getMessage());
    }
}
