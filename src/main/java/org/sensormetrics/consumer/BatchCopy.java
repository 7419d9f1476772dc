package org.sensormetrics.consumer;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import javax.sql.DataSource;

import org.apache.camel.Exchange;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.datasource.DataSourceUtils;

/**
 * The common case of a batch, written with binary COPY: readings only, every event_id once, none stored before.
 * COPY inserts rows in bulk where the batch statement inserts them one by one, each with its conflict check, and
 * costs PostgreSQL about half as much per batch (docs/decisions.md 19).
 *
 * <p>It writes on the connection of the caller's transaction, inside a savepoint. Anything else (a rejected record,
 * an event_id twice in the batch) is left to store-batch.sql, and so is a batch whose COPY meets a key already
 * stored (a redelivery after a crash, or another consumer during a rebalance): the primary key, which is the
 * idempotency claim, stops the COPY, the savepoint is rolled back, and the statement, which skips stored events,
 * writes the batch in the same transaction. As in the statement, metrics.id is drawn in Kafka order and the rows go
 * in key order, so two consumers meeting on the same events wait for each other in one order.
 * PostgreSQL's COPY has no Camel component: hence Java. The columns are the batch statement's, and a contract
 * column beyond the core four is the metrics column of the same name, as in store-batch.sql.
 */
public class BatchCopy {

    private static final Logger LOG = LoggerFactory.getLogger(BatchCopy.class);
    private static final String UNIQUE_VIOLATION = "23505";
    private static final Comparator<BatchRow> KAFKA_ORDER = Comparator.comparingInt(BatchRow::kafkaPartition)
            .thenComparingLong(BatchRow::kafkaOffset);
    private static final Comparator<Numbered> KEY_ORDER = Comparator.comparingLong((Numbered n) -> n.row().eventTimeUs())
            .thenComparing(n -> n.row().eventId());

    /** metrics' columns, in the order rows are written, and the type each one's binary form is. */
    private static final Map<String, String> METRICS_COLUMNS = ordered("id", "bigint", "sensor_id", "text", "event_id", "text",
            "timestamp", "timestamp with time zone", "value", "double precision", "kafka_partition", "integer",
            "kafka_offset", "bigint");

    /** By the contract columns a batch has values for (and their Java types): whether COPY may write it. */
    private final Map<Map<String, Class<?>>, Boolean> fits = new ConcurrentHashMap<>();

    /** The one camel-sql uses, found as it finds it, once: the registry's only DataSource. */
    private volatile DataSource dataSource;

    /** A reading and the metrics.id it gets. */
    private record Numbered(long id, BatchRow row) {
    }

