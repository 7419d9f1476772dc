package org.sensormetrics.consumer;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The packaged jar as a separate process, as in production: started, stopped, killed with -9. */
final class ServiceProcess {

    private final Process process;
    private final int httpPort;

    private ServiceProcess(Process process, int httpPort) {
        this.process = process;
        this.httpPort = httpPort;
    }

    /** Starts the jar for the scenario's topic, group and database; extraEnv adds or overrides settings. */
    static ServiceProcess start(Pipeline p, Path log, String maxHeap, Map<String, String> extraEnv) throws IOException {
        Files.createDirectories(log.toAbsolutePath().getParent());
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + maxHeap, "-jar", new File("target/sensor-metrics-consumer.jar").getAbsolutePath())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().putAll(p.serviceEnvironment());
        pb.environment().putAll(extraEnv);
        return new ServiceProcess(pb.start(), Integer.parseInt(pb.environment().get("PORT")));
    }

    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM and wait for Camel's graceful shutdown; false if it had to be killed after 60 s. */
    boolean stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            kill9();
            return false;
        }
        return true;
    }

    /** SIGQUIT: the JVM writes every thread's stack to its output, the process's log, and goes on. */
    void printThreads() throws IOException, InterruptedException {
        if (process.isAlive()) {
            new ProcessBuilder("kill", "-QUIT", Long.toString(process.pid())).inheritIO().start().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** How many batches failed and were rewound, per the service's log. */
    static long rewinds(Path log) throws IOException {
        return sum(log, l -> l.contains("Batch failed and was rolled back") ? 1 : 0);
    }

    /** Records read again because the database had lost them (IngestConsumer's "lost N stored records" lines). */
    static long readAgain(Path log) throws IOException {
        java.util.regex.Pattern lost = java.util.regex.Pattern.compile("a failover or restore lost ([\\d,]+) stored records");
        return sum(log, l -> {
            var m = lost.matcher(l);
            return m.find() ? Long.parseLong(m.group(1).replace(",", "")) : 0;
        });
    }

    /** How many partitions were revoked from the service's consumers (IngestConsumer's "Revoked [...]" lines). */
    static long revokedPartitions(Path log) throws IOException {
        return sum(log, l -> {
            int at = l.indexOf("IngestConsumer - Revoked [");
            return at < 0 ? 0 : l.substring(at, l.indexOf(']', at)).split(",").length;
        });
    }

    private static long sum(Path log, java.util.function.ToLongFunction<String> perLine) throws IOException {
        if (!Files.exists(log)) {
            return 0;
        }
        try (var lines = Files.lines(log)) {
            return lines.mapToLong(perLine).sum();
        }
    }

    private static final java.util.regex.Pattern HEAP_USED =
            java.util.regex.Pattern.compile("^jvm_memory_used_bytes\\{area=\"heap\"[^}]*} (\\S+)$", java.util.regex.Pattern.MULTILINE);

    /** The heap it uses now, all pools, from its own Prometheus scrape; throws while it does not serve yet. */
    long heapUsedBytes() throws IOException, InterruptedException {
        var m = HEAP_USED.matcher(Pipeline.get(httpPort, "/observe/metrics").getValue());
        long heap = 0;
        while (m.find()) {
            heap += (long) Double.parseDouble(m.group(1));
        }
        return heap;
    }

    /** A kB field of its /proc status, such as VmRSS or VmHWM; 0 when absent. */
    long procStatusKb(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + process.pid() + "/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        return 0;
    }

    /** Its HTTP port (health, metrics, read API). */
    int httpPort() {
        return httpPort;
    }

    boolean isAlive() {
        return process.isAlive();
    }

    long pid() {
        return process.pid();
    }
}
