package org.sensormetrics.consumer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import javax.sql.DataSource;

import org.apache.camel.Exchange;
import org.apache.camel.component.sql.SqlConstants;
import org.postgresql.PGConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.datasource.DataSourceUtils;

/**
 * The common case of a batch, written with COPY: readings only, every event_id once, none stored before. COPY
 * inserts rows in bulk where the batch statement inserts them one by one, each with its conflict check, and costs
 * PostgreSQL about a third less per batch (docs/decisions.md 19).
 *
 * <p>It writes on the connection of the caller's transaction, inside a savepoint. Anything else (a rejected record,
 * an event_id twice in the batch) is left to store-batch.sql, and so is a batch whose COPY meets a key already
 * stored (a redelivery after a crash, or another consumer during a rebalance): the unique key stops the COPY, the
 * savepoint is rolled back, and the statement, which skips stored events, writes the batch in the same transaction.
 * PostgreSQL's COPY has no Camel component: hence Java. The tables' columns are the batch statement's, and a
 * contract column beyond the core four is a metrics column of the same name, as in store-batch.sql.
 */
public class BatchCopy {

    private static final Logger LOG = LoggerFactory.getLogger(BatchCopy.class);
    private static final String UNIQUE_VIOLATION = "23505";
    private static final Comparator<BatchRow> KAFKA_ORDER = Comparator.comparing(BatchRow::kafkaPartition)
            .thenComparing(BatchRow::kafkaOffset);
    /** Key order, the statement's too: two consumers meeting on the same events wait for each other in one order. */
    private static final Comparator<BatchRow> KEY_ORDER = Comparator.comparing(BatchRow::eventTimeUs)
            .thenComparing(BatchRow::eventId);


