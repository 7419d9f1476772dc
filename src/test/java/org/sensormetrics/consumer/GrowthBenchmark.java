package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * How the cost of storing an event grows with the table: N contract events (random version-4 ids, 5,000 sensors,
 * 12 partitions) produced first, then read from the beginning by the packaged jar into one storage layout, with
 * PostgreSQL's memory (page cache included) held low so that the indexes outgrow it within the run, as they
 * would in production within hours. Prints the events/s of each tenth of the run, the table, index and WAL
 * sizes at the end, the settings, and the dashboard queries' plans.
 *
 * <pre>mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.GrowthBenchmark</pre>
 *
 * Environment: GROWTH_EVENTS (50,000,000), GROWTH_LAYOUT (partitioned, the default layout; or reference: the
 * reference schema's unpartitioned tables, src/test/resources/reference-schema.sql), GROWTH_PG_MEMORY (2g; 0 for
 * no limit; a cgroup v1 memory group, so root), GROWTH_SENSORS (5,000), GROWTH_IDS (random or sequential).
 * Compressed time: GROWTH_DAY_EVERY=N makes event times advance one day every N events, from the run's start,
 * and GROWTH_RETENTION_DAYS=R then drops, every few seconds while the service stores, the partitions that end
 * more than R days and the drop grace before the newest stored event (the service's own maintenance counts from
 * the wall clock, which a compressed run does not move); it prints the disk use of each tenth and checks that
 * every event of the last R days is stored once. GROWTH_MIGRATE=true, with the reference layout, then times the
 * documented migration of those tables (routes/migrate). Exits 1 if an event is missing or doubled.
 */
public final class GrowthBenchmark {

    private GrowthBenchmark() {
    }

    public static void main(String[] args) {
        Pipeline.exitWith(GrowthBenchmark::run);
    }

    private static boolean run() throws Exception {
        long events = Long.parseLong(env("GROWTH_EVENTS", "50000000"));
        boolean reference = "reference".equals(env("GROWTH_LAYOUT", "partitioned"));
        long pgMemory = bytes(env("GROWTH_PG_MEMORY", "2g"));
        int sensors = Integer.parseInt(env("GROWTH_SENSORS", "5000"));
        boolean sequentialIds = "sequential".equals(env("GROWTH_IDS", "random"));
        long dayEvery = Long.parseLong(env("GROWTH_DAY_EVERY", "0"));
        double retentionDays = Double.parseDouble(env("GROWTH_RETENTION_DAYS", "0"));
        String xmx = env("BENCH_XMX", "256m");
        boolean rollups = !reference && !"false".equals(env("ROLLUPS_ENABLED", "true"));
        String[] pgSettings = {"shared_buffers=512MB", "max_wal_size=4GB", "synchronous_commit=on"};

        Pipeline.startOrUseServices(Path.of("target/growth-postgres"), pgMemory, pgSettings);
        dropEarlierRuns();
        String run = "growth_" + System.currentTimeMillis() % 1_000_000;
        Pipeline p = new Pipeline(run, run, run, 12);
        Map<String, String> serviceEnv = new HashMap<>();
        if (reference) {
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute(Files.readString(Path.of("src/test/resources/reference-schema.sql")));
            }
            serviceEnv.put("DB_SCHEMA_CREATE", "false");
        }
        Instant start = Instant.now().truncatedTo(ChronoUnit.MICROS);
        // event times as a fleet at the reference load would have made them, ending now (a topic produced in a
        // minute would put all of them into one minute); compressed: a day every GROWTH_DAY_EVERY events from now
        double eventsPerSecond = Double.parseDouble(env("GROWTH_EVENT_RATE", "20000"));
        LoadGenerator.Clock clock = dayEvery > 0
                ? n -> start.plusNanos((long) ((double) n / dayEvery * 86_400e9))
                : n -> start.minusNanos((long) ((events - n) / eventsPerSecond * 1e9));
        var load = p.load(sensors, events).withSeed(42).withSequentialIds(sequentialIds).withClock(clock);

