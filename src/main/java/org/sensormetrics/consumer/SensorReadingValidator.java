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
import java.util.TreeMap;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.camel.spi.DataFormat;
import org.apache.camel.support.service.ServiceSupport;

/**
 * The ingest route's data format ({@code unmarshal: custom: sensorReadings}): turns each Kafka record of a batch
 * into one row, either a reading (event_id, sensor_id, event_time_us, value, and the contract's other fields by
 * column) or a rejection (payload and reason). It never throws for bad input, so a poison record is recorded
 * instead of failing (and endlessly rewinding) its batch. The batch's records are unmarshalled in one call: a split
 * into one exchange per record cost much more CPU (docs/decisions.md 11).
 *
 * <p>The fields, their types, bounds and columns come from the message contract file
 * (routes/ingest/sensor-reading.schema.json, {@link SensorReadingContract}). This is Java for what a schema cannot say:
 * strict UTF-8, the timestamp forms, and strings PostgreSQL would refuse (NUL, lone surrogates), caught before they
 * can fail the statement. The payload bound and the retention window come from application.properties.
 */
public class SensorReadingValidator extends ServiceSupport implements DataFormat {

    /** Epoch numbers below this are seconds, at or above it milliseconds (1e11 s is the year 5138). */
    static final double EPOCH_MILLIS_THRESHOLD = 1e11;
    private static final Instant EARLIEST = Instant.parse("0001-01-01T00:00:00Z");
    private static final Instant LATEST = Instant.parse("9999-12-31T23:59:59.999999Z");

    private final JsonFactory factory;
    private final ObjectMapper mapper;
    private int maxPayloadBytes = 65536;
    /** Set from validation.contract; the packaged one where nothing sets it. */
    private volatile SensorReadingContract contract;
    /** The contract's columns beyond the core four, and the Java type of their values; made on first use. */
    private volatile java.util.Map<String, Class<?>> extraColumns;
    /** Readings older than this many days are rejected (their partitions may be gone); 0 keeps everything. */
    private double retentionDays;

