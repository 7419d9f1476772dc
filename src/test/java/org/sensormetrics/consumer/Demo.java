package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The README's first command ({@code mvn -q test-compile exec:java}): starts a real Kafka broker and a
 * real PostgreSQL server, creates sensor_metrics with 12 partitions, runs the service and the load
 * generator, prints progress every 5 s and a summary at the end. Ctrl-C stops it cleanly at any time.
 *
 * <p>Settings (environment): SENSOR_COUNT (1000), EVENTS_PER_SEC (5000), RUN_DURATION_SEC (60),
 * DUPLICATE_SHARE (0.02), INVALID_SHARE (0.005). The database lives in .demo-data/ and is kept between
 * runs (delete the folder to start empty); the broker starts empty each time.
 */
public final class Demo {

    private Demo() {
    }

    public static void main(String[] args) throws Exception {
        int sensors = Integer.parseInt(env("SENSOR_COUNT", "1000"));
        int rate = Integer.parseInt(env("EVENTS_PER_SEC", "5000"));
        int seconds = Integer.parseInt(env("RUN_DURATION_SEC", "60"));
        double duplicates = Double.parseDouble(env("DUPLICATE_SHARE", "0.02"));
        double invalid = Double.parseDouble(env("INVALID_SHARE", "0.005"));

        System.out.println("Starting Kafka (KRaft) and PostgreSQL ...");
        Pipeline.startServices(Path.of(".demo-data/postgres"));
        Pipeline p = new Pipeline("sensor_metrics", "metrics", "sensor-metrics-consumer", 12);
        long storedBefore = p.count("SELECT count(*) FROM pg_class WHERE relname = 'metrics'") == 0 ? 0
                : p.count("SELECT count(*) FROM metrics");
        p.httpPort = Integer.parseInt(env("PORT", "3000"));
        p.startService();

        CountDownLatch stopped = new CountDownLatch(1);
        // Pipeline's own hook stops the service before the broker and the database
        Runtime.getRuntime().addShutdownHook(new Thread(stopped::countDown));

        System.out.printf("Producing %d events/s from %d sensors for %d s (%.1f%% duplicates, %.1f%% invalid) into %s%n",
                rate, sensors, seconds, duplicates * 100, invalid * 100, p.topic);
        var load = p.load(sensors, (long) rate * seconds).withRate(rate).withShares(duplicates, invalid);
        long start = System.nanoTime();
        CompletableFuture<LoadGenerator.Summary> producing = CompletableFuture.supplyAsync(() -> LoadGenerator.produce(load));
        long lastStored = storedBefore;
        long lastNanos = start;
        while (!(producing.isDone() && p.lag() == 0)) {
            if (stopped.await(5, TimeUnit.SECONDS)) {
                System.out.println("Interrupted: the batch in flight commits with its offsets or rolls back; run again to continue.");
                return;
            }
            long stored = p.count("SELECT count(*) FROM metrics");
            long now = System.nanoTime();
            System.out.printf("[%3d s] produced %,d  stored %,d  duplicates skipped %,d  rejected %,d  lag %,d  %,d events/s%n",
                    TimeUnit.NANOSECONDS.toSeconds(now - start), p.produced(), stored - storedBefore,
                    p.progress().getDuplicates(), p.progress().getRejected(), p.lag(),
                    (stored - lastStored) * 1_000_000_000L / Math.max(1, now - lastNanos));
            lastStored = stored;
            lastNanos = now;
        }
        LoadGenerator.Summary sent = producing.get();
        long stored = p.count("SELECT count(*) FROM metrics") - storedBefore;
        System.out.printf("%nSummary: %s%n", sent);
        System.out.printf("stored %,d new events (expected %,d), duplicates skipped %,d, rejected %,d (see rejected_events), "
                        + "failed batches %,d, consumer lag %d, wall time %.1f s%n",
                stored, sent.valid(), p.progress().getDuplicates(), p.progress().getRejected(), p.progress().getFailures(),
                p.lag(), (System.nanoTime() - start) / 1e9);
        System.out.println(stored == sent.valid() ? "Every event stored exactly once." : "MISMATCH: see the log above.");
        System.out.printf("Database kept in .demo-data/postgres (port %d while running; user postgres, database metrics).%n",
                Pipeline.postgres().port());
        if (stored != sent.valid()) {
            System.exit(1);
        }
        System.out.printf("%nThe service keeps running; Ctrl+C stops it. Try:%n"
                + "  curl 'http://localhost:%1$d/api/metrics?sensorId=sensor_1&limit=5'%n"
                + "  curl 'http://localhost:%1$d/api/metrics/summary'%n"
                + "  curl 'http://localhost:%1$d/api/metrics/series?sensorId=sensor_1&step=1m'%n"
                + "  curl 'http://localhost:%1$d/api/rejected?limit=5'%n"
                + "  curl http://localhost:%1$d/observe/health/ready%n"
                + "  curl http://localhost:%1$d/observe/metrics%n", p.httpPort);
        stopped.await();
    }
}
