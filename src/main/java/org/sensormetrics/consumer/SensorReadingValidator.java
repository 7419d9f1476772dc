package org.sensormetrics.consumer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.apache.camel.component.kafka.KafkaConstants;

/**
 * Turns each Kafka record of a batch into one row for store-batch.sql: either a reading (event_id, sensor_id,
 * event_time_us, value) or a rejection (payload and reason). It never throws for bad input, so a poison
 * record is recorded instead of failing (and endlessly rewinding) its batch.
 *
 * <p>This is Java because the contract needs what the YAML DSL cannot say safely: strict UTF-8, timestamp
 * parsing, and strings PostgreSQL would refuse (NUL, lone surrogates) caught before they can fail the
 * statement. The bounds come from application.properties ({@code validation.*}).
 */
public class SensorReadingValidator {

    /** Epoch numbers below this are seconds, at or above it milliseconds (1e11 s is the year 5138). */
    static final double EPOCH_MILLIS_THRESHOLD = 1e11;
    private static final Instant EARLIEST = Instant.parse("0001-01-01T00:00:00Z");
    private static final Instant LATEST = Instant.parse("9999-12-31T23:59:59.999999Z");

    private final ObjectMapper mapper;
    private int maxPayloadBytes = 65536;
    private int maxIdLength = 255;
    /** Readings older than this many days are rejected (their partitions may be gone); 0 keeps everything. */
    private double retentionDays;

