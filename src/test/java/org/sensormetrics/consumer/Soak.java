package org.sensormetrics.consumer;

import static org.sensormetrics.consumer.Pipeline.env;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * An hour of steady load on two instances of the packaged jar (static members, as a StatefulSet runs them), with
 * PostgreSQL restarted every 10 minutes and one of the instances killed with -9 (and started again under its name)
 * every 15. Every 5 minutes it prints the rate stored, the produce-to-stored p99 of the events produced in those
 * minutes, each instance's RSS and heap after a full collection (jcmd GC.run once a minute), and the group's
 * committed lag. At the end: every event once, committed lag 0, and the heap after GC of the last 10 minutes
 * within 10% of minutes 10-20 (a leak grows it).
 *
 * <p>Run (not in CI): {@code mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.Soak}
 * with SOAK_MINUTES (60), SOAK_RATE (5,000 events/s), and the spacing of its rows and faults, in minutes:
 * SOAK_REPORT_MINUTES (5), SOAK_PG_RESTART_MINUTES (10), SOAK_KILL_MINUTES (15). Exits 1 if a check fails.
 */
public final class Soak {

    private Soak() {
    }

    public static void main(String[] args) {
        Pipeline.exitWith(Soak::run);
    }

    /** One sample of one instance, once a minute. */
    record Memory(double minute, int instance, long rssMb, long heapAfterGcMb) {
    }

    private static boolean run() throws Exception {
        int minutes = Integer.parseInt(env("SOAK_MINUTES", "60"));
        int rate = Integer.parseInt(env("SOAK_RATE", "5000"));
        double report = Double.parseDouble(env("SOAK_REPORT_MINUTES", "5"));
        double pgRestart = Double.parseDouble(env("SOAK_PG_RESTART_MINUTES", "10"));
        double kill = Double.parseDouble(env("SOAK_KILL_MINUTES", "15"));
        Pipeline.startOrUseServices(Path.of("target/soak-postgres"));
        Pipeline p = Pipeline.scenario("soak", 12);
        Path logs = Files.createDirectories(Path.of("target/soak"));
        ServiceProcess[] instances = new ServiceProcess[2];
        int started = 0;
        for (int i = 0; i < instances.length; i++) {
            instances[i] = ServiceProcess.start(p, logs.resolve(p.group + "-" + started++ + ".log"), "256m", member(i));
        }
        Pipeline.await("the service's schema", Duration.ofMinutes(2),
                () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM pg_class WHERE relname = 'rejected_events'") == 1));

        var load = p.load(5000, (long) rate * minutes * 60).withRate(rate);
        Instant start = Instant.now().truncatedTo(ChronoUnit.MICROS);
        long startNanos = System.nanoTime();
        var producing = CompletableFuture.supplyAsync(() -> LoadGenerator.produce(load));
        List<Memory> memory = new ArrayList<>();
        System.out.println("| minutes | stored events/s | p99 produce -> stored | RSS (MB) | heap after GC (MB) | committed lag | faults |");
        System.out.println("|---|---:|---:|---|---|---:|---|");
        double nextReport = report;
        double nextPgRestart = pgRestart;
        double nextKill = kill;
        double nextSample = 1;
        StringBuilder faults = new StringBuilder();
        int victim = 0;
        while (!producing.isDone()) {
            Thread.sleep(10_000);
            double minute = (System.nanoTime() - startNanos) / 60e9;
            if (minute >= nextSample) {
                for (int i = 0; i < instances.length; i++) {
                    memory.add(sample(minute, i, instances[i]));
                }
                nextSample += 1;
            }
            if (minute >= nextPgRestart && minute < minutes) {
                Pipeline.postgres().stop();
                Pipeline.postgres().restart();
                faults.append("PostgreSQL restarted; ");
                nextPgRestart += pgRestart;
            }
            if (minute >= nextKill && minute < minutes) {
                instances[victim].kill9();
                instances[victim] = ServiceProcess.start(p, logs.resolve(p.group + "-" + started++ + ".log"), "256m", member(victim));
                faults.append("instance ").append(victim).append(" killed -9 and started; ");
                victim = 1 - victim;
                nextKill += kill;
            }
            if (minute >= nextReport || producing.isDone()) {
                row(p, start, nextReport - report, Math.min(minute, nextReport), memory, Pipeline.safeLag(p), faults.toString());
                faults.setLength(0);
                nextReport += report;
            }
        }
        LoadGenerator.Summary sent = producing.get();
        boolean ok = true;
        try {
            p.awaitCaughtUp(Duration.ofMinutes(5));
        } catch (AssertionError e) {
            System.out.println("committed lag not 0 five minutes after the load ended:\n" + p.offsetReport());
            ok = false;
        }
        long stored = p.count("SELECT count(DISTINCT event_id) FROM metrics");
        long rows = p.count("SELECT count(*) FROM metrics");
        long claimed = p.count("SELECT count(*) FROM processed_events");
        System.out.printf("%nproduced %,d valid events; stored %,d distinct, %,d rows, %,d processed_events; lost %d, duplicated %d, committed lag %s%n",
                sent.valid(), stored, rows, claimed, sent.valid() - stored, rows - stored, Pipeline.safeLag(p));
        ok &= stored == sent.valid() && rows == stored && claimed == stored;
        double early = meanHeapAfterGc(memory, 10, 20);
        double late = meanHeapAfterGc(memory, minutes - 10, minutes);
        boolean flat = early > 0 && Math.abs(late - early) <= 0.1 * early;
        System.out.printf("heap after GC, mean of both instances: minutes 10-20 %.0f MB, last 10 minutes %.0f MB (%+.0f%%): %s%n",
                early, late, early > 0 ? 100 * (late - early) / early : 0, flat ? "within 10%" : "NOT within 10%");
        ok &= flat;
        for (ServiceProcess s : instances) {
            s.stop();
        }
        p.close();
        return ok;
    }

    /** A static member's name, which its replacement takes. */
    private static Map<String, String> member(int instance) {
        return Map.of("KAFKA_GROUP_INSTANCE_ID", "soak-" + instance);
    }

    /** RSS from /proc; the heap used right after a full collection that jcmd asks for. */
    private static Memory sample(double minute, int instance, ServiceProcess s) {
        long rssKb = 0;
        long heapBytes = 0;
        try {
            rssKb = s.procStatusKb("VmRSS");
            Process gc = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                    Long.toString(s.pid()), "GC.run").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            gc.waitFor(30, java.util.concurrent.TimeUnit.SECONDS);
            heapBytes = s.heapUsedBytes();
        } catch (Exception startingOrGone) {
            // a process just started serves no metrics yet; its sample counts as none
        }
        return new Memory(minute, instance, rssKb / 1024, heapBytes / (1024 * 1024));
    }