    /**
     * Copies the batch's readings into processed_events and metrics when it can, and then sets the number of metrics
     * rows as camel-sql would; returns false, having written nothing, when store-batch.sql must write the batch.
     */
    public boolean copy(Exchange exchange) throws SQLException, IOException {
        @SuppressWarnings("unchecked")
        List<BatchRow> rows = exchange.getMessage().getBody(List.class);
        if (rows.isEmpty() || !copyable(rows)) {
            return false;
        }
        List<BatchRow> readings = new ArrayList<>(rows);
        readings.sort(KAFKA_ORDER);
        Set<String> extras = new TreeSet<>();
        for (BatchRow r : readings) {
            if (r.extra() != null) {
                extras.addAll(r.extra().keySet());
            }
        }
        CopyText metrics = metricsRows(readings, extras);
        readings.sort(KEY_ORDER);
        CopyText claims = processedEventsRows(readings);

        // the one camel-sql uses, found as it finds it; DataSourceUtils hands out the transaction's connection
        DataSource dataSource = exchange.getContext().getRegistry().mandatoryFindSingleByType(DataSource.class);
        Connection connection = DataSourceUtils.getConnection(dataSource);
        try {
            var copy = connection.unwrap(PGConnection.class).getCopyAPI();
            Savepoint savepoint = connection.setSavepoint();
            try {
                copy.copyIn("COPY processed_events (event_id, sensor_id, kafka_partition, kafka_offset, event_time) FROM STDIN",
                        claims.stream());
                long stored = copy.copyIn("COPY metrics (sensor_id, event_id, timestamp, value"
                        + (extras.isEmpty() ? "" : ", " + String.join(", ", extras)) + ") FROM STDIN", metrics.stream());
                connection.releaseSavepoint(savepoint);
                exchange.getMessage().setHeader(SqlConstants.SQL_UPDATE_COUNT, stored);
                return true;
            } catch (SQLException e) {
                if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
                    throw e;
                }
                connection.rollback(savepoint);
                LOG.debug("Batch holds events stored before; store-batch.sql writes it: {}", e.getMessage());
                return false;
            }
        } finally {
            DataSourceUtils.releaseConnection(connection, dataSource);
        }
    }

    /** Readings only, each event_id once. */
    private static boolean copyable(List<BatchRow> rows) {
        Set<String> ids = new HashSet<>(rows.size() * 2);
        for (BatchRow r : rows) {
            if (r.reason() != null || !ids.add(r.eventId())) {
                return false;
            }
        }
        return true;
    }

    private static CopyText processedEventsRows(List<BatchRow> readings) {
        CopyText out = new CopyText(readings.size() * 96);
        for (BatchRow r : readings) {
            out.text(r.eventId()).tab().text(r.sensorId()).tab().number(r.kafkaPartition()).tab().number(r.kafkaOffset()).tab()
                    .timestamp(r.eventTimeUs()).newline();
        }
        return out;
    }

    private static CopyText metricsRows(List<BatchRow> readings, Set<String> extras) {
        CopyText out = new CopyText(readings.size() * 96);
        for (BatchRow r : readings) {
            out.text(r.sensorId()).tab().text(r.eventId()).tab().timestamp(r.eventTimeUs()).tab().text(Double.toString(r.value()));
            for (String column : extras) {
                Object value = r.extra() == null ? null : r.extra().get(column);
                out.tab().text(value == null ? null : value.toString());
            }
            out.newline();
        }
        return out;
    }

    /** COPY's text format: tab between columns, \N for null, backslash escapes in values. */
    private static final class CopyText {
        private byte[] buf;
        private int len;

        CopyText(int capacity) {
            buf = new byte[Math.max(capacity, 64)];
        }

        CopyText tab() {
            return put((byte) '\t');
        }

        CopyText newline() {
            return put((byte) '\n');
        }

        CopyText number(long n) {
            return ascii(Long.toString(n));
        }

        CopyText text(String s) {
            if (s == null) {
                return ascii("\\N");
            }
            int n = s.length();
            ensure(2 * n);
            int start = len;
            for (int i = 0; i < n; i++) {
                char c = s.charAt(i);
                if (c >= 0x80) {
                    len = start;
                    return utf8(s);
                }
                byte escaped = switch (c) {
                    case '\\' -> (byte) '\\';
                    case '\t' -> (byte) 't';
                    case '\n' -> (byte) 'n';
                    case '\r' -> (byte) 'r';
                    default -> 0;
                };
                if (escaped != 0) {
                    buf[len++] = '\\';
                    buf[len++] = escaped;
                } else {
                    buf[len++] = (byte) c;
                }
            }
            return this;
        }

        /** A string with non-ASCII characters: its UTF-8 bytes, none of which is a tab, newline or backslash. */
        private CopyText utf8(String s) {
            String escaped = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
            for (byte b : escaped.getBytes(StandardCharsets.UTF_8)) {
                put(b);
            }
            return this;
        }

        /** Microseconds since 1970 as ISO 8601 in UTC, years 1 to 9999, which PostgreSQL reads whatever its DateStyle. */
        CopyText timestamp(long micros) {
            LocalDateTime t = LocalDateTime.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), 0, ZoneOffset.UTC);
            digits(t.getYear(), 4).put((byte) '-').digits(t.getMonthValue(), 2).put((byte) '-').digits(t.getDayOfMonth(), 2)
                    .put((byte) ' ').digits(t.getHour(), 2).put((byte) ':').digits(t.getMinute(), 2).put((byte) ':')
                    .digits(t.getSecond(), 2).put((byte) '.').digits((int) Math.floorMod(micros, 1_000_000L), 6);
            return ascii("+00");
        }

        private CopyText digits(int n, int width) {
            ensure(width);
            for (int i = width - 1; i >= 0; i--) {
                buf[len + i] = (byte) ('0' + n % 10);
                n /= 10;
            }
            len += width;
            return this;
        }

        private CopyText ascii(String s) {
            ensure(s.length());
            for (int i = 0; i < s.length(); i++) {
                buf[len++] = (byte) s.charAt(i);
            }
            return this;
        }

        private CopyText put(byte b) {
            ensure(1);
            buf[len++] = b;
            return this;
        }

        private void ensure(int more) {
            if (len + more > buf.length) {
                buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + more));
            }
        }

        InputStream stream() {
            return new ByteArrayInputStream(buf, 0, len);
        }
    }
}
