package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import org.apache.camel.main.Main;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;

/**
 * Test harness: one real Kafka broker and one real PostgreSQL server per test JVM, a fresh topic, group
 * and database per scenario, and the service itself started from the packaged routes with only its
 * connection settings overridden.
 */
final class Pipeline implements AutoCloseable {

    private static final AtomicInteger SCENARIOS = new AtomicInteger();
    private static final java.util.Set<Pipeline> OPEN = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static EmbeddedKafka kafka;
    private static EmbeddedPostgres postgres;
    private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5)).build();

    final String topic;
    final String database;
    final String group;
    private final int partitions;
    /** The scenario's Kafka: the JVM's embedded broker, or a cluster of its own (the fault suite's three nodes). */
    private final EmbeddedKafka broker;
    /** The scenario's PostgreSQL: the JVM's embedded server, or one of its own (the secured tests'). */
    /** The scenario's PostgreSQL server: moved by {@link #moveTo} when a fault promotes another. */
    private volatile EmbeddedPostgres pg;
    private final Map<String, String> overrides = new HashMap<>();
    private final Map<String, String> environment = new HashMap<>();
    /** What a test adds to the in-process service's context before its routes start (an event notifier). */
    private final java.util.List<java.util.function.Consumer<org.apache.camel.CamelContext>> beforeStart = new java.util.ArrayList<>();
    private Main main;
    /** One admin client for the scenario's offset queries: polling with a new client each time cost the benchmark seconds of CPU. */
    private Admin admin;
    /** The in-process service's HTTP port (PORT): a free one unless set before startService. */
    int httpPort;

    /** Starts the broker and the database once per JVM; settings are PostgreSQL -c options. */
    static synchronized void startServices(Path postgresData, String... settings) throws Exception {
        startServices(postgresData, Map.of(), 0, settings);
    }

    /**
     * For the benchmark: the broker given by KAFKA_BROKERS (plaintext) and the database given by DB_HOST
     * (DB_PORT, DB_USER, DB_PASSWORD) where those are set, embedded ones for the rest. Tests never read
     * these, so a shell that has them set still tests against its own services.
     */
    static synchronized void startOrUseServices(Path postgresData) throws Exception {
        startOrUseServices(postgresData, 0);
    }

    /** The same, an embedded PostgreSQL held to pgMemoryLimitBytes (0: no limit) and started with these -c settings. */
    static synchronized void startOrUseServices(Path postgresData, long pgMemoryLimitBytes, String... settings) throws Exception {
        startServices(postgresData, System.getenv(), pgMemoryLimitBytes, settings);
    }

    private static void startServices(Path postgresData, Map<String, String> given, long pgMemoryLimitBytes, String... settings) throws Exception {
        if (kafka == null) {
            String brokers = given.get("KAFKA_BROKERS");
            String dbHost = given.get("DB_HOST");
            postgres = dbHost == null || dbHost.isBlank() ? EmbeddedPostgres.start(postgresData, pgMemoryLimitBytes, settings)
                    : EmbeddedPostgres.existing(dbHost, Integer.parseInt(given.getOrDefault("DB_PORT", "5432")),
                            given.getOrDefault("DB_USER", EmbeddedPostgres.USER), given.getOrDefault("DB_PASSWORD", ""));
            kafka = brokers == null || brokers.isBlank() ? EmbeddedKafka.start() : EmbeddedKafka.existing(brokers);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    for (Pipeline p : OPEN) {
                        p.stopService(); // first the service, so its last batch can finish against both
                    }
                    postgres.close();
                    // bounded: after the fault suite's broker restart, closing the test kit can hang, and a
                    // test JVM that does not exit in time is reported as a failed fork
                    Thread closer = new Thread(() -> {
                        try {
                            kafka.close();
                        } catch (Exception ignored) {
                            // the JVM is going away either way
                        }
                    });
                    closer.setDaemon(true);
                    closer.start();
                    closer.join(15_000);
                } catch (Exception ignored) {
                    // the JVM is going away either way
                }
            }));
        }
    }

    /**
     * Runs a command-line harness and exits with 0 when its run held every check, 1 when not, 2 when it threw: the
     * in-process broker's threads would otherwise keep the JVM alive, silently, after main has thrown.
     */
    static void exitWith(Callable<Boolean> run) {
        int status = 2;
        try {
            status = run.call() ? 0 : 1;
        } catch (Exception e) {
            e.printStackTrace();
        } finally {
            System.exit(status);
        }
    }

    /** A scenario of its own: fresh topic, group and database, dropped again on close. */
    static Pipeline scenario(String name, int partitions) throws Exception {
        return scenario(name, partitions, null);
    }

    /** The same on the given Kafka (null: the JVM's embedded broker). */
    static Pipeline scenario(String name, int partitions, EmbeddedKafka broker) throws Exception {
        return scenario(name, partitions, broker, null);
    }

    /** The same on the given Kafka and PostgreSQL (null: the JVM's embedded ones). */
    static Pipeline scenario(String name, int partitions, EmbeddedKafka broker, EmbeddedPostgres pg) throws Exception {
        String id = name + "_" + SCENARIOS.incrementAndGet() + "_" + System.nanoTime() % 100000;
        return new Pipeline("sensor_metrics_" + id, "metrics_" + id, "group_" + id, partitions, broker, pg)
                .set("consumer.retry-initial-ms", "200")
                .set("consumer.retry-max-ms", "1000")
                .set("consumer.progress-interval-ms", "2000")
                .set("rollup.refresh-interval-ms", "500");
    }

    /** Creates the topic and the database unless they exist. */
    Pipeline(String topic, String database, String group, int partitions) throws Exception {
        this(topic, database, group, partitions, null, null);
    }

    private Pipeline(String topic, String database, String group, int partitions, EmbeddedKafka broker, EmbeddedPostgres pg)
            throws Exception {
        startServices(Path.of("target/test-postgres"), "fsync=off");
        this.topic = topic;
        this.database = database;
        this.group = group;
        this.partitions = partitions;
        this.broker = broker != null ? broker : kafka;
        this.pg = pg != null ? pg : postgres;
        this.broker.createTopic(topic, partitions);
        try {
            this.pg.createDatabase(database);
        } catch (SQLException alreadyThere) {
            // kept from an earlier run
        }
    }

    /** An environment variable of a benchmark or the demo, or the fallback when it is unset or blank. */
    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v;
    }

    static EmbeddedKafka kafka() {
        return kafka;
    }

    Pipeline set(String key, String value) {
        overrides.put(key, value);
        return this;
    }

    /** Called with the in-process service's context, configured and not yet started, at each startService. */
    Pipeline beforeStart(java.util.function.Consumer<org.apache.camel.CamelContext> hook) {
        beforeStart.add(hook);
        return this;
    }

    /** An environment variable the service started here reads, beside the scenario's own. */
    Pipeline withEnv(String name, String value) {
        environment.put(name, value);
        return this;
    }

    /** The server the scenario's database is on. */
    EmbeddedPostgres server() {
        return pg;
    }

    /** The scenario's database is now on this server (a promoted replica): services started from now connect to it. */
    void moveTo(EmbeddedPostgres server) {
        pg = server;
    }

    static EmbeddedPostgres postgres() {
        return postgres;
    }

    /**
     * The ingest invariant for a scenario with this many distinct valid events: each exactly once in
     * metrics and in processed_events, no metric without its idempotency row, and lag 0.
     */
    void assertExactlyOnce(long events) throws Exception {
        assertEquals(events, count("SELECT count(*) FROM metrics"), "metrics rows");
        assertEquals(events, count("SELECT count(DISTINCT event_id) FROM metrics"), "distinct metrics event ids");
        assertEquals(events, count("SELECT count(*) FROM processed_events"), "processed_events rows");
        assertEquals(0, count("SELECT count(*) FROM processed_events WHERE kafka_partition IS NULL OR kafka_offset IS NULL"), "claims without Kafka coordinates");
        assertEquals(0, lag(), "committed offsets reach the end of every partition");
        assertFalse(committedOffsets().isEmpty());
    }

    /** Produces the load, then waits until the service has stored all of it and its rollups are exact. */
    LoadGenerator.Summary storeAndRollUp(LoadGenerator.Options load) throws Exception {
        LoadGenerator.Summary sent = LoadGenerator.produce(load);
        awaitCaughtUp(Duration.ofMinutes(3));
        awaitRollupsExact();
        return sent;
    }

    /** Until every minute and hour rollup with readings still stored equals a GROUP BY over them (a minute at most). */
    void awaitRollupsExact() throws InterruptedException {
        await("rollups exact", Duration.ofMinutes(1), () -> safe(() -> rollupMismatches("minute") == 0 && rollupMismatches("hour") == 0));
    }

    /**
     * How many buckets of the rollups of this unit (minute, hour), per sensor and over all sensors, differ from a
     * GROUP BY over the readings still stored, in any column, or are missing: 0 when they are exact. Buckets whose
     * readings are gone are not compared.
     */
    long rollupMismatches(String unit) throws SQLException {
        return count(("""
                WITH raw AS (
                  SELECT date_trunc('%1$s', timestamp, 'UTC') AS bucket, count(*) AS readings,
                         min(timestamp) AS first_time, max(timestamp) AS last_time
                  FROM metrics GROUP BY 1)
                SELECT count(*) FROM raw LEFT JOIN metrics_rollup_%1$s_total t USING (bucket)
                WHERE t.readings IS DISTINCT FROM raw.readings OR t.first_time <> raw.first_time
                   OR t.last_time <> raw.last_time""").formatted(unit)) + count(("""
                WITH raw AS (
                  SELECT sensor_id, date_trunc('%1$s', timestamp, 'UTC') AS bucket, count(*) AS readings, sum(value) AS value_sum,
                         min(value) AS value_min, max(value) AS value_max,
                         min(timestamp) AS first_time, (array_agg(value ORDER BY timestamp, id))[1] AS first_value,
                         max(timestamp) AS last_time, (array_agg(value ORDER BY timestamp DESC, id DESC))[1] AS last_value
                  FROM metrics GROUP BY 1, 2)
                SELECT count(*) FROM raw LEFT JOIN metrics_rollup_%1$s r USING (sensor_id, bucket)
                WHERE r.readings IS DISTINCT FROM raw.readings OR abs(r.value_sum - raw.value_sum) > 1e-9 * greatest(1, abs(raw.value_sum))
                   OR r.value_min <> raw.value_min OR r.value_max <> raw.value_max
                   OR r.first_time <> raw.first_time OR r.first_value <> raw.first_value
                   OR r.last_time <> raw.last_time OR r.last_value <> raw.last_value""").formatted(unit));
    }

    /**
     * The contract's environment variables that point a service process at this scenario; PORT is a
     * different free port on each call, since several service processes may share this host.
     */
    Map<String, String> serviceEnvironment() throws IOException {
        Map<String, String> env = new HashMap<>();
        env.put("PORT", String.valueOf(EmbeddedPostgres.freePort()));
        env.put("KAFKA_BROKERS", broker.bootstrapServers());
        env.put("KAFKA_TOPIC", topic);
        env.put("KAFKA_GROUP_ID", group);
        env.put("KAFKA_FROM_BEGINNING", "true");
        env.put("DB_HOST", pg.host());
        env.put("DB_PORT", String.valueOf(pg.port()));
        env.put("DB_NAME", database);
        env.put("DB_USER", pg.user());
        env.put("DB_PASSWORD", pg.password());
        env.putAll(broker.serviceEnvironment());
        env.putAll(pg.serviceEnvironment());
        env.putAll(environment);
        return env;
    }

    /** For a producer or admin client of the test's own: the broker's address and security settings. */
    java.util.Properties kafkaClientProperties() {
        return broker.clientProperties();
    }

    LoadGenerator.Options load(int sensors, long events) {
        return new LoadGenerator.Options(broker.bootstrapServers(), topic, sensors, events, 0, 0, 0, System.nanoTime(), false,
                LoadGenerator.WALL_CLOCK);
    }

    /** Sends key/value pairs (value bytes as given) to the scenario's topic and waits until acknowledged. */
    void send(java.util.List<java.util.Map.Entry<String, byte[]>> records) throws Exception {
        send(null, records);
    }

    /** The same, to one partition (null: the producer's choice by key). */
    void send(Integer partition, java.util.List<java.util.Map.Entry<String, byte[]>> records) throws Exception {
        java.util.Properties props = kafkaClientProperties();
        props.put("max.request.size", 4 * 1024 * 1024);
        try (var producer = new org.apache.kafka.clients.producer.KafkaProducer<>(props,
                new org.apache.kafka.common.serialization.StringSerializer(),
                new org.apache.kafka.common.serialization.ByteArraySerializer())) {
            for (var r : records) {
                producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, partition, r.getKey(), r.getValue())).get();
            }
        }
    }

    /** Read-only database: new sessions refuse writes; existing ones are ended so the pool reconnects. */
    void refuseWrites(boolean refuse) throws SQLException {
        try (var c = pg.connect("postgres"); var st = c.createStatement()) {
            st.execute("ALTER DATABASE \"" + database + "\" SET default_transaction_read_only = " + refuse);
            st.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database + "'");
        }
    }

    void startService() throws Exception {
        // in-process too, the service is configured through the contract's variable names
        Map<String, String> env = serviceEnvironment();
        if (httpPort > 0) {
            env.put("PORT", String.valueOf(httpPort));
        }
        httpPort = Integer.parseInt(env.get("PORT"));
        main = SensorMetricsConsumer.newMain(env);
        overrides.forEach(main::addOverrideProperty);
        main.addMainListener(new org.apache.camel.main.MainListenerSupport() {
            @Override
            public void afterConfigure(org.apache.camel.main.BaseMainSupport m) {
                beforeStart.forEach(hook -> hook.accept(m.getCamelContext()));
            }
        });
        main.start();
        OPEN.add(this);
    }

    synchronized void stopService() throws Exception {
        OPEN.remove(this);
        if (main != null) {
            main.stop();
            main.shutdown();
            main = null;
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** GET on the in-process service's HTTP port: the status code, then the body. */
    Map.Entry<Integer, String> get(String pathAndQuery) throws IOException, InterruptedException {
        return get(httpPort, pathAndQuery);
    }

    static Map.Entry<Integer, String> get(int port, String pathAndQuery) throws IOException, InterruptedException {
        return get(port, pathAndQuery, null);
    }

    /** The same with this Authorization header (null: none). */
    static Map.Entry<Integer, String> get(int port, String pathAndQuery, String authorization) throws IOException, InterruptedException {
        var builder = java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + pathAndQuery))
                .timeout(Duration.ofSeconds(10)).GET();
        if (authorization != null) {
            builder.header("Authorization", authorization);
        }
        var request = builder.build();
        var response = HTTP.send(request, java.net.http.HttpResponse.BodyHandlers.ofString());
        return Map.entry(response.statusCode(), response.body());
    }

    /** A setting as the service's own database sessions have it: what its pool's connection options set. */
    String serviceSessionSetting(String name) throws SQLException {
        javax.sql.DataSource pool = main.getCamelContext().getRegistry().lookupByNameAndType("dataSource", javax.sql.DataSource.class);
        try (Connection c = pool.getConnection(); var st = c.prepareStatement("SELECT current_setting(?)")) {
            st.setString(1, name);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    IngestProgress progress() {
        return main.getCamelContext().getRegistry().lookupByNameAndType("ingestProgress", IngestProgress.class);
    }

    /** The documented migration of a reference-schema database (docs/storage.md): its three files, one transaction. */
    void migrateToPartitionedLayout() throws Exception {
        try (Connection c = db(); var st = c.createStatement()) {
            c.setAutoCommit(false);
            for (String step : java.util.List.of("routes/storage/migrate/1-set-reference-tables-aside.sql", "routes/storage/schema.sql",
                    "routes/storage/migrate/3-copy-reference-rows.sql")) {
                st.execute(java.nio.file.Files.readString(Path.of(step)));
            }
            c.commit();
        }
    }

    Connection db() throws SQLException {
        return pg.connect(database);
    }

    long count(String sql) throws SQLException {
        try (Connection c = db(); var st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /**
     * End offset minus committed offset (or, where the group never committed, minus the first offset still
     * kept), summed over all partitions: 0 when the group has caught up.
     */
    long lag() throws Exception {
        Map<TopicPartition, Long> committed = committedOffsets();
        Map<TopicPartition, Long> starts = offsets(OffsetSpec.earliest());
        return offsets(OffsetSpec.latest()).entrySet().stream()
                .mapToLong(e -> e.getValue() - committed.getOrDefault(e.getKey(), starts.get(e.getKey()))).sum();
    }

    /**
     * Per partition: its end offset, the group's committed offset, and the member it is assigned to; what to read
     * when lag stays above 0 (a commit that went backwards, or a partition nobody owns).
     */
    String offsetReport() throws Exception {
        Map<TopicPartition, Long> ends = offsets(OffsetSpec.latest());
        Map<TopicPartition, Long> committed = committedOffsets();
        Map<TopicPartition, String> owners = new HashMap<>();
        admin().describeConsumerGroups(List.of(group)).all().get().get(group).members()
                .forEach(m -> m.assignment().topicPartitions().forEach(tp -> owners.put(tp, m.consumerId())));
        StringBuilder report = new StringBuilder();
        for (int p = 0; p < partitions; p++) {
            TopicPartition tp = new TopicPartition(topic, p);
            report.append(String.format("  partition %d: end %d, committed %s, member %s%n", p, ends.get(tp), committed.get(tp),
                    owners.getOrDefault(tp, "none")));
        }
        return report.toString();
    }

    /** How many records the topic holds. */
    long produced() throws Exception {
        return offsets(OffsetSpec.latest()).values().stream().mapToLong(Long::longValue).sum();
    }

    Map<TopicPartition, Long> offsets(OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            specs.put(new TopicPartition(topic, p), spec);
        }
        Map<TopicPartition, Long> ends = new HashMap<>();
        admin().listOffsets(specs).all().get().forEach((tp, info) -> ends.put(tp, info.offset()));
        return ends;
    }

    Map<TopicPartition, Long> committedOffsets() throws Exception {
        return committedOffsets(group);
    }

    /** Another group's committed offsets, on this pipeline's broker (a sink compared against the service). */
    Map<TopicPartition, Long> committedOffsets(String groupId) throws Exception {
        Map<TopicPartition, Long> result = new HashMap<>();
        admin().listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> { if (om != null) result.put(tp, om.offset()); });
        return result;
    }

    /** The group's members as the coordinator sees them: a static one by its instance id, a dynamic one by its member id. */
    List<String> members() throws Exception {
        return admin().describeConsumerGroups(List.of(group)).all().get().get(group).members().stream()
                .map(m -> m.groupInstanceId().orElse("(dynamic) " + m.consumerId())).sorted().toList();
    }

    synchronized Admin admin() {
        if (admin == null) {
            admin = broker.admin();
        }
        return admin;
    }

    interface Check {
        boolean get() throws Exception;
    }

    /** A condition that counts as not yet met while it throws (service still starting, server down). */
    static boolean safe(Check check) {
        try {
            return check.get();
        } catch (Exception e) {
            return false;
        }
    }

    static void await(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("Timed out after " + timeout.toSeconds() + " s waiting for " + what);
            }
            Thread.sleep(200);
        }
    }

    /**
     * Until the group has this many members and is stable: its generation changes no more unless something
     * happens to it (a poll thread's first join can come seconds after the other's).
     */
    void awaitSettledGroup(int members) throws InterruptedException {
        await("a settled group of " + members + " members", Duration.ofMinutes(1), () -> safe(() -> {
            var described = admin().describeConsumerGroups(List.of(group)).all().get().get(group);
            return described.members().size() == members && described.groupState() == org.apache.kafka.common.GroupState.STABLE;
        }));
    }

    /** The lag, or what kept it from being read. */
    static String safeLag(Pipeline p) {
        try {
            return String.valueOf(p.lag());
        } catch (Exception e) {
            return "unknown (" + e + ")";
        }
    }

    /** Waits until every record is committed (lag 0), then the caller counts rows. */
    void awaitCaughtUp(Duration timeout) throws InterruptedException {
        await("consumer lag 0 on " + topic, timeout, () -> safe(() -> lag() == 0));
    }

    @Override
    public void close() throws Exception {
        stopService();
        synchronized (this) {
            if (admin != null) {
                admin.close();
                admin = null;
            }
        }
        pg.dropDatabase(database);
    }
}
