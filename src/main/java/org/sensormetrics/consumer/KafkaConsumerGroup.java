package org.sensormetrics.consumer;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;

import javax.management.MBeanServer;
import javax.management.ObjectName;

import io.micrometer.core.instrument.Gauge;
import org.apache.camel.component.kafka.KafkaComponent;
import org.apache.camel.health.HealthCheckResultBuilder;
import org.apache.camel.impl.health.AbstractHealthCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The service's view of its Kafka consumer group, through Kafka's admin client, away from the consumers'
 * poll threads.
 *
 * <p>Once, before the ingest route starts ({@link #prepare()}), it makes KAFKA_FROM_BEGINNING=false safe to
 * combine with rewinds. The consumer always runs with auto.offset.reset=earliest, because a rewind after a
 * failed batch seeks to the committed offsets and, on a partition with none yet, "latest" would skip the
 * failed records. "Start from the end" is therefore done here: every partition of the topic that has no
 * committed offset in the group gets its current end offset committed. Partitions that already have one
 * keep it. If other members are already consuming, the group owns its offsets and this does nothing.
 *
 * <p>Then every few seconds ({@link #check()}, route watch-consumer-group) it reads:
 * <ul>
 *   <li>its lag per partition (end offset minus committed offset, the lag the group's commits promise),
 *       as the gauge sensor_metrics_consumer_lag_records{topic,partition} and in the progress log;</li>
 *   <li>as the readiness check {@code kafka-consumer-group}: DOWN while the broker cannot be reached, or
 *       while none of this process's consumers has a partition assigned.</li>
 * </ul>
 * The assignment is read from the Kafka consumers' own metrics (JMX, {@code assigned-partitions}), since the
 * consumers themselves may only be touched from their poll threads. Their client ids are Kafka's default,
 * {@code consumer-<group>-<n>}, or a static member's {@code <instance id>-<slot>}, which is how this finds them.
 */
public class KafkaConsumerGroup extends AbstractHealthCheck {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaConsumerGroup.class);

    private final Map<TopicPartition, AtomicLong> lagByPartition = new ConcurrentHashMap<>();
    private String brokers;
    private String topic;
    private String groupId;
    private String groupInstanceId = "";
    private boolean fromBeginning;
    private long intervalMs = 5_000;
    private Admin admin;
    private volatile String problem = "consumer group not checked yet";
    private volatile long totalLag = -1;

    public KafkaConsumerGroup() {
        super("sensor-metrics", "kafka-consumer-group");
    }

    public void setBrokers(String brokers) {
        this.brokers = brokers;
    }

    public void setTopic(String topic) {
        this.topic = topic;
    }

    public void setGroupId(String groupId) {
        this.groupId = groupId;
    }

    /** kafka.group-instance-id: a static member's consumers have client ids of its own (IngestClientFactory). */
    public void setGroupInstanceId(String groupInstanceId) {
        this.groupInstanceId = groupInstanceId == null ? "" : groupInstanceId.trim();
    }

    public void setFromBeginning(boolean fromBeginning) {
        this.fromBeginning = fromBeginning;
    }

    public void setIntervalMs(long intervalMs) {
        this.intervalMs = intervalMs;
    }

    /** Readiness only: a broker outage is not fixed by restarting the consumer. */
    @Override
    public boolean isLiveness() {
        return false;
    }

    /**
     * Before the ingest route starts (route prepare-database-then-start-ingest): with
     * KAFKA_FROM_BEGINNING=false, commits the current end offset of every partition that has no committed
     * offset in the group yet.
     */
    public void prepare() throws InterruptedException, ExecutionException {
        Admin admin = admin();
        // a refused login or an untrusted certificate fails here, and is retried with one line each time,
        // instead of as an error in every poll of the consumers
        admin.describeCluster().clusterId().get();
        if (fromBeginning) {
            return;
        }
        Map<TopicPartition, Long> ends;
        try {
            ends = endOffsets(admin);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                LOG.info("Topic {} does not exist yet: the group will read it from its first record", topic);
                return;
            }
            throw e;
        }
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, OffsetAndMetadata> starts = new HashMap<>();
        ends.forEach((tp, end) -> {
            if (committed.get(tp) == null) {
                starts.put(tp, new OffsetAndMetadata(end));
            }
        });
        if (starts.isEmpty()) {
            return;
        }
        try {
            admin.alterConsumerGroupOffsets(groupId, starts).all().get();
            LOG.info("KAFKA_FROM_BEGINNING=false: group {} starts {} partition(s) of {} at their current end", groupId,
                    starts.size(), topic);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof GroupNotEmptyException)) {
                throw e;
            }
            LOG.info("Group {} already has active members; keeping its offsets", groupId);
        }
    }

    /** Closes the admin client when the registry shuts down. */
    public void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(2));
        }
    }

    /** The group's total lag at the last check, or -1 before the first successful one. */
    public long getTotalLag() {
        return totalLag;
    }

    @Override
    protected void doCall(HealthCheckResultBuilder builder, Map<String, Object> options) {
        builder.detail("topic", topic).detail("group.id", groupId).detail("lag", totalLag);
        String current = problem;
        if (current == null) {
            builder.up();
        } else {
            builder.down().message(current);
        }
    }

    /** Called every few seconds by the route watch-consumer-group. */
    public void check() {
        try {
            Admin admin = admin();
            Map<TopicPartition, Long> ends = endOffsets(admin);
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get();
            // a partition the group never committed counts from its first record still kept (what
            // KAFKA_FROM_BEGINNING=true reads), not from 0: after retention has deleted records that were never
            // read, counting from 0 would show them as lag for ever
            List<TopicPartition> neverCommitted = ends.keySet().stream().filter(tp -> committed.get(tp) == null).toList();
            Map<TopicPartition, Long> starts = neverCommitted.isEmpty() ? Map.of() : offsets(admin, neverCommitted, OffsetSpec.earliest());
            long total = 0;
            for (var end : ends.entrySet()) {
                OffsetAndMetadata position = committed.get(end.getKey());
                long lag = Math.max(0, end.getValue() - (position != null ? position.offset() : starts.getOrDefault(end.getKey(), 0L)));
                lagGauge(end.getKey()).set(lag);
                total += lag;
            }
            totalLag = total;
            int assigned = assignedPartitions();
            problem = assigned > 0 ? null
                    : "no partition of " + topic + " is assigned to this instance's consumers (group " + groupId
                    + "): starting, rebalancing, or more members than partitions";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            String message = cause instanceof UnknownTopicOrPartitionException ? "topic " + topic + " does not exist yet"
                    : "Kafka unreachable at " + brokers + ": " + cause.getClass().getSimpleName() + ": " + cause.getMessage()
                    + (cause.getCause() != null ? " (" + IngestProgress.rootMessage(cause) + ")" : "");
            if (!message.equals(problem)) {
                LOG.warn("{}", message);
            }
            problem = message;
        }
    }

    private Map<TopicPartition, Long> endOffsets(Admin admin) throws InterruptedException, ExecutionException {
        List<TopicPartition> partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().stream()
                .map(p -> new TopicPartition(topic, p.partition())).toList();
        return offsets(admin, partitions, OffsetSpec.latest());
    }

    private static Map<TopicPartition, Long> offsets(Admin admin, List<TopicPartition> partitions, OffsetSpec spec)
            throws InterruptedException, ExecutionException {
        Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
        partitions.forEach(tp -> specs.put(tp, spec));
        Map<TopicPartition, Long> offsets = new HashMap<>();
        admin.listOffsets(specs).all().get().forEach((tp, info) -> offsets.put(tp, info.offset()));
        return offsets;
    }

    private synchronized Admin admin() {
        if (admin == null) {
            admin = Admin.create(adminConfig());
        }
        return admin;
    }

    private Properties adminConfig() {
        // the connection settings the routes' consumers get from camel.component.kafka.* (TLS, SASL, ...),
        // so the admin client reaches the broker wherever they do
        Properties config = IngestClientFactory.adminProperties(getCamelContext().getComponent("kafka", KafkaComponent.class)
                .getConfiguration().createConsumerProperties());
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        config.put(AdminClientConfig.CLIENT_ID_CONFIG, "sensor-metrics-lag-monitor");
        // a check never outlasts the next one
        config.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) Math.max(2_000, intervalMs));
        config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.max(2_000, intervalMs));
        return config;
    }

    private AtomicLong lagGauge(TopicPartition tp) {
        return lagByPartition.computeIfAbsent(tp, key -> {
            AtomicLong lag = new AtomicLong();
            Gauge.builder("sensor.metrics.consumer.lag", lag, AtomicLong::get)
                    .description("Records in the partition after the group's committed offset")
                    .tag("topic", key.topic()).tag("partition", String.valueOf(key.partition()))
                    .baseUnit("records").register(IngestProgress.meterRegistry(getCamelContext()));
            return lag;
        });
    }

    private int assignedPartitions() throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        int assigned = 0;
        for (ObjectName name : server.queryNames(new ObjectName("kafka.consumer:type=consumer-coordinator-metrics,*"), null)) {
            String clientId = name.getKeyProperty("client-id");
            String prefix = groupInstanceId.isEmpty() ? "consumer-" + groupId + "-" : groupInstanceId + "-";
            if (clientId != null && clientId.startsWith(prefix)) {
                Object value = server.getAttribute(name, "assigned-partitions");
                assigned += value instanceof Number n ? n.intValue() : 0;
            }
        }
        return assigned;
    }
}
