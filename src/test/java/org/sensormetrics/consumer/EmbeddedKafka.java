package org.sensormetrics.consumer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.apache.kafka.common.utils.Exit;

/**
 * A real single-node Apache Kafka (KRaft, broker and controller in one) inside this JVM; or, for the
 * benchmark, a plaintext cluster that runs elsewhere ({@link #existing}), which it cannot restart.
 */
public final class EmbeddedKafka implements AutoCloseable {

    private final KafkaClusterTestKit cluster;
    private final String bootstrapServers;
    private final short replicationFactor;
    /** How a client connects (security.protocol, sasl.*, ssl.*), and the service's settings for the same. */
    private final Map<String, String> clientConfig;
    private final Map<String, String> serviceEnvironment;

    private EmbeddedKafka(KafkaClusterTestKit cluster, String bootstrapServers, short replicationFactor,
                          Map<String, String> clientConfig, Map<String, String> serviceEnvironment) {
        this.cluster = cluster;
        this.bootstrapServers = bootstrapServers;
        this.replicationFactor = replicationFactor;
        this.clientConfig = Map.copyOf(clientConfig);
        this.serviceEnvironment = Map.copyOf(serviceEnvironment);
    }

    public static EmbeddedKafka existing(String bootstrapServers) {
        return existing(bootstrapServers, 1);
    }

    /** A cluster that runs elsewhere, whose topics get this many replicas. */
    public static EmbeddedKafka existing(String bootstrapServers, int replicationFactor) {
        return existing(bootstrapServers, replicationFactor, Map.of(), Map.of());
    }

    /** The same, reached with these client settings; the service is given serviceEnvironment for them. */
    public static EmbeddedKafka existing(String bootstrapServers, int replicationFactor, Map<String, String> clientConfig,
                                         Map<String, String> serviceEnvironment) {
        return new EmbeddedKafka(null, bootstrapServers, (short) replicationFactor, clientConfig, serviceEnvironment);
    }

    /** Per group, the generation the coordinator last stabilized, read from its own log. */
    private static final Map<String, Integer> GENERATIONS = new java.util.concurrent.ConcurrentHashMap<>();
    private static final java.util.regex.Pattern STABILIZED = java.util.regex.Pattern.compile("Stabilized group (\\S+) generation (\\d+)");

    public static EmbeddedKafka start() throws Exception {
        listenToTheGroupCoordinator();
        // Kafka's server code exits or halts the JVM on errors it deems fatal (Exit.exit/halt). In a test JVM
        // that closes a broker it restarted, that would end the JVM with a non-zero status after every test
        // passed (Surefire then reports "Error occurred in starting fork"); here it is only printed.
        Exit.setExitProcedure((status, message) -> System.err.println("Kafka asked to exit(" + status + "): " + message));
        Exit.setHaltProcedure((status, message) -> System.err.println("Kafka asked to halt(" + status + "): " + message));
        KafkaClusterTestKit cluster = new KafkaClusterTestKit.Builder(
                new TestKitNodes.Builder().setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build())
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("offsets.topic.num.partitions", "4")
                .setConfigProp("group.initial.rebalance.delay.ms", "0")
                .setConfigProp("auto.create.topics.enable", "false")
                .build();
        cluster.format();
        cluster.startup();
        cluster.waitForReadyBrokers();
        return new EmbeddedKafka(cluster, cluster.bootstrapServers(), (short) 1, Map.of(), Map.of());
    }

    /**
     * The group's generation: how many rebalances it has been through, as the group coordinator counts them (a
     * classic group's generation is in no admin API answer). 0 before its first.
     */
    public static int generation(String group) {
        return GENERATIONS.getOrDefault(group, 0);
    }

    /** A log4j appender on the in-process broker's group coordinator, for its "Stabilized group" lines only. */
    private static void listenToTheGroupCoordinator() {
        var context = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
        var config = context.getConfiguration();
        var appender = new org.apache.logging.log4j.core.appender.AbstractAppender("group-generations", null, null, true,
                org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY) {
            @Override
            public void append(org.apache.logging.log4j.core.LogEvent event) {
                var m = STABILIZED.matcher(event.getMessage().getFormattedMessage());
                if (m.find()) {
                    GENERATIONS.merge(m.group(1), Integer.parseInt(m.group(2)), Math::max);
                }
            }
        };
        appender.start();
        String name = "org.apache.kafka.coordinator.group.GroupMetadataManager";
        var logger = new org.apache.logging.log4j.core.config.LoggerConfig(name, org.apache.logging.log4j.Level.INFO, false);
        logger.addAppender(appender, org.apache.logging.log4j.Level.INFO, null);
        config.addLogger(name, logger);
        context.updateLoggers();
    }

    public String bootstrapServers() {
        return bootstrapServers;
    }

    /** Bootstrap servers and security settings, for a test's own producer or admin client. */
    public Properties clientProperties() {
        Properties p = new Properties();
        p.putAll(clientConfig);
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
        return p;
    }

    /** The service's KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* settings for this broker. */
    public Map<String, String> serviceEnvironment() {
        return serviceEnvironment;
    }

    public Admin admin() {
        return Admin.create(clientProperties());
    }

    /**
     * Creates the topic and returns once the broker itself leads every partition. The controller
     * confirms the topic earlier: a producer that writes at once got NOT_LEADER_OR_FOLLOWER, and its
     * idempotent retries then stalled on OUT_OF_ORDER_SEQUENCE_NUMBER until the delivery timeout.
     */
    public void createTopic(String name, int partitions) throws Exception {
        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic(name, partitions, replicationFactor).configs(Map.of()))).all().get();
            Map<TopicPartition, OffsetSpec> all = new HashMap<>();
            for (int p = 0; p < partitions; p++) {
                all.put(new TopicPartition(name, p), OffsetSpec.latest());
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                try {
                    admin.listOffsets(all).all().get(); // answered by the partition leader only
                    return;
                } catch (ExecutionException notYet) {
                    if (System.nanoTime() > deadline) {
                        throw notYet;
                    }
                    Thread.sleep(100);
                }
            }
        }
    }

    /** Stops the broker (the controller stays up), waits, and starts it again, as Kafka's own tests do. */
    public void restartBroker(long downMillis) throws Exception {
        if (cluster == null) {
            throw new IllegalStateException("the Kafka cluster at " + bootstrapServers + " was not started here");
        }
        var broker = cluster.brokers().values().iterator().next();
        broker.shutdown();
        broker.awaitShutdown();
        Thread.sleep(downMillis);
        broker.startup();
        cluster.waitForReadyBrokers();
    }

    @Override
    public void close() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }
}
