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
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;

/**
 * A real Kafka cluster of three nodes (KRaft, broker and controller in each), every node its own JVM on this
 * machine, so that one can be killed with SIGKILL: the group's coordinator or a partition's leader. Topics have
 * three replicas and {@code min.insync.replicas=2}, so any one node may be down.
 */
final class KafkaCluster implements AutoCloseable {

    static final int NODES = 3;
    private static final Pattern STABILIZED = Pattern.compile("Stabilized group (\\S+) generation (\\d+)");

    private final Path dir;
    private final int[] brokerPorts = new int[NODES];
    private final int[] controllerPorts = new int[NODES];
    private final Process[] nodes = new Process[NODES];

    private KafkaCluster(Path dir) {
        this.dir = dir;
    }

    /** Formats each node's storage with one cluster id, starts all three, and waits until they all serve. */
    static KafkaCluster start(Path dir) throws Exception {
        KafkaCluster cluster = new KafkaCluster(dir.toAbsolutePath());
        cluster.format();
        for (int node = 0; node < NODES; node++) {
            cluster.startNode(node);
        }
        cluster.awaitNodes(NODES);
        return cluster;
    }

    private void format() throws Exception {
        if (Files.exists(dir)) {
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
        Files.createDirectories(dir);
        for (int node = 0; node < NODES; node++) {
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
        for (int node = 0; node < NODES; node++) {
            Path config = writeConfig(node);
            Process format = java("kafka.tools.StorageTool", List.of("format", "-t", clusterId, "-c", config.toString()))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("format.log").toFile())).start();
            if (!format.waitFor(2, TimeUnit.MINUTES) || format.exitValue() != 0) {
                throw new IllegalStateException("formatting node " + node + " failed: " + Files.readString(dir.resolve("format.log")));
            }
        }
    }

    private Path writeConfig(int node) throws IOException {
        String voters = java.util.stream.IntStream.range(0, NODES)
                .mapToObj(n -> n + "@127.0.0.1:" + controllerPorts[n]).collect(Collectors.joining(","));
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", String.valueOf(node));
        p.put("controller.quorum.voters", voters);
        p.put("listeners", "PLAINTEXT://127.0.0.1:" + brokerPorts[node] + ",CONTROLLER://127.0.0.1:" + controllerPorts[node]);
        p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPorts[node]);
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("log.dirs", dir.resolve("node-" + node).toString());
        p.put("default.replication.factor", "3");
        p.put("min.insync.replicas", "2");
        p.put("offsets.topic.replication.factor", "3");
        p.put("offsets.topic.num.partitions", "4");
        p.put("transaction.state.log.replication.factor", "3");
        p.put("transaction.state.log.min.isr", "2");
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
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
        return Admin.create(p);
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
        for (int node = 0; node < NODES; node++) {
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
        for (int node = 0; node < NODES; node++) {
            if (nodes[node] != null) {
                kill9(node);
            }
        }
    }
}
