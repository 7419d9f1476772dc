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

    private ServiceProcess(Process process) {
        this.process = process;
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
        return new ServiceProcess(pb.start());
    }

    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM and wait for Camel's graceful shutdown. */
    void stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            kill9();
        }
    }

    /** How many batches failed and were rewound, per the service's log. */
    static long rewinds(Path log) throws IOException {
        if (!Files.exists(log)) {
            return 0;
        }
        try (var lines = Files.lines(log)) {
            return lines.filter(l -> l.contains("Batch failed and was rolled back")).count();
        }
    }

    long pid() {
        return process.pid();
    }
}
