package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.postgresql.PGConnection;

/**
 * Throughput and latency of the packaged service against a COPY baseline and the bare pipeline (BarePipeline: a
 * plain consumer loop, binary COPY per poll, commitSync), both measured in the same run.
 * Run: {@code mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.Benchmark}
 *
 * <p>Bulk (default): N contract events (BENCH_EVENTS, 1,000,000; 12 partitions; 1,000 sensors) are
 * produced first; the jar (-Xmx BENCH_XMX, 256m) then reads them from the beginning and is timed from
 * its first committed offset to lag 0. The very same rows are then COPYed, in one session and one
 * transaction, into a fresh database with the same schema. Steady (BENCH_MODE=steady): the load
 * generator runs at BENCH_RATE (5,000/s) for BENCH_WARMUP_SECONDS (10, not measured), then for
 * BENCH_SECONDS (120) while the service consumes, and the produce-to-store latency percentiles of the
 * measured events are computed from the rows, overall and per 10 s window. Exits 1 if any event is missing or
 * doubled. Extra service settings pass through the environment (CONSUMER_BATCH_SIZE, CONSUMER_THREADS).
 * KAFKA_BROKERS and DB_HOST (DB_PORT, DB_USER, DB_PASSWORD) point it at a broker and a database that run
 * elsewhere instead of the embedded ones. BENCH_INSTANCES (1) runs that many service processes in one consumer
 * group; the CPU line then gives each one's share.
 */
public final class Benchmark {


    private Benchmark() {
    }

    /** Camel's route timer of store-batch: each batch's transaction, commit included. */
    private static final String STORE_BATCH_TIMER = "camel_route_policy_seconds";
    private static final String STORE_BATCH = "\\{[^}]*routeId=\"store-batch\"[^}]*}";