        Map<String, String> results = new LinkedHashMap<>();
        results.put("machine", Runtime.getRuntime().availableProcessors() + " cores, "
                + Files.readAllLines(Path.of("/proc/meminfo")).get(0).replaceAll("\\s+", " "));
        results.put("layout", reference ? "reference (unpartitioned, unique event_id indexes)" : "partitioned (default of a new database)");
        results.put("events", String.format("%,d, %,d sensors, 12 partitions, %s ids, read from the beginning%s", events, sensors,
                sequentialIds ? "sequential" : "random v4",
                dayEvery > 0 ? String.format("; event time advances a day every %,d events, retention %s days", dayEvery, retentionDays)
                        : String.format("; event times %,.0f a second, ending at the start", eventsPerSecond)));
        results.put("PostgreSQL", String.join(", ", pgSettings) + (pgMemory > 0 ? ", memory and page cache held to " + env("GROWTH_PG_MEMORY", "2g")
                + " (cgroup v1)" : ", no memory limit"));
        results.put("service", "java -Xmx" + xmx + " -jar, defaults" + (rollups ? ", rollups on" : ", rollups off"));

        System.out.printf("Producing %,d events ...%n", events);
        System.out.println(LoadGenerator.produce(load));
        long walStart = lsn(p);
        Path log = Path.of("target/growth-service.log");
        Files.deleteIfExists(log);
        ServiceProcess service = ServiceProcess.start(p, log, xmx, serviceEnv);
        List<String> tenths = new ArrayList<>();
        List<String> disk = new ArrayList<>();
        List<String> dropped = new ArrayList<>();
        long droppedEvents = 0;
        try {
            long previousCount = 0;
            long previousNanos = 0;
            int tenth = 1;
            long lastDrop = 0;
            long lastPrint = System.nanoTime();
            long deadline = System.nanoTime() + TimeUnit.HOURS.toNanos(3);
            while (tenth <= 10) {
                long stored = events - p.lag();
                long now = System.nanoTime();
                if (previousNanos == 0 && stored > 0) {
                    previousNanos = now; // the first committed batch starts the clock
                    previousCount = stored;
                }
                if (tenth <= 10 && stored >= events * tenth / 10) {
                    // tenths passed between two samples (a small run) share the rate since the last tenth
                    String rate = String.format("%,.0f", (stored - previousCount) / ((now - previousNanos) / 1e9));
                    while (tenth <= 10 && stored >= events * tenth / 10) {
                        tenths.add(rate);
                        disk.add(mb(tableBytes(p)));
                        tenth++;
                    }
                    previousCount = stored;
                    previousNanos = now;
                }
                if (retentionDays > 0 && stored > 0 && now - lastDrop > TimeUnit.SECONDS.toNanos(5)) { // the tables exist
                    droppedEvents += dropExpired(p, retentionDays, dropped);
                    lastDrop = now;
                }
                if (now - lastPrint > TimeUnit.SECONDS.toNanos(30)) {
                    System.out.printf("  stored %,d of %,d, PostgreSQL's memory group %s MB%n", stored, events,
                            mb(Pipeline.postgres().memoryGroupUsage()));
                    lastPrint = now;
                }
                if (now > deadline) {
                    throw new IllegalStateException("not caught up after 3 hours");
                }
                Thread.sleep(200);
            }
            if (rollups) {
                long lagZero = System.nanoTime();
                Pipeline.await("rollups caught up", java.time.Duration.ofHours(1),
                        () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM metrics_rollup_stale") == 0));
                results.put("rollups", String.format("caught up %.0f s after lag 0 (ROLLUP_REFRESH_INTERVAL_MS=%s)",
                        (System.nanoTime() - lagZero) / 1e9, env("ROLLUP_REFRESH_INTERVAL_MS", "60000")));
            }
        } finally {
            service.stop();
        }
        results.put("events/s per tenth", String.join(" / ", tenths));
        results.put("last tenth / first tenth", String.format("%.2f", parse(tenths.get(9)) / parse(tenths.get(0))));
        results.put("WAL written", mb(lsn(p) - walStart) + " MB");
        try (Connection c = p.db(); var st = c.createStatement()) {
            for (String table : List.of("metrics", "processed_events")) {
                // a plain table has no partition tree: then it is its own only member
                try (ResultSet rs = st.executeQuery("""
                        SELECT sum(pg_table_size(relid)), sum(pg_indexes_size(relid)), count(*) FILTER (WHERE isleaf AND level > 0)
                        FROM (SELECT relid, isleaf, level FROM pg_partition_tree('%1$s') UNION SELECT '%1$s'::regclass, true, 0) t
                        """.formatted(table))) {
                    rs.next();
                    results.put(table, String.format("table %s MB, indexes %s MB, %d partition(s)", mb(rs.getLong(1)), mb(rs.getLong(2)), rs.getLong(3)));
                }
            }
            // each index over all its partitions (a partitioned index has no pages of its own)
            try (ResultSet rs = st.executeQuery("""
                    SELECT string_agg(i.indexrelid::regclass || ' ' || pg_size_pretty(pg_relation_size(i.indexrelid)
                             + coalesce((SELECT sum(pg_relation_size(t.relid)) FROM pg_partition_tree(i.indexrelid) t), 0)), ', '
                             ORDER BY i.indexrelid::regclass::text)
                    FROM pg_index i WHERE i.indrelid IN ('metrics'::regclass, 'processed_events'::regclass)""")) {
                rs.next();
                results.put("indexes", rs.getString(1));
            }
        }
        if (retentionDays > 0) {
            results.put("tables' size per tenth (MB)", String.join(" / ", disk));
            results.put("partitions dropped under load", dropped.size() + " (" + String.format("%,d", droppedEvents) + " events): " + String.join(", ", dropped));
        }
        // every event still in the window exactly once; the others' partitions are gone, whole
        long kept = p.count("SELECT count(*) FROM metrics");
        long keptDistinct = p.count("SELECT count(*) FROM (SELECT DISTINCT event_id FROM metrics) d");
        long claims = p.count("SELECT count(*) FROM processed_events");
        boolean exact = kept == keptDistinct && claims == kept && kept + droppedEvents == events && p.lag() == 0;
        results.put("exactly once", exact + String.format(" (metrics %,d, distinct event ids %,d, processed_events %,d, dropped with their partitions %,d, lag %d)",
                kept, keptDistinct, claims, droppedEvents, p.lag()));
        if (rollups) {
            long mismatches = p.rollupMismatches("minute") + p.rollupMismatches("hour");
            exact &= mismatches == 0;
            results.put("rollups exact", (mismatches == 0) + String.format(" (%,d minute and hour buckets per sensor and in total differ from a GROUP BY over the readings)", mismatches));
            for (String table : List.of("metrics_rollup_minute", "metrics_rollup_hour", "metrics_rollup_minute_total", "metrics_rollup_hour_total")) {
                results.put(table, String.format("%,d rows, %s MB with indexes", p.count("SELECT count(*) FROM " + table),
                        mb(p.count("SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('" + table + "')"))));
            }
        }
        if (reference && "true".equals(env("GROWTH_MIGRATE", "false"))) {
            results.put("migration to partitioned", migrate(p));
        }
        System.out.println();
        results.forEach((k, v) -> System.out.printf("| %-26s | %s |%n", k, v));
        printPlans(p, rollups);
        p.stopService();
        return exact;
    }

