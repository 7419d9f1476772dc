package org.sensormetrics.consumer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * CPU seconds used so far by the service (and by its threads, grouped by what they do), by PostgreSQL (the sessions on the service's database apart from the rest: autovacuum,
 * checkpointer, WAL writer, and workers that have exited, which the postmaster's children times hold), by this
 * JVM (the broker and the lag polling), and by the whole machine (busy and idle).
 */
record CpuTimes(double[] instances, Map<String, Double> threads, double sessions, double postgresBackground, double benchmark,
        double busy, double idle) {

    private static final double TICK = 100.0; // USER_HZ on Linux
    /**
     * The service's threads by the first characters of their names (Linux keeps 15): the poll threads are Camel's,
     * the Kafka client's heartbeat thread is "kafka-coordinator-heartbeat-thread", the JIT's and the collector's are the
     * JVM's own.
     */
    private static final List<Map.Entry<String, String>> THREAD_GROUPS = List.of(Map.entry("Camel (", "Camel (poll)"),
            Map.entry("kafka-", "Kafka client"), Map.entry("C1 Compi", "JIT"), Map.entry("C2 Compi", "JIT"),
            Map.entry("GC Thread", "GC"), Map.entry("G1 ", "GC"), Map.entry("VM Thread", "GC"));

    static CpuTimes read(long[] servicePids, String database) throws java.io.IOException {
        double sessions = 0;
        double background = 0;
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path proc : (Iterable<Path>) procs::iterator) {
                String name = proc.getFileName().toString();
                if (name.chars().allMatch(Character::isDigit)) {
                    String stat = readQuietly(proc.resolve("stat"));
                    if (stat.contains("(postgres)")) {
                        String title = readQuietly(proc.resolve("cmdline"));
                        if (title.startsWith("postgres: ") && title.contains(" " + database + " ")) {
                            sessions += seconds(stat, 11, 12);
                        } else {
                            background += seconds(stat, 11, 12, 13, 14); // the postmaster's children included
                        }
                    }
                }
            }
        }
        String[] cpu = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
        double busy = 0;
        for (int i = 1; i < cpu.length; i++) {
            if (i != 4 && i != 5) { // idle, iowait
                busy += Long.parseLong(cpu[i]) / TICK;
            }
        }
        double idle = (Long.parseLong(cpu[4]) + Long.parseLong(cpu[5])) / TICK;
        Map<String, Double> threads = new TreeMap<>();
        for (long pid : servicePids) {
            threadSeconds(pid, threads);
        }
        return new CpuTimes(java.util.Arrays.stream(servicePids).mapToDouble(CpuTimes::processSeconds).toArray(), threads, sessions,
                background, processSeconds(ProcessHandle.current().pid()), busy, idle);
    }

    /** Adds each live thread's CPU seconds to its group's ("other" for the rest), keyed by group and thread id. */
    private static void threadSeconds(long pid, Map<String, Double> threads) throws java.io.IOException {
        Path tasks = Path.of("/proc/" + pid + "/task");
        if (!Files.isDirectory(tasks)) {
            return;
        }
        try (var list = Files.list(tasks)) {
            for (Path task : (Iterable<Path>) list::iterator) {
                String stat = readQuietly(task.resolve("stat"));
                if (stat.isEmpty()) {
                    continue;
                }
                String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                String group = THREAD_GROUPS.stream().filter(e -> name.startsWith(e.getKey()))
                        .map(Map.Entry::getValue).findFirst().orElse("other");
                threads.put(group + "/" + pid + "/" + task.getFileName(), seconds(stat, 11, 12));
            }
        }
    }

    static double processSeconds(long pid) {
        return seconds(readQuietly(Path.of("/proc/" + pid + "/stat")), 11, 12);
    }

    /** The sum of the given time fields of a /proc/PID/stat line, counted from the field after the state. */
    private static double seconds(String stat, int... fields) {
        if (stat.isEmpty()) {
            return 0;
        }
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        long ticks = 0;
        for (int field : fields) {
            ticks += Long.parseLong(f[field]);
        }
        return ticks / TICK;
    }

    private static String readQuietly(Path file) {
        try {
            return Files.readString(file);
        } catch (java.io.IOException processGone) {
            return "";
        }
    }

    CpuTimes minus(CpuTimes start) {
        double[] used = new double[instances.length];
        for (int i = 0; i < used.length; i++) {
            used[i] = instances[i] - start.instances[i];
        }
        // a thread started since counts from zero; one that ended since is missing from both, its time in "ended"
        Map<String, Double> byGroup = new TreeMap<>();
        threads.forEach((thread, seconds) -> byGroup.merge(thread.substring(0, thread.indexOf('/')),
                seconds - start.threads.getOrDefault(thread, 0.0), Double::sum));
        byGroup.put("ended", java.util.Arrays.stream(used).sum() - byGroup.values().stream().mapToDouble(Double::doubleValue).sum());
        return new CpuTimes(used, byGroup, sessions - start.sessions, postgresBackground - start.postgresBackground,
                benchmark - start.benchmark, busy - start.busy, idle - start.idle);
    }

    /** Microseconds per event of the service processes together and of their PostgreSQL sessions. */
    String perEvent(long events) {
        double service = java.util.Arrays.stream(instances).sum();
        return String.format("service %.1f µs, its PostgreSQL sessions %.1f µs", service * 1e6 / events, sessions * 1e6 / events);
    }

    /** Of a difference ({@link #minus}): the service's microseconds per event by group of threads. */
    String serviceThreadsPerEvent(long events) {
        StringBuilder text = new StringBuilder();
        threads.forEach((group, seconds) -> text.append(text.length() == 0 ? "" : ", ")
                .append(String.format("%s %.1f µs", group, seconds * 1e6 / events)));
        return text.toString();
    }

    @Override
    public String toString() {
        String postgres = sessions + postgresBackground == 0 ? "PostgreSQL not on this machine"
                : String.format("its PostgreSQL sessions %.1f s, PostgreSQL background %.1f s", sessions, postgresBackground);
        double service = java.util.Arrays.stream(instances).sum();
        String each = instances.length == 1 ? "" : " (" + String.join(" / ",
                java.util.Arrays.stream(instances).mapToObj(v -> String.format("%.1f", v)).toList()) + " s)";
        return String.format("service %.1f s%s, %s, benchmark JVM (with the embedded broker) %.1f s, other %.1f s, idle %.1f s",
                service, each, postgres, benchmark, busy - service - sessions - postgresBackground - benchmark, idle);
    }
}
