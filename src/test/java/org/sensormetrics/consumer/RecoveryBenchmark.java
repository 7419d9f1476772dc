package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * How long the pipeline stands still when its instance is replaced: the time from a kill -9 (or a
 * SIGTERM) of the packaged jar, with a new process started at once, to the first batch the new process
 * commits. Each round runs under a steady load, with dynamic group membership and then with static
 * membership (KAFKA_GROUP_INSTANCE_ID), on a topic and database of its own, and ends with the exactly-once
 * count of everything that was produced.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.RecoveryBenchmark}
 * (RECOVERY_ROUNDS, 5 per way of stopping; RECOVERY_RATE, 5,000 events/s; RECOVERY_STOPS=kill9,sigterm).
 * Exits 1 if an event is missing or doubled.
 */
public final class RecoveryBenchmark {

    record Round(String membership, String stop, double seconds, double fromStart) {
    }

    private RecoveryBenchmark() {
    }

    public static void main(String[] args) {
        Pipeline.exitWith(() -> {
            int rounds = Integer.parseInt(env("RECOVERY_ROUNDS", "5"));
            int rate = Integer.parseInt(env("RECOVERY_RATE", "5000"));
            List<String> stops = List.of(env("RECOVERY_STOPS", "kill9,sigterm").split(","));
            Pipeline.startOrUseServices(Path.of("target/bench-postgres"));
            List<Round> all = new ArrayList<>();
            boolean exact = true;
            for (String membership : List.of("dynamic", "static")) {
                exact &= measure(membership, stops, rounds, rate, all);
            }
            print(all);
            return exact;
        });
    }

    private static boolean measure(String membership, List<String> stops, int rounds, int rate, List<Round> results) throws Exception {
        String run = "recovery_" + membership + "_" + System.currentTimeMillis() % 1_000_000;
        Pipeline p = new Pipeline(run, run, run, 12);
        Map<String, String> env = "static".equals(membership) ? Map.of("KAFKA_GROUP_INSTANCE_ID", "recovery-0") : Map.of();
        Path logs = Files.createDirectories(Path.of("target/recovery"));
        int started = 0;
        ServiceProcess service = ServiceProcess.start(p, logs.resolve(run + "-" + started++ + ".log"), "256m", env);
        AtomicBoolean producing = new AtomicBoolean(true);
        // two seconds of load at a time, each with its own ids, until every round is done
        CompletableFuture<Long> load = CompletableFuture.supplyAsync(() -> {
            long valid = 0;
            for (int chunk = 0; producing.get(); chunk++) {
                valid += LoadGenerator.produce(p.load(1000, 2L * rate).withRate(rate).withSeed(1000 + chunk)).valid();
            }
            return valid;
        });
        try {
            awaitCommitting(p, Duration.ofMinutes(2));
            System.out.printf("  %s: members %s%n", membership, p.members());
            for (String stop : stops) {
                for (int i = 0; i < rounds; i++) {
                    awaitCommitting(p, Duration.ofMinutes(2));
                    Thread.sleep(3000);
                    long stoppedAt = System.nanoTime();
                    if ("kill9".equals(stop)) {
                        service.kill9();
                    } else {
                        service.stop(); // the batch in flight commits during the graceful shutdown: not the new process's
                    }
                    if (i == 0) {
                        System.out.printf("  %s, right after the %s: members %s%n", membership, stop, p.members());
                    }
                    long committed = committedSum(p);
                    long startedAt = System.nanoTime();
                    service = ServiceProcess.start(p, logs.resolve(run + "-" + started++ + ".log"), "256m", env);
                    while (committedSum(p) <= committed) {
                        if (System.nanoTime() - stoppedAt > Duration.ofMinutes(3).toNanos()) {
                            throw new IllegalStateException("no batch committed within 3 minutes of the " + stop);
                        }
                        Thread.sleep(50);
                    }
                    long now = System.nanoTime();
                    Round r = new Round(membership, stop, (now - stoppedAt) / 1e9, (now - startedAt) / 1e9);
                    System.out.printf("  %s, %s: first batch committed %.1f s after the stop, %.1f s after the new process started%n",
                            membership, stop, r.seconds(), r.fromStart());
                    results.add(r);
                }
            }
            producing.set(false);
            long valid = load.get();
            p.awaitCaughtUp(Duration.ofMinutes(5));
            long stored = p.count("SELECT count(*) FROM metrics");
            long distinct = p.count("SELECT count(DISTINCT event_id) FROM metrics");
            long claimed = p.count("SELECT count(*) FROM processed_events");
            boolean exact = stored == valid && distinct == valid && claimed == valid;
            System.out.printf("  %s: produced %,d, stored %,d (distinct %,d, processed_events %,d): exactly once %s%n",
                    membership, valid, stored, distinct, claimed, exact);
            return exact;
        } finally {
            producing.set(false);
            service.stop();
            p.close();
        }
    }

    /** Until the group commits again: the service is up, has its partitions and has stored a batch. */
    private static void awaitCommitting(Pipeline p, Duration timeout) throws Exception {
        long before = committedSum(p);
        Pipeline.await("a committed batch", timeout, () -> Pipeline.safe(() -> committedSum(p) > before));
    }

    private static long committedSum(Pipeline p) throws Exception {
        return p.committedOffsets().values().stream().mapToLong(Long::longValue).sum();
    }

    private static void print(List<Round> rounds) {
        System.out.println();
        System.out.println("| membership | stop | rounds | seconds from the stop to the new process's first committed batch, each | median | median from the new process's start |");
        System.out.println("|---|---|---:|---|---:|---:|");
        rounds.stream().map(r -> r.membership() + " " + r.stop()).distinct().forEach(key -> {
            List<Double> s = rounds.stream().filter(r -> key.equals(r.membership() + " " + r.stop())).map(Round::seconds).toList();
            List<Double> fromStart = rounds.stream().filter(r -> key.equals(r.membership() + " " + r.stop())).map(Round::fromStart).toList();
            System.out.printf("| %s | %s | %d | %s | %.1f | %.1f |%n", key.split(" ")[0], key.split(" ")[1], s.size(),
                    String.join(" / ", s.stream().map(v -> String.format("%.1f", v)).toList()), median(s), median(fromStart));
        });
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        return sorted.get(sorted.size() / 2);
    }
}
