package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The service against what users pick instead: Kafka Connect standalone with the Debezium JDBC sink, on the
 * same 1,000,000 events in the same run. Each stores the topic from the beginning into a database of its own
 * with the default layout; each is timed from its group's first committed offset to lag 0 (Connect commits
 * each second here, so its figure may be up to a second late; the row count is checked at the end), and its JVM's
 * CPU and that of its sessions on its database are read from /proc over the same window.
 *
 * <p>Run: {@code mvn -q -f src/test/connect/pom.xml package} once (the worker's jars and the plugin), then
 * {@code mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.SinkComparison}
 * (SINK_EVENTS, 1,000,000; SINK_UNNEST=true|false, the sink's one-statement UNNEST insert or its JDBC batch;
 * CONNECT_LIB and CONNECT_PLUGINS to use other jars).
 */
public final class SinkComparison {

    private SinkComparison() {
    }

    public static void main(String[] args) {
        Pipeline.exitWith(SinkComparison::run);
    }

    private static boolean run() throws Exception {
        long events = Long.parseLong(env("SINK_EVENTS", "1000000"));
        Pipeline.startOrUseServices(Path.of("target/bench-postgres"));
        String run = "sink_" + System.currentTimeMillis() % 1_000_000;
        Pipeline p = new Pipeline(run, run, run, 12);
        System.out.println(LoadGenerator.produce(p.load(1000, events).withSeed(42)));

        Path log = Path.of("target/sink-service.log");
        Files.deleteIfExists(log);
        ServiceProcess service = ServiceProcess.start(p, log, "256m", Map.of());
        Timed ours;
        try {
            ours = timeToLagZero(p, p.group, events, service.pid(), p.database, log);
        } finally {
            service.stop();
        }
        System.out.printf("service: %,.0f events/s, metrics rows %,d; CPU per event: %s%n", ours.eventsPerSecond(),
                p.count("SELECT count(*) FROM metrics"), ours.cpu().perEvent(events));

        String db = run + "_debezium";
        Pipeline.postgres().createDatabase(db);
        try (Connection c = Pipeline.postgres().connect(db); var st = c.createStatement()) {
            st.execute(Files.readString(Path.of("routes/storage/schema.sql")));
            st.execute("SELECT sensor_metrics_create_partitions(ARRAY[floor(extract(epoch FROM now()) / 3600)::bigint], INTERVAL '1 day')");
        }
        Path dir = Files.createDirectories(Path.of("target/connect"));
        Path connectLog = dir.resolve("connect-" + run + ".log");
        Files.writeString(dir.resolve("worker.properties"), String.join("\n",
                "bootstrap.servers=" + Pipeline.kafka().bootstrapServers(),
                "key.converter=org.apache.kafka.connect.storage.StringConverter",
                "value.converter=org.apache.kafka.connect.json.JsonConverter",
                "value.converter.schemas.enable=true",
                // KIP-1054 (only with schemas.enable=true): each schemaless value read as the payload of this schema; the time as Debezium's ZonedTimestamp
                "value.converter.schema.content={\"type\":\"struct\",\"fields\":[{\"field\":\"sensor_id\",\"type\":\"string\"},"
                        + "{\"field\":\"event_id\",\"type\":\"string\"},{\"field\":\"timestamp\",\"type\":\"string\",\"name\":\"io.debezium.time.ZonedTimestamp\"},"
                        + "{\"field\":\"value\",\"type\":\"double\"}]}",
                "offset.storage.file.filename=" + dir.toAbsolutePath().resolve("offsets-" + run),
                "plugin.path=" + Path.of(env("CONNECT_PLUGINS", "src/test/connect/target/plugins")).toAbsolutePath(),
                "consumer.auto.offset.reset=earliest",
                // offsets committed each second (60 s by default), so the sink is timed as the service is: by them
                "offset.flush.interval.ms=1000",
                "consumer.max.poll.records=5000", ""));
        Files.writeString(dir.resolve("sink.properties"), String.join("\n",
                "name=debezium-" + run,
                "connector.class=io.debezium.connector.jdbc.JdbcSinkConnector",
                "tasks.max=2",
                "topics=" + run,
                "connection.url=jdbc:postgresql://" + Pipeline.postgres().host() + ":" + Pipeline.postgres().port() + "/" + db,
                "connection.username=" + Pipeline.postgres().user(),
                "connection.password=" + Pipeline.postgres().password(),
                "insert.mode=upsert",
                "primary.key.mode=record_value",
                // the default layout's key: there is no unique event_id alone
                "primary.key.fields=timestamp,event_id",
                "table.name.format=metrics",
                "schema.evolution=none",
                "batch.size=5000",
                "dialect.postgres.unnest.insert.enabled=" + env("SINK_UNNEST", "true"), ""));
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", Path.of(env("CONNECT_LIB", "src/test/connect/target/lib")).toAbsolutePath() + "/*", "org.apache.kafka.connect.cli.ConnectStandalone",
                dir.resolve("worker.properties").toString(), dir.resolve("sink.properties").toString())
                .redirectErrorStream(true).redirectOutput(connectLog.toFile());
        Process connect = pb.start();
        Timed theirs;
        try {
            theirs = timeToLagZero(p, "connect-debezium-" + run, events, connect.pid(), db, connectLog);
        } finally {
            connect.destroy();
            connect.waitFor(30, TimeUnit.SECONDS);
        }
        long rows;
        try (Connection c = Pipeline.postgres().connect(db); var st = c.createStatement(); var rs = st.executeQuery("SELECT count(*) FROM metrics")) {
            rs.next();
            rows = rs.getLong(1);
        }
        System.out.printf("Debezium JDBC sink (unnest %s): %,.0f events/s, metrics rows %,d; CPU per event: %s%n",
                env("SINK_UNNEST", "true"), theirs.eventsPerSecond(), rows, theirs.cpu().perEvent(events).replace("service", "Connect worker"));
        System.out.printf("service / sink: %.2f events/s, %.2f CPU per event (the service's JVM over the Connect worker's)%n",
                ours.eventsPerSecond() / theirs.eventsPerSecond(), ours.cpu().instances()[0] / theirs.cpu().instances()[0]);
        return true;
    }

    /** Events/s and the CPU of the process and of its sessions on the database from its group's first committed offset to lag 0. */
    private record Timed(double eventsPerSecond, CpuTimes cpu) {
    }

    private static Timed timeToLagZero(Pipeline p, String group, long events, long pid, String database, Path log) throws Exception {
        long first = 0;
        CpuTimes atFirst = null;
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(15);
        while (System.nanoTime() < deadline) {
            long committed = p.committedOffsets(group).values().stream().mapToLong(Long::longValue).sum();
            long now = System.nanoTime();
            if (first == 0 && committed > 0) {
                first = now;
                atFirst = CpuTimes.read(new long[] {pid}, database);
            }
            if (committed >= events) {
                return new Timed(events / ((now - first) / 1e9), CpuTimes.read(new long[] {pid}, database).minus(atFirst));
            }
            // a worker that cannot start (its jars not built, say) would otherwise be waited for 15 minutes
            if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                throw new IllegalStateException("process " + pid + " of " + group + " ended before its group caught up: " + log
                        + " says why\n" + Files.readString(log));
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException(group + " not caught up within 15 minutes");
    }
}