    private static Map<String, String> ordered(String... columnsAndTypes) {
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < columnsAndTypes.length; i += 2) {
            map.put(columnsAndTypes[i], columnsAndTypes[i + 1]);
        }
        return java.util.Collections.unmodifiableMap(map);
    }

    /**
     * Copies the batch's readings into metrics when it can, and returns the number of metrics rows it wrote; null,
     * having written nothing, when store-batch.sql must write the batch.
     */
    public Long copy(Exchange exchange) throws SQLException {
        @SuppressWarnings("unchecked")
        List<BatchRow> rows = exchange.getMessage().getBody(List.class);
        if (rows.isEmpty() || !copyable(rows)) {
            return null;
        }
        List<BatchRow> readings = new ArrayList<>(rows);
        readings.sort(KAFKA_ORDER);
        // the contract's other columns this batch has values for, and the type of those values
        Map<String, Class<?>> extras = new TreeMap<>();
        for (BatchRow r : readings) {
            if (r.extra() != null) {
                r.extra().forEach((column, value) -> extras.putIfAbsent(column, value.getClass()));
            }
        }

        if (dataSource == null) {
            dataSource = exchange.getContext().getRegistry().mandatoryFindSingleByType(DataSource.class);
        }
        // DataSourceUtils hands out the connection of the caller's transaction
        Connection connection = DataSourceUtils.getConnection(dataSource);
        try {
            if (!binaryFormsFit(connection, extras)) {
                return null;
            }
            List<Numbered> numbered = numbered(connection, readings);
            numbered.sort(KEY_ORDER);
            var copyApi = connection.unwrap(PGConnection.class).getCopyAPI();
            Savepoint savepoint = connection.setSavepoint();
            CopyIn copy = copyApi.copyIn("COPY metrics (" + String.join(", ", METRICS_COLUMNS.keySet())
                    + (extras.isEmpty() ? "" : ", " + String.join(", ", extras.keySet())) + ") FROM STDIN (FORMAT binary)");
            long stored;
            try {
                stored = writeRows(new CopyBinary(copy), numbered, extras.keySet());
            } catch (SQLException | RuntimeException e) {
                // a COPY left open holds the connection: not even the rollback could run on it
                if (copy.isActive()) {
                    copy.cancelCopy();
                }
                if (!(e instanceof SQLException failed) || !UNIQUE_VIOLATION.equals(failed.getSQLState())) {
                    throw e;
                }
                connection.rollback(savepoint);
                LOG.debug("Batch holds events stored before; store-batch.sql writes it: {}", e.getMessage());
                return null;
            }
            connection.releaseSavepoint(savepoint);
            return stored;
        } finally {
            DataSourceUtils.releaseConnection(connection, dataSource);
        }
    }

    /**
     * Whether every column takes the binary form this class sends: checked in the catalog once per set of columns,
     * as binary COPY does not convert (a double's 8 bytes would go into a bigint column as a wrong number). Where one
     * does not, the statement, which casts, writes those batches, and a warning names the column.
     */
    private boolean binaryFormsFit(Connection connection, Map<String, Class<?>> extras) throws SQLException {
        Boolean known = fits.get(extras);
        if (known != null) {
            return known;
        }
        Map<String, String> types = new HashMap<>();
        try (var st = connection.prepareStatement("""
                SELECT c.relname || '.' || a.attname, format_type(a.atttypid, NULL)
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                WHERE a.attrelid = CAST(to_regclass('metrics') AS oid)
                  AND a.attnum > 0 AND NOT a.attisdropped""");
             var rs = st.executeQuery()) {
            while (rs.next()) {
                types.put(rs.getString(1), rs.getString(2));
            }
        }
        Map<String, String> wanted = new LinkedHashMap<>();
        METRICS_COLUMNS.forEach((column, type) -> wanted.put("metrics." + column, type));
        extras.forEach((column, javaType) -> wanted.put("metrics." + column, SensorReadingContract.Type.copyColumnTypeOf(javaType)));
        List<String> misfits = new ArrayList<>();
        wanted.forEach((column, type) -> {
            String actual = types.get(column);
            if (actual != null && !actual.equals(type) && !(type.equals("text") && actual.equals("character varying"))) {
                misfits.add(column + " is " + actual + ", not " + type);
            }
        });
        if (!misfits.isEmpty()) {
            LOG.warn("Batches are written by store-batch.sql, not COPY, which sends each value in its binary form: {}", String.join("; ", misfits));
        }
        fits.put(Map.copyOf(extras), misfits.isEmpty());
        return misfits.isEmpty();
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

    /** The readings, in Kafka order, each with an id from metrics_id_seq: the sequence's next values, in one round trip. */
    private static List<Numbered> numbered(Connection connection, List<BatchRow> readings) throws SQLException {
        List<Numbered> numbered = new ArrayList<>(readings.size());
        try (var st = connection.prepareStatement("SELECT nextval('metrics_id_seq') FROM generate_series(1, ?) ORDER BY 1")) {
            st.setInt(1, readings.size());
            try (var rs = st.executeQuery()) {
                for (BatchRow r : readings) {
                    if (!rs.next()) {
                        throw new SQLException("metrics_id_seq gave fewer ids than the batch has readings");
                    }
                    numbered.add(new Numbered(rs.getLong(1), r));
                }
            }
        }
        return numbered;
    }

    /** Writes the rows in COPY's binary format and ends the COPY; returns the number of rows it stored. */
    private static long writeRows(CopyBinary out, List<Numbered> numbered, Set<String> extras) throws SQLException {
        // an array: a TreeMap's key set, even empty, costs an entry lookup per row to iterate (seen in JFR profiles)
        String[] extraColumns = extras.toArray(new String[0]);
        for (Numbered n : numbered) {
            BatchRow r = n.row();
            out.row(METRICS_COLUMNS.size() + extraColumns.length).int8(n.id()).text(r.sensorId()).text(r.eventId())
                    .timestamp(r.eventTimeUs()).float8(r.value()).int4(r.kafkaPartition()).int8(r.kafkaOffset());
            for (String column : extraColumns) {
                out.value(r.extra() == null ? null : r.extra().get(column));
            }
        }
        return out.end();
    }

    /**
     * COPY's binary format: no escapes to write, and no text for PostgreSQL to parse back into timestamps and
     * doubles (the text format cost the poll threads a fifth of their profile samples). Each value goes in the
     * binary form of text, double precision, bigint or boolean, by its Java type. Written through a buffer of
     * 64 KiB: a whole batch in one array (half a megabyte for 5,000 readings, doubled as it grew) was a humongous
     * allocation for G1 with a 256 MB heap, and each one can start a marking cycle (docs/decisions.md 24).
     */
    private static final class CopyBinary {
        private static final byte[] SIGNATURE = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0};
        /** PostgreSQL's timestamps count microseconds from 2000-01-01 UTC. */
        private static final long MICROS_1970_TO_2000 = 946_684_800_000_000L;

        private final CopyIn copy;
        private final byte[] buf = new byte[64 * 1024];
        private int len;

        CopyBinary(CopyIn copy) throws SQLException {
            this.copy = copy;
            put(SIGNATURE, SIGNATURE.length);
            rawInt(0); // flags
            rawInt(0); // header extension length
        }

        CopyBinary row(int fields) throws SQLException {
            ensure(2);
            buf[len++] = (byte) (fields >>> 8);
            buf[len++] = (byte) fields;
            return this;
        }

        CopyBinary text(String s) throws SQLException {
            if (s == null) {
                rawInt(-1);
                return this;
            }
            int n = s.length();
            if (n <= buf.length / 4 && isAscii(s)) {
                // ids are ASCII nearly always: their bytes are their chars, with no array made to hold them
                rawInt(n);
                ensure(n);
                for (int i = 0; i < n; i++) {
                    buf[len++] = (byte) s.charAt(i);
                }
                return this;
            }
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            rawInt(utf8.length);
            put(utf8, utf8.length);
            return this;
        }

        CopyBinary int4(int n) throws SQLException {
            rawInt(4);
            rawInt(n);
            return this;
        }

        CopyBinary int8(long n) throws SQLException {
            rawInt(8);
            rawLong(n);
            return this;
        }

        CopyBinary float8(double d) throws SQLException {
            return int8(Double.doubleToLongBits(d));
        }

        /** Microseconds since 1970, as timestamptz. */
        CopyBinary timestamp(long micros) throws SQLException {
            return int8(micros - MICROS_1970_TO_2000);
        }

        CopyBinary value(Object value) throws SQLException {
            if (value instanceof Double d) {
                return float8(d);
            }
            if (value instanceof Long n) {
                return int8(n);
            }
            if (value instanceof Boolean b) {
                rawInt(1);
                ensure(1);
                buf[len++] = (byte) (b ? 1 : 0);
                return this;
            }
            return text(value == null ? null : value.toString());
        }

        /** The trailer; then the COPY ends, and what it stored is counted. */
        long end() throws SQLException {
            ensure(2);
            buf[len++] = (byte) 0xff;
            buf[len++] = (byte) 0xff;
            flush();
            return copy.endCopy();
        }

        private static boolean isAscii(String s) {
            for (int i = 0; i < s.length(); i++) {
                if (s.charAt(i) >= 0x80) {
                    return false;
                }
            }
            return true;
        }

        private void rawInt(int n) throws SQLException {
            ensure(4);
            buf[len++] = (byte) (n >>> 24);
            buf[len++] = (byte) (n >>> 16);
            buf[len++] = (byte) (n >>> 8);
            buf[len++] = (byte) n;
        }

        private void rawLong(long n) throws SQLException {
            rawInt((int) (n >>> 32));
            rawInt((int) n);
        }

        private void put(byte[] bytes, int count) throws SQLException {
            int from = 0;
            while (count - from > buf.length - len) {
                int part = buf.length - len;
                System.arraycopy(bytes, from, buf, len, part);
                len += part;
                from += part;
                flush();
            }
            System.arraycopy(bytes, from, buf, len, count - from);
            len += count - from;
        }

        private void ensure(int more) throws SQLException {
            if (len + more > buf.length) {
                flush();
            }
        }

        private void flush() throws SQLException {
            copy.writeToCopy(buf, 0, len);
            len = 0;
        }
    }
}