    /**
     * The databases of earlier runs, kept for a look until this one starts: a 50,000,000-event run with rollups leaves tens
     * of GB, and a series of runs filled the disk.
     */
    private static void dropEarlierRuns() throws SQLException {
        List<String> earlier = new ArrayList<>();
        try (Connection c = Pipeline.postgres().connect("postgres"); var st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT datname FROM pg_database WHERE datname LIKE 'growth\\_%'")) {
            while (rs.next()) {
                earlier.add(rs.getString(1));
            }
        }
        for (String database : earlier) {
            System.out.println("Dropping the database of an earlier run: " + database);
            Pipeline.postgres().dropDatabase(database);
        }
    }

    /**
     * Retention at the run's own clock, through the same SQL function drop-expired-partitions.sql calls: the
     * partitions ending more than retentionDays and the grace before the newest stored event. Returns the events
     * the dropped partitions held (counted first, for the exactly-once check).
     */
    private static long dropExpired(Pipeline p, double retentionDays, List<String> dropped) throws Exception {
        try (Connection c = p.db(); var st = c.createStatement()) {
            // a value, not a subquery: a statement that reads metrics cannot drop its partitions
            String cutoff;
            try (ResultSet rs = st.executeQuery("SELECT (max(timestamp) - " + retentionDays + " * INTERVAL '1 day' - INTERVAL '1 hour')::text FROM metrics")) {
                rs.next();
                if (rs.getString(1) == null) {
                    return 0;
                }
                cutoff = "TIMESTAMPTZ '" + rs.getString(1) + "'";
            }
            long held;
            try (ResultSet rs = st.executeQuery("SELECT count(*) FROM metrics WHERE timestamp < (SELECT max(range_end) FROM sensor_metrics_partitions('metrics') WHERE range_end <= "
                    + cutoff + ")")) {
                rs.next();
                held = rs.getLong(1);
            }
            try (ResultSet rs = st.executeQuery("SELECT sensor_metrics_drop_partitions(" + cutoff + ", INTERVAL '5 seconds')")) {
                rs.next();
                String names = rs.getString(1);
                if (names == null || names.isEmpty()) {
                    return 0;
                }
                if (names.startsWith("none")) {
                    System.out.println("  retention: " + names);
                    return 0;
                }
                for (String name : names.split(", ")) {
                    if (name.startsWith("metrics")) {
                        dropped.add(name);
                    }
                }
                System.out.println("  retention dropped " + names);
                return held;
            }
        }
    }

