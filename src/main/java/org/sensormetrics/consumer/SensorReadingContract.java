package org.sensormetrics.consumer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The message contract as the JSON Schema file beside the routes says it (routes/ingest/sensor-reading.schema.json): which
 * fields a reading has, their JSON types, which are required, their bounds, and the column of store-batch.sql each
 * one feeds ({@code x-column}). The validator checks records against it; adding a field to what is stored takes
 * that file, the SQL and the table, no Java.
 *
 * <p>Only what the validator enforces is accepted, so a keyword that would be silently ignored fails at startup
 * instead: per field {@code type} (string, number, integer, boolean; a timestamp is {@code format:
 * sensor-timestamp}), {@code minLength}, {@code maxLength}, {@code minimum}, {@code maximum}, {@code x-column},
 * and text ({@code description}, {@code title}, {@code examples}, {@code $comment}).
 */
final class SensorReadingContract {

    /** The columns the statement is built around: the key, the partition, the reading. */
    static final Set<String> CORE_COLUMNS = Set.of("event_id", "sensor_id", "value", "timestamp");
    private static final Set<String> FIELD_KEYWORDS = Set.of("type", "minLength", "maxLength", "minimum", "maximum", "format",
            "x-column", "description", "title", "examples", "$comment");

    /**
     * A field's contract type, the Java type of its checked value, and the column type that value's binary COPY form
     * is (BatchCopy). A timestamp's value is microseconds since 1970; as a core column it goes in as timestamptz.
     */
    enum Type {
        STRING(String.class, "text"), NUMBER(Double.class, "double precision"), INTEGER(Long.class, "bigint"),
        BOOLEAN(Boolean.class, "boolean"), TIMESTAMP(Long.class, "bigint");

        final Class<?> javaType;
        final String copyColumnType;

        Type(Class<?> javaType, String copyColumnType) {
            this.javaType = javaType;
            this.copyColumnType = copyColumnType;
        }

        /** The column type for a checked value of this Java type: the first type above that has it. */
        static String copyColumnTypeOf(Class<?> javaType) {
            for (Type t : values()) {
                if (t.javaType == javaType) {
                    return t.copyColumnType;
                }
            }
            return STRING.copyColumnType;
        }
    }

    /**
     * One field: {@code code} is the rejection reason code for it ({@code invalid_<name>}), the label of the rejected
     * records metric.
     */
    record Field(String name, String column, Type type, boolean required, int minLength, int maxLength, Double minimum,
                 Double maximum, String code) {
    }

    private final List<Field> fields;
    private final Map<String, Integer> positions = new HashMap<>();

    private SensorReadingContract(List<Field> fields) {
        this.fields = List.copyOf(fields);
        for (int i = 0; i < fields.size(); i++) {
            positions.put(fields.get(i).name(), i);
        }
    }

    /** Where the field of this name is in {@link #fields()}; -1 for a name the contract does not have. */
    int position(String name) {
        return positions.getOrDefault(name, -1);
    }

    /** In the schema's order, which is the order they are checked in (the first problem is the reason). */
    List<Field> fields() {
        return fields;
    }

    /** Reads the schema from {@code classpath:...}, {@code file:...} or a plain path. */
    static SensorReadingContract load(String uri) {
        try (InputStream in = open(uri)) {
            return parse(new ObjectMapper().readTree(in), uri);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the message contract " + uri + ": " + e.getMessage(), e);
        }
    }

    private static InputStream open(String uri) throws IOException {
        if (uri.startsWith("classpath:")) {
            InputStream in = SensorReadingContract.class.getClassLoader().getResourceAsStream(uri.substring(10).replaceFirst("^/", ""));
            if (in == null) {
                throw new IOException("not on the classpath");
            }
            return in;
        }
        return Files.newInputStream(Path.of(uri.startsWith("file:") ? uri.substring(5) : uri));
    }

    static SensorReadingContract parse(JsonNode schema, String source) {
        JsonNode properties = schema.path("properties");
        if (!properties.isObject()) {
            throw invalid(source, "it has no \"properties\"");
        }
        Set<String> required = new HashSet<>();
        schema.path("required").forEach(n -> required.add(n.asText()));
        List<Field> fields = new ArrayList<>();
        Set<String> columns = new HashSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = properties.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> p = it.next();
            String name = p.getKey();
            JsonNode spec = p.getValue();
            for (Iterator<String> keys = spec.fieldNames(); keys.hasNext(); ) {
                String key = keys.next();
                if (!FIELD_KEYWORDS.contains(key)) {
                    throw invalid(source, "field " + name + ": keyword " + key + " is not enforced by the validator");
                }
            }
            String column = spec.path("x-column").asText(null);
            if (column == null || !column.matches("[a-z_][a-z0-9_]{0,62}")) {
                throw invalid(source, "field " + name + " needs an \"x-column\" naming its column (lower case, digits, _)");
            }
            if (BatchRow.STATEMENT_PARAMETERS.contains(column)) {
                throw invalid(source, "field " + name + ": column " + column + " is the name of another parameter of store-batch.sql");
            }
            if (!columns.add(column)) {
                throw invalid(source, "two fields feed column " + column);
            }
            Type type = type(spec, source, name);
            if (column.equals("timestamp") != (type == Type.TIMESTAMP)) {
                throw invalid(source, "the timestamp column takes {\"type\": [\"string\", \"number\"], \"format\": \"sensor-timestamp\"}, and only it");
            }
            fields.add(new Field(name, column, type, required.contains(name), spec.path("minLength").asInt(0),
                    spec.path("maxLength").asInt(Integer.MAX_VALUE), spec.has("minimum") ? spec.get("minimum").asDouble() : null,
                    spec.has("maximum") ? spec.get("maximum").asDouble() : null, "invalid_" + name));
        }
        for (String core : CORE_COLUMNS) {
            if (fields.stream().noneMatch(f -> f.column().equals(core) && f.required())) {
                throw invalid(source, "a required field must feed column " + core);
            }
        }
        return new SensorReadingContract(fields);
    }

    private static Type type(JsonNode spec, String source, String name) {
        JsonNode type = spec.path("type");
        if ("sensor-timestamp".equals(spec.path("format").asText(null))) {
            return Type.TIMESTAMP;
        }
        if (spec.has("format")) {
            throw invalid(source, "field " + name + ": format " + spec.get("format").asText() + " is not one the validator knows (sensor-timestamp)");
        }
        return switch (type.asText("")) {
            case "string" -> Type.STRING;
            case "number" -> Type.NUMBER;
            case "integer" -> Type.INTEGER;
            case "boolean" -> Type.BOOLEAN;
            default -> throw invalid(source, "field " + name + ": type " + type + " is not string, number, integer or boolean");
        };
    }

    private static IllegalArgumentException invalid(String source, String problem) {
        return new IllegalArgumentException("message contract " + source + ": " + problem);
    }
}