    private static long walPosition(Pipeline p) throws java.sql.SQLException {
        return p.count("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
    }

    /** Bytes of the tables whose names match either pattern, with their indexes and TOAST. */
    private static long relationBytes(Pipeline p, String pattern, String orPattern) throws java.sql.SQLException {
        return p.count("SELECT COALESCE(sum(pg_total_relation_size(oid)), 0)::bigint FROM pg_class WHERE relkind = 'r' AND (relname LIKE '"
                + pattern + "' OR relname LIKE '" + orPattern + "')");
    }

    public static void main(String[] args) {
        Pipeline.exitWith(Benchmark::run);
    }

    private static boolean run() throws Exception {
        boolean steady = "steady".equals(env("BENCH_MODE", "bulk"));
        long events = Long.parseLong(env("BENCH_EVENTS", "1000000"));
        int rate = Integer.parseInt(env("BENCH_RATE", "5000"));
        int seconds = Integer.parseInt(env("BENCH_SECONDS", "120"));
        String xmx = env("BENCH_XMX", "256m");
        int warmup = Integer.parseInt(env("BENCH_WARMUP_SECONDS", "10"));
        int instances = Integer.parseInt(env("BENCH_INSTANCES", "1"));
        if (steady) {
            events = (long) rate * seconds;
        }


        Pipeline.startOrUseServices(Path.of("target/bench-postgres"));
        String run = "bench_" + System.currentTimeMillis() % 1_000_000;
        Pipeline p = new Pipeline(run, run, run, 12);
        if (!env("ALERT_THRESHOLD", "").isEmpty()) {
            // the flow change of routes/ingest/send-alerts.camel.yaml, measured: its topic must exist
            Pipeline.kafka().createTopic(env("ALERT_TOPIC", "sensor_alerts"), 1);
        }
        // random version-4 ids as real producers send them; BENCH_IDS=sequential for ids that sort as produced
        boolean sequentialIds = "sequential".equals(env("BENCH_IDS", "random"));
        var load = p.load(1000, events).withRate(steady ? rate : 0).withSeed(42).withSequentialIds(sequentialIds);
        // steady mode: the first seconds (JIT compilation, first connections) are run but not measured
        var warmupLoad = p.load(1000, (long) rate * warmup).withRate(rate).withSeed(41).withSequentialIds(sequentialIds);
        long expected = steady ? events + warmupLoad.events() : events;
        Map<String, String> results = new LinkedHashMap<>();
        results.put("machine", Runtime.getRuntime().availableProcessors() + " cores, "
                + Files.readAllLines(Path.of("/proc/meminfo")).get(0).replaceAll("\\s+", " "));
        results.put("mode", steady ? "steady " + rate + " events/s for " + seconds + " s" : "bulk, from the beginning");
        results.put("events", String.format("%,d (12 partitions, 1,000 sensors, %s ids)%s", events, sequentialIds ? "sequential" : "random v4",
                steady ? String.format(", after %,d warm-up events", (long) rate * warmup) : ""));

        if (!steady) {
            System.out.printf("Producing %,d events ...%n", events);
            System.out.println(LoadGenerator.produce(load));
        }
        // e.g. BENCH_SERVICE_JAVA_OPTIONS=-XX:StartFlightRecording=filename=target/service.jfr to profile the service
        String javaOptions = env("BENCH_SERVICE_JAVA_OPTIONS", "");
        // BENCH_INSTANCES separate processes in one consumer group, as separate pods would be
        List<ServiceProcess> services = new ArrayList<>();
        List<Sampler> samplers = new ArrayList<>();
        long walBefore = walPosition(p);
        for (int i = 0; i < instances; i++) {
            Path log = Path.of("target/benchmark-service" + (instances == 1 ? "" : "-" + i) + ".log");
            Files.deleteIfExists(log);
            ServiceProcess service = ServiceProcess.start(p, log, xmx, javaOptions.isEmpty() ? Map.of() : Map.of("JAVA_TOOL_OPTIONS", javaOptions));
            services.add(service);
            Sampler sampler = new Sampler(service);
            sampler.start();
            samplers.add(sampler);
        }
        long[] pids = services.stream().mapToLong(ServiceProcess::pid).toArray();
        long firstCommitNanos = 0;
        long lastNanos;
        CpuTimes atStart = null; // bulk: the first commit; steady: the start of the measured load
        CpuTimes atEnd;
        double allocatedAtStart = 0;
        double allocatedAtEnd;
        long walAtLagZero = 0;
        Instant measuredFrom = Instant.MIN; // steady: the events after the warm-up, by their timestamps
        CpuTimes serviceCpu = null;
        try {
            if (steady) {
                // latency counts from the first event: start producing once every partition is assigned
                Pipeline.await("consumer group stable", Duration.ofMinutes(2), () -> Pipeline.safe(() -> {
                    var g = p.admin().describeConsumerGroups(java.util.List.of(p.group)).all().get().get(p.group);
                    return g.groupState() == org.apache.kafka.common.GroupState.STABLE
                            && g.members().stream().mapToInt(m -> m.assignment().topicPartitions().size()).sum() == 12;
                }));
                System.out.printf("Warm-up: %,d events/s for %d s (not measured) ...%n", rate, warmup);
                System.out.println(LoadGenerator.produce(warmupLoad));
                System.out.printf("Producing %,d events/s for %d s ...%n", rate, seconds);
                atStart = CpuTimes.read(pids, p.database);
                allocatedAtStart = allocatedBytes(services);
                measuredFrom = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MICROS);
                System.out.println(LoadGenerator.produce(load));
            }
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(30);
            long lastPrint = System.nanoTime();
            while (true) {
                long lag = p.lag();
                long now = System.nanoTime();
                if (firstCommitNanos == 0 && lag < p.produced()) {
                    firstCommitNanos = now;
                    if (!steady) {
                        atStart = CpuTimes.read(pids, p.database);
                        allocatedAtStart = allocatedBytes(services);
                    }
                }
                if (lag == 0 && p.produced() >= expected) {
                    lastNanos = now;
                    atEnd = CpuTimes.read(pids, p.database);
                    allocatedAtEnd = allocatedBytes(services);
                    walAtLagZero = walPosition(p);
                    break;
                }
                if (now - lastPrint > TimeUnit.SECONDS.toNanos(5)) {
                    System.out.printf("  lag %,d  rss %s MB  heap %s MB%n", lag, peaks(samplers, s -> s.peakRssKb), peaks(samplers, s -> s.peakHeapKb));
                    lastPrint = now;
                }
                if (now > deadline) {
                    throw new IllegalStateException("not caught up after 30 minutes");
                }
                Thread.sleep(100);
            }
            // the poll threads' time inside the transaction, from the services' own metrics
            double inTransactions = 0;
            double batches = 0;
            for (ServiceProcess service : services) {
                String scrape = Pipeline.get(service.httpPort(), "/observe/metrics").getValue();
                inTransactions += metric(scrape, STORE_BATCH_TIMER + "_sum" + STORE_BATCH);
                batches += metric(scrape, STORE_BATCH_TIMER + "_count" + STORE_BATCH);
            }
            CpuTimes used = atEnd.minus(atStart);
            serviceCpu = used;
            results.put("CPU while timed", used.toString());
            results.put("CPU per event", used.perEvent(events));
            results.put("service CPU per event by thread", used.serviceThreadsPerEvent(events));
            results.put("allocated per event", String.format("%.0f bytes of heap (the service's jvm_gc_memory_allocated_bytes_total)",
                    (allocatedAtEnd - allocatedAtStart) / events));
            // the rollups of what was stored: how much longer until no minute is left to recount (ROLLUPS_ENABLED)
            long rollupsFrom = System.nanoTime();
            Pipeline.await("rollups caught up", Duration.ofMinutes(10),
                    () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM metrics_rollup_stale") == 0));
            results.put("rollups caught up", String.format("%.1f s after lag 0 (ROLLUPS_ENABLED=%s, ROLLUP_REFRESH_INTERVAL_MS=%s)",
                    (System.nanoTime() - rollupsFrom) / 1e9, env("ROLLUPS_ENABLED", "true"), env("ROLLUP_REFRESH_INTERVAL_MS", "60000")));
            results.put("time in transactions", String.format("%.1f s over %,.0f batches (all poll threads)", inTransactions, batches));
        } finally {
            for (int i = 0; i < services.size(); i++) {
                samplers.get(i).interrupt();
                services.get(i).stop();
            }
        }

        long stored = p.count("SELECT count(*) FROM metrics");
        long distinct = p.count("SELECT count(DISTINCT event_id) FROM metrics");
        long claimed = p.count("SELECT count(*) FROM processed_events");
        boolean exact = stored == expected && distinct == expected && claimed == expected;
        double serviceSeconds = (lastNanos - firstCommitNanos) / 1e9;
        String measured = "timestamp >= '" + measuredFrom + "'";
        // what an event costs on disk and in WAL: the readings' tables with their indexes, and the rollups apart
        results.put("stored per event", String.format("%.0f bytes in metrics (indexes included; and processed_events where it is a table), %.1f in rollups",
                (double) relationBytes(p, "metrics_p%", "processed_events_p%") / stored, (double) relationBytes(p, "metrics_rollup_minute_p%", "metrics_rollup_hour_p%") / stored));
        results.put("WAL per event", String.format("%.0f bytes (service start to lag 0)", (double) (walAtLagZero - walBefore) / stored));
        results.put("service settings", instances + " x java -Xmx" + xmx + " -jar, CONSUMER_BATCH_SIZE=" + env("CONSUMER_BATCH_SIZE", "(default)")
                + ", CONSUMER_THREADS=" + env("CONSUMER_THREADS", "(default)"));
        results.put("exactly once", exact + String.format(" (metrics %,d, distinct %,d, processed_events %,d)", stored, distinct, claimed));
        results.put("peak RSS", peaks(samplers, s -> s.peakRssKb) + " MB");
        results.put("peak heap used", peaks(samplers, s -> s.peakHeapKb) + " MB");
        if (steady) {
            String latency = """
                    SELECT %s, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
                    FROM (SELECT timestamp, extract(epoch FROM created_at - timestamp) * 1000 AS ms FROM metrics WHERE %s) l
                    %s""";
            try (Connection c = p.db(); var st = c.createStatement()) {
                try (ResultSet rs = st.executeQuery(String.format(latency, "0", measured, ""))) {
                    rs.next();
                    results.put("produce -> stored latency", String.format("p50 %.0f ms, p99 %.0f ms, max %.0f ms (after %d s warm-up)",
                            rs.getDouble(2), rs.getDouble(3), rs.getDouble(4), warmup));
                }
                StringBuilder windows = new StringBuilder();
                try (ResultSet rs = st.executeQuery(String.format(latency,
                        "floor(extract(epoch FROM timestamp - (SELECT min(timestamp) FROM metrics WHERE " + measured + ")) / 10) AS w",
                        measured, "GROUP BY w ORDER BY w"))) {
                    while (rs.next()) {
                        windows.append(String.format("%s%.0f", windows.length() == 0 ? "" : " / ", rs.getDouble(3)));
                    }
                }
                results.put("p99 per 10 s window (ms)", windows.toString());
            }
        } else {
            double[] copyTimes = copyBaseline(p, run + "_copy");
            double copySeconds = copyTimes[0];
            double ours = events / serviceSeconds;
            double copy = events / copySeconds;
            results.put("service", String.format("%,.0f events/s (%.1f s, first commit to lag 0)", ours, serviceSeconds));
            results.put("COPY baseline", String.format("%,.0f rows/s (%.1f s, one session, one transaction%s)",
                    copy, copySeconds, copyTimes[1] > 0 ? String.format("; its session's CPU %.1f s, %.1f µs per row", copyTimes[1], copyTimes[1] * 1e6 / events) : ""));
            results.put("ratio service / COPY", String.format("%.2f", ours / copy));
            // the floor: a plain consumer loop, binary COPY per poll, commitSync after each transaction
            BarePipeline.Result bare;
            try (Connection c = sameLayout(p, run + "_bare")) {
                bare = BarePipeline.run(p.kafkaClientProperties(), p.topic, Integer.parseInt(env("CONSUMER_BATCH_SIZE", "5000")), c, events);
            }
            double bareRate = events / bare.seconds();
            double barePerEvent = (bare.pollThreadCpu() + bare.sessionCpu()) * 1e6 / events;
            double ourPerEvent = (java.util.Arrays.stream(serviceCpu.instances()).sum() + serviceCpu.sessions()) * 1e6 / events;
            results.put("bare pipeline", String.format("%,.0f events/s (%.1f s); its poll thread %.1f µs, its PostgreSQL session %.1f µs per event",
                    bareRate, bare.seconds(), bare.pollThreadCpu() * 1e6 / events, bare.sessionCpu() * 1e6 / events));
            results.put("ratio service / bare", String.format("events/s %.2f; CPU per event %.2f (service process and its sessions: %.1f µs, "
                    + "against the bare poll thread and its session: %.1f µs); poll threads %.2f", ours / bareRate, ourPerEvent / barePerEvent,
                    ourPerEvent, barePerEvent, serviceCpu.threads().getOrDefault("Camel (poll)", 0.0) / bare.pollThreadCpu()));
        }
        System.out.println();
        results.forEach((k, v) -> System.out.printf("| %-26s | %s |%n", k, v));
        p.stopService();
        return exact;
    }

    /** Each instance's peak, in MB, "a / b / c". */
    private static String peaks(List<Sampler> samplers, java.util.function.ToLongFunction<Sampler> kb) {
        return String.join(" / ", samplers.stream().map(s -> String.valueOf(kb.applyAsLong(s) / 1024)).toList());
    }

    /** COPY of the rows the service stored into a fresh database with the same schema: seconds, and its session's CPU seconds. */
    private static double[] copyBaseline(Pipeline p, String database) throws Exception {
        ByteArrayOutputStream metrics = new ByteArrayOutputStream();
        try (Connection c = p.db()) {
            var copy = c.unwrap(PGConnection.class).getCopyAPI();
            copy.copyOut("COPY (SELECT sensor_id, event_id, timestamp, value, kafka_partition, kafka_offset FROM metrics ORDER BY id) TO STDOUT", metrics);
        }
        try (Connection c = sameLayout(p, database)) {
            c.setAutoCommit(false);
            var copy = c.unwrap(PGConnection.class).getCopyAPI();
            long backend = c.unwrap(PGConnection.class).getBackendPID();
            double cpuBefore = CpuTimes.processSeconds(backend);
            long start = System.nanoTime();
            copy.copyIn("COPY metrics (sensor_id, event_id, timestamp, value, kafka_partition, kafka_offset) FROM STDIN",
                    new ByteArrayInputStream(metrics.toByteArray()));
            c.commit();
            return new double[] {(System.nanoTime() - start) / 1e9, CpuTimes.processSeconds(backend) - cpuBefore};
        }
    }

    /** A fresh database with the service's layout and the partitions of the service's readings, made before any clock starts. */
    private static Connection sameLayout(Pipeline p, String database) throws Exception {
        String hours;
        try (Connection c = p.db(); var st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT string_agg(DISTINCT floor(extract(epoch FROM timestamp) / 3600)::bigint::text, ',') FROM metrics")) {
            rs.next();
            hours = rs.getString(1);
        }
        Pipeline.postgres().createDatabase(database);
        Connection c = Pipeline.postgres().connect(database);
        try (var st = c.createStatement()) {
            st.execute(Files.readString(Path.of("routes/storage/schema.sql")));
        }
        try (var st = c.prepareStatement("SELECT sensor_metrics_create_partitions(string_to_array(?, ',')::bigint[], INTERVAL '1 day')")) {
            st.setString(1, hours);
            st.execute();
        }
        return c;
    }

    /**
     * Peak resident set (VmHWM) and peak used heap (the service's own jvm_memory_used_bytes, all heap pools)
     * of the service process, once a second. Not jcmd: starting a JVM each second took CPU from the service.
     */
    private static final class Sampler extends Thread {
        private final ServiceProcess service;
        volatile long peakRssKb;
        volatile long peakHeapKb;

        Sampler(ServiceProcess service) {
            this.service = service;
            setDaemon(true);
        }

        @Override
        public void run() {
            while (!isInterrupted()) {
                try {
                    Thread.sleep(1000);
                    peakRssKb = service.procStatusKb("VmHWM");
                    peakHeapKb = Math.max(peakHeapKb, service.heapUsedBytes() / 1024);
                } catch (InterruptedException e) {
                    return;
                } catch (Exception notServingYet) {
                    // the HTTP server starts a few seconds after the process; the process may be gone
                    if (!service.isAlive()) {
                        return;
                    }
                }
            }
        }
    }


    /** The value of an untagged (or the first) sample of a metric in a Prometheus scrape; 0 when absent. */
    /** Heap the services have allocated so far, by their own metric (counted by the collector at each young collection). */
    private static double allocatedBytes(List<ServiceProcess> services) throws java.io.IOException, InterruptedException {
        double bytes = 0;
        for (ServiceProcess service : services) {
            bytes += metric(Pipeline.get(service.httpPort(), "/observe/metrics").getValue(), "jvm_gc_memory_allocated_bytes_total");
        }
        return bytes;
    }

    static double metric(String scrape, String name) {
        var m = java.util.regex.Pattern.compile("^" + name + "(\\{[^}]*})? (\\S+)$", java.util.regex.Pattern.MULTILINE).matcher(scrape);
        return m.find() ? Double.parseDouble(m.group(2)) : 0;
    }
}