    /** The documented migration (routes/storage/migrate, docs/storage.md) of the reference tables just filled, timed. */
    private static String migrate(Pipeline p) throws Exception {
        long rows = p.count("SELECT count(*) FROM metrics");
        long start = System.nanoTime();
        p.migrateToPartitionedLayout();
        double seconds = (System.nanoTime() - start) / 1e9;
        return String.format("%,d events in %.0f s (%,.0f events/s, both tables, one transaction), then %,d rows in metrics", rows, seconds,
                rows / seconds, p.count("SELECT count(*) FROM metrics"));
    }

    private static void printPlans(Pipeline p, boolean rollups) throws Exception {
        String sensor = "sensor_42";
        String newest;
        try (Connection c = p.db(); var st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT max(timestamp)::text FROM metrics")) {
            rs.next();
            newest = "TIMESTAMPTZ '" + rs.getString(1) + "'";
        }
        // the read API's own statements, with the parameters a dashboard sends
        record Query(String title, String file, String sensorId, String from, String to) {
            Query(String title, String file, String sensorId, String from) {
                this(title, file, sensorId, from, "'infinity'");
            }
        }
        String summary = rollups ? "metrics-summary-from-rollups.sql" : "metrics-summary.sql";
        List<Query> queries = new ArrayList<>(List.of(
                new Query("one sensor's newest 100 readings of the last day (GET /api/metrics?sensorId=)", "list-metrics.sql", sensor, newest + " - INTERVAL '1 day'"),
                new Query("one sensor's summary of the last day (GET /api/metrics/summary?sensorId=)", summary, sensor, newest + " - INTERVAL '1 day'"),
                new Query("all sensors' summary of the last minute (GET /api/metrics/summary)", summary, "", newest + " - INTERVAL '1 minute'")));
        if (rollups) {
            // a week's bounds as a dashboard sends them, at whole seconds
            String weekAgo = "date_trunc('second', " + newest + " - INTERVAL '7 days')";
            queries.add(new Query("one sensor's 7 days at 1-minute steps (GET /api/metrics/series?step=1m)", "metrics-series.sql", sensor, weekAgo, newest));
            queries.add(new Query("all sensors' summary of 7 days (GET /api/metrics/summary?from=&to=)", summary, "", weekAgo, newest));
            queries.add(new Query("all sensors' summary of all time (GET /api/metrics/summary)", summary, "", "'-infinity'"));
        }
        for (Query q : queries) {
            String sql = Files.readString(Path.of("routes/read-api", q.file())).replaceAll("(?m)^--.*$", "")
                    .replace(":#sensorId", "'" + q.sensorId() + "'").replace(":#from", q.from()).replace(":#step", "'1m'")
                    .replace(":#to", q.to()).replace(":#limit", "100").replace(":#offset", "0");
            System.out.println();
            System.out.println("EXPLAIN (ANALYZE, BUFFERS) " + q.title() + ":");
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("SET jit = off"); // as the service's sessions run (the pool's options, jdbc-datasource.camel.yaml)
                try (ResultSet rs = st.executeQuery("EXPLAIN (ANALYZE, BUFFERS) " + sql)) {
                    while (rs.next()) {
                        System.out.println("  " + rs.getString(1));
                    }
                }
            }
        }
    }

    private static long tableBytes(Pipeline p) throws Exception {
        return p.count("""
                SELECT sum(pg_total_relation_size(relid))
                FROM (SELECT relid FROM pg_partition_tree('metrics') UNION SELECT relid FROM pg_partition_tree('processed_events')
                      UNION SELECT 'metrics'::regclass UNION SELECT 'processed_events'::regclass) t""");
    }

    private static long lsn(Pipeline p) throws Exception {
        return p.count("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
    }

    private static String mb(long bytes) {
        return String.format("%,d", bytes / (1024 * 1024));
    }

    private static double parse(String figure) {
        return Double.parseDouble(figure.replace(",", ""));
    }

    private static long bytes(String size) {
        String s = size.trim().toLowerCase();
        long unit = s.endsWith("g") ? 1L << 30 : s.endsWith("m") ? 1L << 20 : 1;
        return Long.parseLong(s.replaceAll("[gm]$", "")) * unit;
    }
}
