package org.sensormetrics.consumer;

import java.time.DateTimeException;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.camel.Exchange;
import org.apache.camel.Message;

/**
 * Checks the read API's query parameters and turns them into the named parameters of its SQL files, or
 * fails with a message that says which parameter is wrong and why (the API answers it with 400).
 */
public class ReadApiParameters {

    private static final OffsetDateTime EARLIEST = OffsetDateTime.of(1, 1, 1, 0, 0, 0, 0, ZoneOffset.UTC);
    private static final OffsetDateTime LATEST = OffsetDateTime.of(9999, 12, 31, 23, 59, 59, 999_999_000, ZoneOffset.UTC);

    private int defaultLimit = 100;
    private int maxLimit = 1000;
    private int maxOffset = 100_000;
    private int maxIdLength = 255;
    private int payloadChars = 1000;
    private int maxSeriesPoints = 20_160;

    public void setDefaultLimit(int defaultLimit) {
        this.defaultLimit = defaultLimit;
    }

    public void setMaxLimit(int maxLimit) {
        this.maxLimit = maxLimit;
    }

    public void setMaxOffset(int maxOffset) {
        this.maxOffset = maxOffset;
    }

    public void setMaxIdLength(int maxIdLength) {
        this.maxIdLength = maxIdLength;
    }

    public void setPayloadChars(int payloadChars) {
        this.payloadChars = payloadChars;
    }

    public void setMaxSeriesPoints(int maxSeriesPoints) {
        this.maxSeriesPoints = maxSeriesPoints;
    }

    /** GET /api/metrics?sensorId=&from=&to=&limit=&offset= */
    public Map<String, Object> metrics(Exchange exchange) {
        Map<String, Object> query = range(exchange.getMessage());
        query.put("limit", integer(exchange.getMessage(), "limit", defaultLimit, 1, maxLimit));
        query.put("offset", integer(exchange.getMessage(), "offset", 0, 0, maxOffset));
        return query;
    }

    /** GET /api/metrics/summary?sensorId=&from=&to= */
    public Map<String, Object> summary(Exchange exchange) {
        return range(exchange.getMessage());
    }

    /**
     * GET /api/metrics/series?sensorId=&from=&to=&step= : one sensor (required), a step of 1m, 1h or 1d, from and to
     * widened to whole steps (to defaults to now, from to maxSeriesPoints steps before it); at most
     * maxSeriesPoints steps.
     */
    public Map<String, Object> series(Exchange exchange) {
        Message message = exchange.getMessage();
        Map<String, Object> query = range(message);
        if (query.get("sensorId").equals("")) {
            throw new InvalidQueryParameter("sensorId", "is required: the series of one sensor");
        }
        String step = text(message, "step");
        Duration length = step == null ? null : STEPS.get(step);
        if (length == null) {
            throw new InvalidQueryParameter("step", "must be one of " + STEPS.keySet() + ", got '" + abbreviate(String.valueOf(step)) + "'");
        }
        OffsetDateTime to = given(message, "to") ? (OffsetDateTime) query.get("to") : OffsetDateTime.now(ZoneOffset.UTC);
        to = to.equals(floor(to, length)) ? to : floor(to, length).plus(length);
        // widened first, so that the default range is maxSeriesPoints steps, not one more
        OffsetDateTime from = given(message, "from") ? floor((OffsetDateTime) query.get("from"), length)
                : to.minus(length.multipliedBy(maxSeriesPoints));
        if (!from.isBefore(to)) {
            throw new InvalidQueryParameter("from", "must be before to");
        }
        long points = Duration.between(from, to).dividedBy(length);
        if (points > maxSeriesPoints) {
            throw new InvalidQueryParameter("step", points + " steps of " + step + " from " + from + " to " + to
                    + ": at most " + maxSeriesPoints + "; take a longer step or a shorter range");
        }
        query.put("step", step);
        query.put("from", from);
        query.put("to", to);
        return query;
    }

