package org.sensormetrics.consumer;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import org.apache.camel.main.Main;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Test harness: one real Kafka broker and one real PostgreSQL server per test JVM, a fresh topic, group
 * and database per scenario, and the service itself started from the packaged routes with only its
 * connection settings overridden.
 */
final class Pipeline implements AutoCloseable {

    private static final AtomicInteger SCENARIOS = new AtomicInteger();
    private static EmbeddedKafka kafka;
    private static EmbeddedPostgres postgres;

    final String topic;
    final String database;
    final String group;
    private final Map<String, String> overrides = new HashMap<>();
    private Main main;

    static synchronized void startServices() throws Exception {
        if (kafka == null) {
            kafka = EmbeddedKafka.start();
            postgres = EmbeddedPostgres.start(Path.of("target/test-postgres"), "fsync=off");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    kafka.close();
                    postgres.close();
                } catch (Exception ignored) {
                    // the JVM is going away either way
                }
            }));
        }
    }

    Pipeline(String name, int partitions) throws Exception {
        startServices();
        String id = name + "_" + SCENARIOS.incrementAndGet() + "_" + System.nanoTime() % 100000;
        topic = "sensor_metrics_" + id;
        database = "metrics_" + id;
        group = "group_" + id;
        kafka.createTopic(topic, partitions);
        postgres.createDatabase(database);
        overrides.put("kafka.brokers", kafka.bootstrapServers());
        overrides.put("kafka.topic", topic);
        overrides.put("kafka.group-id", group);
        overrides.put("kafka.from-beginning", "true");
        overrides.put("db.host", "127.0.0.1");
        overrides.put("db.port", String.valueOf(postgres.port()));
        overrides.put("db.name", database);
        overrides.put("db.user", EmbeddedPostgres.USER);
        overrides.put("consumer.retry-initial-ms", "200");
        overrides.put("consumer.retry-max-ms", "1000");
        overrides.put("consumer.progress-interval-ms", "2000");
    }

    Pipeline set(String key, String value) {
        overrides.put(key, value);
        return this;
    }

    static EmbeddedPostgres postgres() {
        return postgres;
    }

    LoadGenerator.Options load(int sensors, long events) {
        return new LoadGenerator.Options(kafka.bootstrapServers(), topic, sensors, events, 0, 0, 0, System.nanoTime());
    }

    /** Sends key/value pairs (value bytes as given) to the scenario's topic and waits until acknowledged. */
    void send(java.util.List<java.util.Map.Entry<String, byte[]>> records) throws Exception {
        java.util.Properties props = new java.util.Properties();
        props.put("bootstrap.servers", kafka.bootstrapServers());
        props.put("max.request.size", 4 * 1024 * 1024);
        try (var producer = new org.apache.kafka.clients.producer.KafkaProducer<>(props,
                new org.apache.kafka.common.serialization.StringSerializer(),
                new org.apache.kafka.common.serialization.ByteArraySerializer())) {
            for (var r : records) {
                producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, r.getKey(), r.getValue())).get();
            }
        }
    }

    /** Runs SQL as the database superuser, outside the service (to break or inspect the database). */
    void sql(String statement) throws SQLException {
        try (Connection c = db(); var st = c.createStatement()) {
            st.execute(statement);
        }
    }

    void startService() throws Exception {
        main = SensorMetricsConsumer.newMain(Path.of("target/no-such.env"));
        overrides.forEach(main::addOverrideProperty);
        main.start();
    }

    void stopService() throws Exception {
        if (main != null) {
            main.stop();
            main.shutdown();
            main = null;
        }
    }

    IngestProgress progress() {
        return main.getCamelContext().getRegistry().lookupByNameAndType("ingestProgress", IngestProgress.class);
    }

    Connection db() throws SQLException {
        return postgres.connect(database);
    }

    long count(String sql) throws SQLException {
        try (Connection c = db(); var st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** Committed offset minus end offset, summed over all partitions: 0 when the group has caught up. */
    long lag() throws Exception {
        try (Admin admin = kafka.admin()) {
            var partitions = admin.describeTopics(java.util.List.of(topic)).allTopicNames().get().get(topic).partitions();
            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            partitions.forEach(p -> specs.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
            var ends = admin.listOffsets(specs).all().get();
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            long lag = 0;
            for (var e : ends.entrySet()) {
                OffsetAndMetadata c = committed.get(e.getKey());
                lag += e.getValue().offset() - (c == null ? 0 : c.offset());
            }
            return lag;
        }
    }

    Map<TopicPartition, Long> committedOffsets() throws Exception {
        try (Admin admin = kafka.admin()) {
            Map<TopicPartition, Long> result = new HashMap<>();
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                    .forEach((tp, om) -> { if (om != null) result.put(tp, om.offset()); });
            return result;
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

    /** Waits until every record is committed (lag 0), then the caller counts rows. */
    void awaitCaughtUp(Duration timeout) throws InterruptedException {
        await("consumer lag 0 on " + topic, timeout, () -> {
            try {
                return lag() == 0;
            } catch (Exception e) {
                return false;
            }
        });
    }

    @Override
    public void close() throws Exception {
        stopService();
        postgres.dropDatabase(database);
    }
}
