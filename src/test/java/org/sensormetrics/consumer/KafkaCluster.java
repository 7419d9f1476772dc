package org.sensormetrics.consumer;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.Uuid;

/**
 * A real Kafka cluster (KRaft, broker and controller in each node), every node its own JVM on this machine, so
 * that one can be killed with SIGKILL: the group's coordinator or a partition's leader. The fault suite's has three
 * nodes, topics with three replicas and {@code min.insync.replicas=2}, so any one node may be down. The secured
 * tests' has one node whose only client listener takes TLS connections ({@link Security}).
 */
final class KafkaCluster implements AutoCloseable {

    static final int NODES = 3;
    private static final Pattern STABILIZED = Pattern.compile("Stabilized group (\\S+) generation (\\d+)");

    /**
     * The broker listener's protocol and settings (also between the nodes; the controllers' own listener stays
     * plaintext, no client reaches it), what storage formatting adds (SCRAM users), and how a client connects, as
     * Kafka client settings and as the service's environment.
     */
    record Security(String protocol, Map<String, String> brokerConfig, List<String> formatArgs, Map<String, String> clientConfig,
                    Map<String, String> serviceEnvironment) {
        static final Security PLAINTEXT = new Security("PLAINTEXT", Map.of(), List.of(), Map.of(), Map.of());

        /** SASL_SSL with SCRAM-SHA-512: the user (and the nodes' own user) created when storage is formatted. */
        static Security scram(TestCertificates certs, String user, String password) {
            String nodePassword = "node-secret-" + Uuid.randomUuid();
            Map<String, String> broker = new java.util.HashMap<>(tls(certs));
            broker.put("sasl.enabled.mechanisms", "SCRAM-SHA-512");
            broker.put("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512");
            broker.put("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"node\" password=\"" + nodePassword + "\";");
            return new Security("SASL_SSL", broker,
                    List.of("--add-scram", "SCRAM-SHA-512=[name=node,password=" + nodePassword + "]",
                            "--add-scram", "SCRAM-SHA-512=[name=" + user + ",password=" + password + "]"),
                    Map.of("security.protocol", "SASL_SSL", "sasl.mechanism", "SCRAM-SHA-512",
                            "sasl.jaas.config", KafkaSecurity.jaasLine("SCRAM-SHA-512", user, password),
                            "ssl.truststore.type", "PEM", "ssl.truststore.location", certs.ca().toString()),
                    Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_USERNAME", user,
                            "KAFKA_SASL_PASSWORD", password, "KAFKA_SSL_TRUSTSTORE_LOCATION", certs.ca().toString()));
        }

        /** SSL with ssl.client.auth=required: a client shows a certificate the CA signed, and no SASL. */
        static Security mutualTls(TestCertificates certs) {
            Map<String, String> broker = new java.util.HashMap<>(tls(certs));
            broker.put("ssl.client.auth", "required");
            return new Security("SSL", broker, List.of(),
                    Map.of("security.protocol", "SSL", "ssl.truststore.type", "PEM", "ssl.truststore.location", certs.ca().toString(),
                            "ssl.keystore.type", "PEM", "ssl.keystore.location", certs.pemKeystore("client").toString()),
                    Map.of("KAFKA_SECURITY_PROTOCOL", "SSL", "KAFKA_SSL_TRUSTSTORE_LOCATION", certs.ca().toString(),
                            "KAFKA_SSL_KEYSTORE_LOCATION", certs.pkcs12("client").toString(),
                            "KAFKA_SSL_KEYSTORE_PASSWORD", TestCertificates.PKCS12_PASSWORD));
        }