    private static final Map<String, Duration> STEPS = new LinkedHashMap<>();

    static {
        STEPS.put("1m", Duration.ofMinutes(1));
        STEPS.put("1h", Duration.ofHours(1));
        STEPS.put("1d", Duration.ofDays(1));
    }

    /** The start of the step that holds time, steps counted from 1970 in UTC. */
    private static OffsetDateTime floor(OffsetDateTime time, Duration step) {
        long seconds = time.toEpochSecond();
        return OffsetDateTime.ofInstant(java.time.Instant.ofEpochSecond(Math.floorDiv(seconds, step.toSeconds()) * step.toSeconds()), ZoneOffset.UTC);
    }

    /** GET /api/rejected?limit= */
    public Map<String, Object> rejected(Exchange exchange) {
        Map<String, Object> query = new LinkedHashMap<>();
        query.put("limit", integer(exchange.getMessage(), "limit", defaultLimit, 1, maxLimit));
        query.put("payloadChars", payloadChars);
        return query;
    }

    /** The 400 body: which parameter and why. */
    public Map<String, Object> badRequest(Exchange exchange) {
        InvalidQueryParameter e = exchange.getProperty(Exchange.EXCEPTION_CAUGHT, InvalidQueryParameter.class);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", "invalid query parameter");
        body.put("parameter", e.getParameter());
        body.put("message", e.getMessage());
        return body;
    }

    private Map<String, Object> range(Message message) {
        Map<String, Object> query = new LinkedHashMap<>();
        String sensorId = text(message, "sensorId");
        if (sensorId != null && (sensorId.isBlank() || sensorId.length() > maxIdLength)) {
            throw new InvalidQueryParameter("sensorId", "must be 1 to " + maxIdLength + " characters");
        }
        query.put("sensorId", sensorId == null ? "" : sensorId);
        OffsetDateTime from = time(message, "from", EARLIEST);
        OffsetDateTime to = time(message, "to", LATEST);
        if (from.isAfter(to)) {
            throw new InvalidQueryParameter("from", "must not be after to (" + from + " > " + to + ")");
        }
        query.put("from", from);
        query.put("to", to);
        return query;
    }

    private static String text(Message message, String name) {
        Object value = message.getHeader(name);
        if (value instanceof Iterable<?>) {
            throw new InvalidQueryParameter(name, "is given more than once");
        }
        return value == null ? null : value.toString();
    }

    private static boolean given(Message message, String name) {
        String text = text(message, name);
        return text != null && !text.isEmpty();
    }

    private static int integer(Message message, String name, int fallback, int min, int max) {
        String text = text(message, name);
        if (text == null || text.isEmpty()) {
            return fallback;
        }
        try {
            int value = Integer.parseInt(text);
            if (value >= min && value <= max) {
                return value;
            }
        } catch (NumberFormatException e) {
            // answered below, with the bounds
        }
        throw new InvalidQueryParameter(name, "must be an integer from " + min + " to " + max + ", got '" + abbreviate(text) + "'");
    }

    private static OffsetDateTime time(Message message, String name, OffsetDateTime fallback) {
        String text = text(message, name);
        if (text == null || text.isEmpty()) {
            return fallback;
        }
        try {
            // an unencoded "+02:00" in a query string arrives as " 02:00"
            OffsetDateTime time = OffsetDateTime.parse(text.replace(' ', '+'), DateTimeFormatter.ISO_OFFSET_DATE_TIME);
            if (!time.isBefore(EARLIEST) && !time.isAfter(LATEST)) {
                return time;
            }
        } catch (DateTimeException e) {
            // answered below
        }
        throw new InvalidQueryParameter(name, "must be an ISO 8601 timestamp with an offset between years 1 and 9999, like 2024-01-15T10:30:00Z, got '"
                + abbreviate(text) + "'");
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 37) + "...";
    }
}