    public SensorReadingValidator() {
        JsonFactory factory = JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).build())
                .build();
        this.mapper = new ObjectMapper(factory);
    }

    public void setMaxPayloadBytes(int maxPayloadBytes) {
        this.maxPayloadBytes = maxPayloadBytes;
    }

    public void setMaxIdLength(int maxIdLength) {
        this.maxIdLength = maxIdLength;
    }

    public void setRetentionDays(double retentionDays) {
        this.retentionDays = retentionDays;
    }

    /**
     * The aggregate step: one row per record of the Kafka batch, in the batch's order.
     *
     * @param records the batch's record exchanges (the body of the consumer's batch exchange)
     */
    public List<BatchRow> toRows(List<?> records) {
        List<BatchRow> rows = new ArrayList<>(records.size());
        long oldestKeptUs = retentionDays > 0
                ? IsoTimestamp.epochMicros(Instant.now().minusMillis((long) (retentionDays * 86_400_000L)).getEpochSecond(), 0)
                : Long.MIN_VALUE;
        for (Object record : records) {
            rows.add(toRow(((Exchange) record).getMessage(), oldestKeptUs));
        }
        return rows;
    }

    private BatchRow toRow(Message message, long oldestKeptUs) {
        // untyped: camel-kafka sets these as String, Integer and Long, and a typed read asks the type converter
        // for every record
        String topic = (String) message.getHeader(KafkaConstants.TOPIC);
        Integer partition = (Integer) message.getHeader(KafkaConstants.PARTITION);
        Long offset = (Long) message.getHeader(KafkaConstants.OFFSET);
        byte[] payload = message.getBody(byte[].class);
        Checked checked = check(payload);
        if (checked instanceof Reading r && r.eventTimeUs() < oldestKeptUs) {
            checked = new Problem("too_old", "timestamp " + Instant.EPOCH.plus(r.eventTimeUs(), java.time.temporal.ChronoUnit.MICROS)
                    + " is older than the retention window of " + java.math.BigDecimal.valueOf(retentionDays).stripTrailingZeros().toPlainString()
                    + " days (RETENTION_DAYS)");
        }
        if (checked instanceof Reading r) {
            return BatchRow.reading(topic, partition, offset, r.eventId(), r.sensorId(), r.eventTimeUs(), r.value());
        }
        return reject(topic, partition, offset, keyText(message.getHeader(KafkaConstants.KEY)), payload, (Problem) checked);
    }

    /** What a payload turned out to be: a reading, or the problem that makes it none. */
    sealed interface Checked permits Reading, Problem {
    }

    record Reading(String eventId, String sensorId, long eventTimeUs, double value) implements Checked {
    }

    /**
     * Why a record is not a reading: {@code code} is one of a few fixed words (the label of the rejected
     * records metric), {@code reason} the sentence kept in rejected_events.
     */
    record Problem(String code, String reason) implements Checked {
    }

    private Checked check(byte[] payload) {
        if (payload == null || payload.length == 0) {
            return new Problem("empty", "empty payload");
        }
        if (payload.length > maxPayloadBytes) {
            return new Problem("too_large", "payload of " + payload.length + " bytes exceeds the limit of " + maxPayloadBytes);
        }
        JsonNode json;
        try {
            if (isAsciiWithoutNul(payload)) {
                // the common case, parsed from the bytes: ASCII is valid UTF-8, and without NUL bytes Jackson
                // cannot take it for UTF-16 or UTF-32
                json = mapper.readTree(payload);
            } else {
                String text = strictUtf8(payload);
                if (text == null) {
                    return new Problem("not_utf8", "payload is not valid UTF-8");
                }
                json = mapper.readTree(text);
            }
        } catch (JsonProcessingException e) {
            return new Problem("not_json", "not JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e); // reading a byte array does no I/O
        }
        if (json == null || !json.isObject()) {
            return new Problem("not_json_object", "not a JSON object");
        }
        String problem = requireId(json, "event_id");
        if (problem != null) {
            return new Problem("invalid_event_id", problem);
        }
        problem = requireId(json, "sensor_id");
        if (problem != null) {
            return new Problem("invalid_sensor_id", problem);
        }
        problem = requireValue(json.get("value"));
        if (problem != null) {
            return new Problem("invalid_value", problem);
        }
        JsonNode timestamp = json.get("timestamp");
        long micros = timestamp != null && timestamp.isTextual() ? IsoTimestamp.epochMicros(timestamp.textValue()) : IsoTimestamp.NOT_PARSED;
        if (micros == IsoTimestamp.NOT_PARSED) {
            Instant time;
            try {
                time = timestamp(timestamp);
            } catch (DateTimeException | ArithmeticException e) {
                return new Problem("invalid_timestamp", "timestamp " + abbreviate(String.valueOf(timestamp))
                        + " is not ISO 8601 with an offset or epoch seconds/milliseconds");
            }
            if (time.isBefore(EARLIEST) || time.isAfter(LATEST)) {
                return new Problem("invalid_timestamp", "timestamp " + time + " is outside years 1 to 9999");
            }
            // not ChronoUnit.MICROS.between: it counts in nanoseconds and overflows beyond 292 years from 1970
            micros = IsoTimestamp.epochMicros(time.getEpochSecond(), time.getNano());
        }
        return new Reading(json.get("event_id").textValue(), json.get("sensor_id").textValue(), micros, json.get("value").doubleValue());
    }

    private String requireId(JsonNode json, String field) {
        JsonNode node = json.get(field);
        if (node == null || node.isNull()) {
            return field + " is missing";
        }
        if (!node.isTextual()) {
            return field + " must be a string, got " + node.getNodeType().name().toLowerCase();
        }
        String id = node.textValue();
        if (id.isBlank()) {
            return field + " is empty";
        }
        if (id.length() > maxIdLength) {
            return field + " is " + id.length() + " characters, longer than " + maxIdLength;
        }
        if (!storableText(id)) {
            return field + " contains a NUL character or an unpaired surrogate";
        }
        return null;
    }

    private static String requireValue(JsonNode node) {
        if (node == null || node.isNull()) {
            return "value is missing";
        }
        if (!node.isNumber()) {
            return "value must be a number, got " + node.getNodeType().name().toLowerCase();
        }
        if (!Double.isFinite(node.doubleValue())) {
            return "value " + abbreviate(node.asText()) + " is not a finite double";
        }
        return null;
    }

    private static Instant timestamp(JsonNode node) {
        if (node == null || node.isNull()) {
            throw new DateTimeException("missing");
        }
        if (node.isNumber()) {
            double epoch = node.doubleValue();
            if (!Double.isFinite(epoch)) {
                throw new DateTimeException("not finite");
            }
            double millis = Math.abs(epoch) < EPOCH_MILLIS_THRESHOLD ? epoch * 1000 : epoch;
            if (Math.abs(millis) > 1e15) {
                throw new DateTimeException("out of range");
            }
            long wholeMillis = (long) Math.floor(millis);
            long nanos = Math.round((millis - wholeMillis) * 1_000_000);
            return Instant.ofEpochMilli(wholeMillis).plusNanos(nanos);
        }
        if (node.isTextual() && node.textValue().length() <= 64) {
            return OffsetDateTime.parse(node.textValue(), DateTimeFormatter.ISO_OFFSET_DATE_TIME).toInstant();
        }
        throw new DateTimeException("not a string or number");
    }

    static boolean isAsciiWithoutNul(byte[] bytes) {
        for (byte b : bytes) {
            if (b <= 0) { // NUL, or the first bit set
                return false;
            }
        }
        return true;
    }

    private BatchRow reject(String topic, Integer partition, Long offset, String recordKey, byte[] payload, Problem problem) {
        String reason = problem.reason();
        if (payload != null && payload.length > maxPayloadBytes) {
            // keep what an operator needs to see, not a megabyte per poison record
            payload = java.util.Arrays.copyOf(payload, maxPayloadBytes);
            reason += " (first " + maxPayloadBytes + " bytes kept)";
        }
        String text = payload == null ? null : strictUtf8(payload);
        String kept;
        String encoding;
        if (payload == null) {
            kept = null;
            encoding = "none";
        } else if (text != null && storableText(text)) {
            kept = text;
            encoding = "text";
        } else {
            kept = Base64.getEncoder().encodeToString(payload);
            encoding = "base64";
        }
        return BatchRow.rejected(topic, partition, offset, recordKey, kept, encoding,
                storableText(reason) ? reason : reason.replaceAll("[\\x{0}\\p{Cs}]", "?"), problem.code());
    }

    private static String keyText(Object key) {
        if (key == null) {
            return null;
        }
        byte[] bytes = key instanceof byte[] b ? b : key.toString().getBytes(StandardCharsets.UTF_8);
        String text = strictUtf8(bytes);
        return text != null && storableText(text) ? text : "base64:" + Base64.getEncoder().encodeToString(bytes);
    }

    static String strictUtf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** PostgreSQL text holds neither NUL nor unpaired UTF-16 surrogates (JSON escapes can carry both). */
    static boolean storableText(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0) {
                return false;
            }
            if (Character.isHighSurrogate(c)) {
                if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return false;
                }
                i++;
            } else if (Character.isLowSurrogate(c)) {
                return false;
            }
        }
        return true;
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