    public SensorReadingValidator() {
        this.factory = JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).build())
                .build();
        this.mapper = new ObjectMapper(factory);
    }

    public void setMaxPayloadBytes(int maxPayloadBytes) {
        this.maxPayloadBytes = maxPayloadBytes;
    }

    /** Where the message contract is: {@code classpath:...}, {@code file:...} or a path (validation.contract). */
    public void setContract(String uri) {
        this.contract = SensorReadingContract.load(uri);
        this.extraColumns = null;
    }

    public void setRetentionDays(double retentionDays) {
        this.retentionDays = retentionDays;
    }

    /** Reading rows are not written back as records. */
    @Override
    public void marshal(Exchange exchange, Object graph, java.io.OutputStream stream) {
        throw new UnsupportedOperationException("sensorReadings only unmarshals Kafka records into rows");
    }

    /** Not called: the body of a Kafka batch is its list of records, which {@link #unmarshal(Exchange, Object)} takes. */
    @Override
    public Object unmarshal(Exchange exchange, java.io.InputStream stream) {
        throw new IllegalArgumentException("sensorReadings unmarshals a Kafka batch (batching=true): its body is a list of records");
    }

    /** One row per record of the Kafka batch, in the batch's order. */
    @Override
    public Object unmarshal(Exchange exchange, Object body) {
        if (!(body instanceof List<?> records)) {
            return unmarshal(exchange, (java.io.InputStream) null);
        }
        return toRows(records);
    }

    /** @param records the batch's record exchanges (the body of the consumer's batch exchange) */
    List<BatchRow> toRows(List<?> records) {
        contract();
        List<BatchRow> rows = new ArrayList<>(records.size());
        long oldestKeptUs = retentionDays > 0
                ? IsoTimestamp.epochMicros(Instant.now().minusMillis((long) (retentionDays * 86_400_000L)).getEpochSecond(), 0)
                : Long.MIN_VALUE;
        for (Object record : records) {
            rows.add(toRow(((Exchange) record).getMessage(), oldestKeptUs));
        }
        return rows;
    }

    /**
     * The batch's rows as store-batch.sql's parameters, one typed array per column ({@link BatchRow#columns}): the
     * body the statement reads its named parameters from.
     */
    public java.util.Map<String, Object> columns(List<BatchRow> rows) {
        if (extraColumns == null) {
            java.util.Map<String, Class<?>> extras = new java.util.LinkedHashMap<>();
            for (SensorReadingContract.Field field : contract().fields()) {
                if (!SensorReadingContract.CORE_COLUMNS.contains(field.column())) {
                    extras.put(field.column(), field.type().javaType);
                }
            }
            extraColumns = extras;
        }
        return BatchRow.columns(rows, extraColumns);
    }

    /**
     * The distinct hours (since 1970, UTC) the batch's readings fall in, separated by commas: what
     * create-partitions.sql reads to make every partition the batch will write to. Usually one or two.
     */
    public String eventHours(List<BatchRow> rows) {
        return String.join(",", readingsPer(rows, MICROS_PER_HOUR).keySet().stream().map(String::valueOf).toList());
    }

    /**
     * The distinct minutes (since 1970, UTC) the batch's readings fall in, each with how many of them it holds
     * ("minute:readings", separated by commas): the rollup buckets record-positions-and-stale-minutes.sql marks for the next
     * refresh, which takes them up to a number of readings. One or two for live readings.
     */
    public String eventMinutes(List<BatchRow> rows) {
        StringBuilder text = new StringBuilder();
        readingsPer(rows, MICROS_PER_MINUTE).forEach((minute, readings) ->
                text.append(text.length() == 0 ? "" : ",").append(minute).append(':').append(readings[0]));
        return text.toString();
    }

    private static TreeMap<Long, int[]> readingsPer(List<BatchRow> rows, long unitMicros) {
        TreeMap<Long, int[]> units = new TreeMap<>();
        long last = 0;
        int[] count = null;
        for (BatchRow row : rows) {
            if (row.eventTimeUs() != null) {
                long unit = Math.floorDiv(row.eventTimeUs(), unitMicros);
                // a partition's readings come in a run, mostly in time order: most repeat the one before
                if (count == null || unit != last) {
                    count = units.computeIfAbsent(unit, u -> new int[1]);
                    last = unit;
                }
                count[0]++;
            }
        }
        return units;
    }

    private static final long MICROS_PER_MINUTE = 60_000_000L;
    private static final long MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE;

    private SensorReadingContract contract() {
        if (contract == null) {
            contract = SensorReadingContract.load("classpath:routes/ingest/sensor-reading.schema.json");
        }
        return contract;
    }

    private BatchRow toRow(Message message, long oldestKeptUs) {
        // untyped: camel-kafka sets these as String, Integer and Long, and a typed read asks the type converter
        // for every record
        String topic = (String) message.getHeader(KafkaConstants.TOPIC);
        Integer partition = (Integer) message.getHeader(KafkaConstants.PARTITION);
        Long offset = (Long) message.getHeader(KafkaConstants.OFFSET);
        // the ingest route's ByteBufferDeserializer hands over a view of the fetched bytes: copying each value into its
        // own array was 5% of what the service allocated (docs/decisions.md 24)
        byte[] bytes;
        int from = 0;
        int length;
        if (message.getBody() instanceof ByteBuffer view && view.hasArray()) {
            bytes = view.array();
            from = view.arrayOffset() + view.position();
            length = view.remaining();
        } else {
            bytes = message.getBody(byte[].class);
            length = bytes == null ? 0 : bytes.length;
        }
        Checked checked = check(bytes, from, length);
        if (checked instanceof Reading r && r.eventTimeUs() < oldestKeptUs) {
            checked = new Problem("too_old", "timestamp " + Instant.EPOCH.plus(r.eventTimeUs(), java.time.temporal.ChronoUnit.MICROS)
                    + " is older than the retention window of " + java.math.BigDecimal.valueOf(retentionDays).stripTrailingZeros().toPlainString()
                    + " days (RETENTION_DAYS)");
        }
        if (checked instanceof Reading r) {
            return BatchRow.reading(topic, partition, offset, r.eventId(), r.sensorId(), r.eventTimeUs(), r.value(), r.extra());
        }
        byte[] payload = bytes == null || from == 0 && length == bytes.length ? bytes : java.util.Arrays.copyOfRange(bytes, from, from + length);
        return reject(topic, partition, offset, keyText(message.getHeader(KafkaConstants.KEY)), payload, (Problem) checked);
    }

    /** What a payload turned out to be: a reading, or the problem that makes it none. */
    sealed interface Checked permits Reading, Problem {
    }

    /** @param extra the contract's other fields, by column; null when it has none */
    record Reading(String eventId, String sensorId, long eventTimeUs, double value, java.util.Map<String, Object> extra) implements Checked {
    }

    /**
     * Why a record is not a reading: {@code code} is one of a few fixed words (the label of the rejected
     * records metric), {@code reason} the sentence kept in rejected_events.
     */
    record Problem(String code, String reason) implements Checked {
    }

    /** The payload is {@code length} bytes of {@code bytes} from {@code from}. */
    private Checked check(byte[] bytes, int from, int length) {
        if (bytes == null || length == 0) {
            return new Problem("empty", "empty payload");
        }
        if (length > maxPayloadBytes) {
            return new Problem("too_large", "payload of " + length + " bytes exceeds the limit of " + maxPayloadBytes);
        }
        boolean ascii = isAsciiWithoutNul(bytes, from, length);
        String text = ascii ? null : strictUtf8(ByteBuffer.wrap(bytes, from, length));
        if (!ascii && text == null) {
            return new Problem("not_utf8", "payload is not valid UTF-8");
        }
        JsonNode json;
        try {
            // ASCII is valid UTF-8, and without NUL bytes Jackson cannot take it for UTF-16 or UTF-32: parsed from the bytes
            Reading reading = streamed(ascii ? factory.createParser(bytes, from, length) : factory.createParser(text));
            if (reading != null) {
                return reading;
            }
            json = ascii ? mapper.readTree(bytes, from, length) : mapper.readTree(text);
        } catch (JsonProcessingException e) {
            return new Problem("not_json", "not JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e); // reading a byte array does no I/O
        }
        if (json == null || !json.isObject()) {
            return new Problem("not_json_object", "not a JSON object");
        }
        List<SensorReadingContract.Field> fields = contract.fields();
        Object[] values = new Object[fields.size()];
        for (int i = 0; i < values.length; i++) {
            SensorReadingContract.Field field = fields.get(i);
            JsonNode node = json.get(field.name());
            if (node == null || node.isNull()) {
                if (field.required()) {
                    return new Problem(field.code(), field.name() + " is missing");
                }
                continue;
            }
            Object checkedValue;
            if (field.type() == SensorReadingContract.Type.TIMESTAMP) {
                long us = node.isTextual() ? IsoTimestamp.epochMicros(node.textValue()) : IsoTimestamp.NOT_PARSED;
                if (us == IsoTimestamp.NOT_PARSED) {
                    Instant time;
                    try {
                        time = timestamp(node);
                    } catch (DateTimeException | ArithmeticException e) {
                        return new Problem(field.code(), field.name() + " " + abbreviate(String.valueOf(node))
                                + " is not ISO 8601 with an offset or epoch seconds/milliseconds");
                    }
                    us = micros(time);
                    if (us == IsoTimestamp.NOT_PARSED) {
                        return new Problem(field.code(), field.name() + " " + time + " is outside years 1 to 9999");
                    }
                }
                checkedValue = us;
            } else {
                String problem = problem(field, node);
                if (problem != null) {
                    return new Problem(field.code(), problem);
                }
                checkedValue = switch (field.type()) {
                    case STRING -> node.textValue();
                    case NUMBER -> node.doubleValue();
                    case INTEGER -> node.longValue();
                    default -> node.booleanValue();
                };
            }
            values[i] = checkedValue;
        }
        return reading(values);
    }

    /**
     * The common case, read as it is parsed, with no tree built (the tree parse was the largest share of the poll
     * threads' profile, docs/decisions.md 24): the payload is a JSON object that has each contract field at most once,
     * every required one not null, each of its plain JSON type and within its bounds. For anything else it returns null,
     * having decided nothing, and the tree is read for the reason, so every rejection keeps its reason whichever way
     * is faster for valid readings.
     */
    private Reading streamed(JsonParser parser) throws java.io.IOException {
        List<SensorReadingContract.Field> fields = contract.fields();
        Object[] values = new Object[fields.size()];
        try (parser) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                int position = contract.position(parser.currentName());
                JsonToken token = parser.nextToken();
                if (position < 0) {
                    parser.skipChildren();
                    continue;
                }
                if (values[position] != null) {
                    return null; // a field twice: the tree keeps the last, and explains any problem
                }
                values[position] = token == JsonToken.VALUE_NULL ? NULL : plainValue(fields.get(position), parser, token);
                if (values[position] == null) {
                    return null;
                }
            }
        } catch (JsonProcessingException e) {
            return null;
        }
        for (int i = 0; i < values.length; i++) {
            if (values[i] == NULL) {
                values[i] = null;
            }
            if (values[i] == null && fields.get(i).required()) {
                return null;
            }
        }
        return reading(values);
    }

    /** The reading of the checked values of the contract's fields, by their place in it (null: absent). */
    private Reading reading(Object[] values) {
        String eventId = null;
        String sensorId = null;
        double value = 0;
        long micros = 0;
        java.util.Map<String, Object> extra = null;
        List<SensorReadingContract.Field> fields = contract.fields();
        for (int i = 0; i < values.length; i++) {
            Object v = values[i];
            if (v == null) {
                continue;
            }
            String column = fields.get(i).column();
            switch (column) {
                case "event_id" -> eventId = (String) v;
                case "sensor_id" -> sensorId = (String) v;
                case "value" -> value = ((Number) v).doubleValue();
                case "timestamp" -> micros = (Long) v;
                default -> {
                    if (extra == null) {
                        extra = new java.util.HashMap<>();
                    }
                    extra.put(column, v);
                }
            }
        }
        return new Reading(eventId, sensorId, micros, value, extra);
    }

    /** A null field's place in {@link #streamed}: seen, and the same as absent. */
    private static final Object NULL = new Object();

    /**
     * The checked value of the current token for the field when it is of the field's plain type and passes its
     * checks (a timestamp: RFC 3339 as IsoTimestamp reads it, or an epoch number); null for anything else.
     */
    private static Object plainValue(SensorReadingContract.Field field, JsonParser parser, JsonToken token) throws java.io.IOException {
        boolean number = token == JsonToken.VALUE_NUMBER_FLOAT
                || token == JsonToken.VALUE_NUMBER_INT && parser.getNumberType() != JsonParser.NumberType.BIG_INTEGER;
        switch (field.type()) {
            case STRING -> {
                String text = token == JsonToken.VALUE_STRING ? parser.getText() : null;
                return text != null && stringProblem(field, text) == null ? text : null;
            }
            case NUMBER -> {
                return number && numberProblem(field, parser.getDoubleValue()) == null ? parser.getDoubleValue() : null;
            }
            case INTEGER -> {
                return token == JsonToken.VALUE_NUMBER_INT && number && numberProblem(field, parser.getDoubleValue()) == null
                        ? parser.getLongValue() : null;
            }
            case BOOLEAN -> {
                return token == JsonToken.VALUE_TRUE || token == JsonToken.VALUE_FALSE ? parser.getBooleanValue() : null;
            }
            default -> {
                long us = token == JsonToken.VALUE_STRING ? IsoTimestamp.epochMicros(parser.getText()) : IsoTimestamp.NOT_PARSED;
                if (us == IsoTimestamp.NOT_PARSED && number) {
                    try {
                        us = micros(epoch(parser.getDoubleValue()));
                    } catch (DateTimeException | ArithmeticException e) {
                        return null;
                    }
                }
                return us == IsoTimestamp.NOT_PARSED ? null : us;
            }
        }
    }

    /** What is wrong with a present, non-null value of a string, number, integer or boolean field; null if nothing. */
    private static String problem(SensorReadingContract.Field field, JsonNode node) {
        String name = field.name();
        switch (field.type()) {
            case STRING -> {
                return node.isTextual() ? stringProblem(field, node.textValue())
                        : name + " must be a string, got " + node.getNodeType().name().toLowerCase();
            }
            case NUMBER, INTEGER -> {
                if (!node.isNumber() || field.type() == SensorReadingContract.Type.INTEGER && !(node.isIntegralNumber() && node.canConvertToLong())) {
                    return name + " must be " + (field.type() == SensorReadingContract.Type.INTEGER ? "an integer" : "a number")
                            + ", got " + node.getNodeType().name().toLowerCase();
                }
                String problem = numberProblem(field, node.doubleValue());
                return problem == null ? null : name + " " + abbreviate(node.asText()) + " " + problem;
            }
            default -> {
                return node.isBoolean() ? null : name + " must be a boolean, got " + node.getNodeType().name().toLowerCase();
            }
        }
    }

    /** What is wrong with a string field's text; null if nothing. */
    private static String stringProblem(SensorReadingContract.Field field, String text) {
        String name = field.name();
        if (field.minLength() > 0 && text.isBlank()) {
            return name + " is empty";
        }
        int length = text.length() > field.maxLength() || text.length() < field.minLength() ? text.codePointCount(0, text.length()) : -1;
        if (length >= 0 && length > field.maxLength()) {
            return name + " is " + length + " characters, longer than " + field.maxLength();
        }
        if (length >= 0 && length < field.minLength()) {
            return name + " is " + length + " characters, shorter than " + field.minLength();
        }
        if (!storableText(text)) {
            return name + " contains a NUL character or an unpaired surrogate";
        }
        return null;
    }

    /** What is wrong with a number field's value, as the end of a sentence that names the field and the value; null if nothing. */
    private static String numberProblem(SensorReadingContract.Field field, double number) {
        if (!Double.isFinite(number)) {
            return "is not a finite double";
        }
        if (field.minimum() != null && number < field.minimum()) {
            return "is below the minimum " + field.minimum();
        }
        if (field.maximum() != null && number > field.maximum()) {
            return "is above the maximum " + field.maximum();
        }
        return null;
    }

    private static Instant timestamp(JsonNode node) {
        if (node == null || node.isNull()) {
            throw new DateTimeException("missing");
        }
        if (node.isNumber()) {
            return epoch(node.doubleValue());
        }
        if (node.isTextual() && node.textValue().length() <= 64) {
            return OffsetDateTime.parse(node.textValue(), DateTimeFormatter.ISO_OFFSET_DATE_TIME).toInstant();
        }
        throw new DateTimeException("not a string or number");
    }

    /** Epoch seconds (below 1e11) or milliseconds as an instant. */
    private static Instant epoch(double epoch) {
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

    /** Microseconds since 1970 of an instant in years 1 to 9999; IsoTimestamp.NOT_PARSED outside them. */
    private static long micros(Instant time) {
        if (time.isBefore(EARLIEST) || time.isAfter(LATEST)) {
            return IsoTimestamp.NOT_PARSED;
        }
        // not ChronoUnit.MICROS.between: it counts in nanoseconds and overflows beyond 292 years from 1970
        return IsoTimestamp.epochMicros(time.getEpochSecond(), time.getNano());
    }

    static boolean isAsciiWithoutNul(byte[] bytes, int from, int length) {
        for (int i = from; i < from + length; i++) {
            if (bytes[i] <= 0) { // NUL, or the first bit set
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
        return strictUtf8(ByteBuffer.wrap(bytes));
    }

    private static String strictUtf8(ByteBuffer bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes)
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
