package org.sensormetrics.consumer;

import java.time.DateTimeException;
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