    private static double meanHeapAfterGc(List<Memory> memory, double from, double to) {
        return memory.stream().filter(m -> m.minute() >= from && m.minute() < to && m.heapAfterGcMb() > 0)
                .mapToLong(Memory::heapAfterGcMb).average().orElse(0);
    }

    private static void row(Pipeline p, Instant start, double fromMinute, double toMinute, List<Memory> memory, String lag,
            String faults) throws Exception {
        Instant from = start.plusMillis((long) (fromMinute * 60_000));
        Instant to = start.plusMillis((long) (toMinute * 60_000));
        String produced = "timestamp >= '" + from + "' AND timestamp < '" + to + "'";
        String storedThen = "created_at >= '" + from + "' AND created_at < '" + to + "'";
        double seconds = Math.max(1, (toMinute - fromMinute) * 60);
        String p99 = "-";
        long events = 0;
        try (var c = p.db(); var st = c.createStatement(); ResultSet rs = st.executeQuery(
                "SELECT (SELECT count(*) FROM metrics WHERE " + storedThen + "), (SELECT percentile_cont(0.99) WITHIN GROUP"
                        + " (ORDER BY extract(epoch FROM created_at - timestamp) * 1000) FROM metrics WHERE " + produced + ")")) {
            rs.next();
            events = rs.getLong(1);
            p99 = String.format("%.0f ms", rs.getDouble(2));
        }
        StringBuilder rss = new StringBuilder();
        StringBuilder heap = new StringBuilder();
        for (int i = 0; i < 2; i++) {
            final int instance = i;
            Memory last = memory.stream().filter(m -> m.instance() == instance && m.minute() < toMinute + 0.01 && m.heapAfterGcMb() > 0)
                    .reduce((a, b) -> b).orElse(new Memory(0, i, 0, 0));
            rss.append(i == 0 ? "" : " / ").append(last.rssMb());
            heap.append(i == 0 ? "" : " / ").append(last.heapAfterGcMb());
        }
        System.out.printf("| %.0f-%.0f | %,.0f | %s | %s | %s | %s | %s |%n", fromMinute, toMinute, events / seconds, p99, rss, heap, lag,
                faults.isEmpty() ? "-" : faults.trim());
    }
}