        private static Map<String, String> tls(TestCertificates certs) {
            return Map.of("ssl.keystore.type", "PEM", "ssl.keystore.location", certs.pemKeystore("server").toString(),
                    "ssl.truststore.type", "PEM", "ssl.truststore.location", certs.ca().toString());
        }
    }

    private final Path dir;
    private final int size;
    private final Security security;
    private final int[] brokerPorts;
    private final int[] controllerPorts;
    private final Process[] nodes;

    private KafkaCluster(Path dir, int size, Security security) {
        this.dir = dir;
        this.size = size;
        this.security = security;
        this.brokerPorts = new int[size];
        this.controllerPorts = new int[size];
        this.nodes = new Process[size];
    }

    /** The fault suite's: three plaintext nodes. */
    static KafkaCluster start(Path dir) throws Exception {
        return start(dir, NODES, Security.PLAINTEXT);
    }

    /** Formats each node's storage with one cluster id, starts them all, and waits until they all serve. */
    static KafkaCluster start(Path dir, int size, Security security) throws Exception {
        KafkaCluster cluster = new KafkaCluster(dir.toAbsolutePath(), size, security);
        cluster.format();
        for (int node = 0; node < size; node++) {
            cluster.startNode(node);
        }
        cluster.awaitNodes(size);
        return cluster;
    }

    /** This cluster as the tests' Pipeline takes a broker: its address, replication and security settings. */
    EmbeddedKafka broker() {
        return EmbeddedKafka.existing(bootstrapServers(), Math.min(size, NODES), security.clientConfig(), security.serviceEnvironment());
    }

    private void format() throws Exception {
        if (Files.exists(dir)) {
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
        Files.createDirectories(dir);
        for (int node = 0; node < size; node++) {
            brokerPorts[node] = EmbeddedPostgres.freePort();
            controllerPorts[node] = EmbeddedPostgres.freePort();
        }
        Files.writeString(dir.resolve("log4j2.properties"), """
                appender.file.type = Console
                appender.file.name = out
                appender.file.layout.type = PatternLayout
                appender.file.layout.pattern = %d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n
                rootLogger.level = WARN
                rootLogger.appenderRef.out.ref = out
                logger.group.name = org.apache.kafka.coordinator.group.GroupMetadataManager
                logger.group.level = INFO
                """);
        String clusterId = Uuid.randomUuid().toString();
        for (int node = 0; node < size; node++) {
            Path config = writeConfig(node);
            List<String> args = new ArrayList<>(List.of("format", "-t", clusterId, "-c", config.toString()));
            args.addAll(security.formatArgs());
            Process format = java("kafka.tools.StorageTool", args)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("format.log").toFile())).start();
            if (!format.waitFor(2, TimeUnit.MINUTES) || format.exitValue() != 0) {
                throw new IllegalStateException("formatting node " + node + " failed: " + Files.readString(dir.resolve("format.log")));
            }
        }
    }

    private Path writeConfig(int node) throws IOException {
        String voters = java.util.stream.IntStream.range(0, size)
                .mapToObj(n -> n + "@127.0.0.1:" + controllerPorts[n]).collect(Collectors.joining(","));
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", String.valueOf(node));
        p.put("controller.quorum.voters", voters);
        String listener = security.protocol();
        p.put("listeners", listener + "://127.0.0.1:" + brokerPorts[node] + ",CONTROLLER://127.0.0.1:" + controllerPorts[node]);
        p.put("advertised.listeners", listener + "://127.0.0.1:" + brokerPorts[node]);
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", listener);
        p.put("listener.security.protocol.map", listener + ":" + listener + ",CONTROLLER:PLAINTEXT");
        p.put("log.dirs", dir.resolve("node-" + node).toString());
        int replicas = Math.min(size, NODES);
        p.put("default.replication.factor", String.valueOf(replicas));
        p.put("min.insync.replicas", String.valueOf(Math.max(1, replicas - 1)));
        p.put("offsets.topic.replication.factor", String.valueOf(replicas));
        p.put("offsets.topic.num.partitions", "4");
        p.put("transaction.state.log.replication.factor", String.valueOf(replicas));
        p.put("transaction.state.log.min.isr", String.valueOf(Math.max(1, replicas - 1)));
        p.putAll(security.brokerConfig());
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("auto.create.topics.enable", "false");
        Path file = dir.resolve("node-" + node + ".properties");
        try (var out = Files.newBufferedWriter(file)) {
            p.store(out, "node " + node + " of the fault suite's cluster");
        }
        return file;
    }

    void startNode(int node) throws IOException {
        nodes[node] = java("kafka.Kafka", List.of(dir.resolve("node-" + node + ".properties").toString()))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log(node).toFile())).start();
    }

    /** SIGKILL: the node's process ends at once, with whatever it had not yet written to disk. */
    void kill9(int node) throws InterruptedException {
        nodes[node].destroyForcibly();
        nodes[node].waitFor(30, TimeUnit.SECONDS);
    }

    void awaitNodes(int count) throws Exception {
        try (Admin admin = admin()) {
            Pipeline.await(count + " Kafka nodes serving", Duration.ofMinutes(2),
                    () -> Pipeline.safe(() -> admin.describeCluster().nodes().get(10, TimeUnit.SECONDS).size() == count));
        }
    }

    String bootstrapServers() {
        return java.util.Arrays.stream(brokerPorts).mapToObj(port -> "127.0.0.1:" + port).collect(Collectors.joining(","));
    }

    Admin admin() {
        return broker().admin();
    }

    /** The node that coordinates the group now. */
    int coordinatorOf(String group) throws Exception {
        try (Admin admin = admin()) {
            return admin.describeConsumerGroups(List.of(group)).all().get().get(group).coordinator().id();
        }
    }

    /** The node that leads the partition now. */
    int leaderOf(String topic, int partition) throws Exception {
        try (Admin admin = admin()) {
            return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().get(partition).leader().id();
        }
    }

    /** The group's generation: the highest any coordinator, this one or an earlier one, stabilized it at. */
    int generation(String group) throws IOException {
        int highest = 0;
        for (int node = 0; node < size; node++) {
            if (Files.exists(log(node))) {
                for (String line : Files.readAllLines(log(node))) {
                    Matcher m = STABILIZED.matcher(line);
                    if (m.find() && m.group(1).equals(group)) {
                        highest = Math.max(highest, Integer.parseInt(m.group(2)));
                    }
                }
            }
        }
        return highest;
    }

    private Path log(int node) {
        return dir.resolve("node-" + node + ".log");
    }

    private ProcessBuilder java(String mainClass, List<String> args) {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties"), "-cp", classpath(), mainClass));
        command.addAll(args);
        return new ProcessBuilder(command).redirectErrorStream(true);
    }

    /** This JVM's classpath, which holds Kafka's server jars: from its class loader under exec:java, else java.class.path. */
    private static String classpath() {
        if (KafkaCluster.class.getClassLoader() instanceof URLClassLoader loader) {
            List<String> entries = new ArrayList<>();
            for (URL url : loader.getURLs()) {
                entries.add(new File(url.getPath()).getAbsolutePath());
            }
            return String.join(File.pathSeparator, entries);
        }
        return System.getProperty("java.class.path");
    }

    @Override
    public void close() throws InterruptedException {
        for (int node = 0; node < size; node++) {
            if (nodes[node] != null) {
                kill9(node);
            }
        }
    }
}
