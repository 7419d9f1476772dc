package org.sensormetrics.consumer;

import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * Breaks the consumer, the database and the broker on purpose while the packaged jar runs as separate
 * processes, then counts: every valid event exactly once in metrics and processed_events, every invalid
 * record once in rejected_events, each sensor's rows in offset order, and lag 0.
 *
 * <p>Run all scenarios: {@code mvn -q -DskipTests package exec:java -Drun.class=org.sensormetrics.consumer.FaultSuite}
 * (FAULT_EVENTS per scenario, default 200,000; FAULT_SCENARIOS=kill9,pg-stop,... to pick). Exits 1 on
 * any violation. {@code FaultSuiteIT} runs the same scenarios in {@code mvn verify}.
 */
public final class FaultSuite {

    record Result(String scenario, long produced, long valid, long stored, long rejected, long lost, long duplicated,
                  int restarts, long rewinds, int rebalances, long revoked, long readAgain, double seconds, List<String> violations) {
    }

    /** One scenario's running parts: its topic/database, its service processes, its load. */
    static final class Run {
        final Pipeline p;
        final String name;
        final List<ServiceProcess> services = new ArrayList<>();
        final Random random = new Random(7);
        final Map<String, String> env = new LinkedHashMap<>();
        /** What a fault itself found wrong, beside the counts check() makes. */
        final List<String> violations = new ArrayList<>();
        int restarts;
        int started;
        /** The group's generation, and the partitions its members had revoked, when the fault began: counted from there. */
        int generationAtFault;
        long revokedAtFault;

        /** The three-node cluster the scenario runs on, or null for the JVM's embedded broker. */
        final KafkaCluster cluster;
        /** PostgreSQL servers the fault started (a replica), stopped with the run. */
        final List<EmbeddedPostgres> servers = new ArrayList<>();

        Run(String name) throws Exception {
            this(name, null, null);
        }

        /** On the cluster and PostgreSQL given (null: the JVM's embedded broker and server). */
        Run(String name, KafkaCluster cluster, EmbeddedPostgres pg) throws Exception {
            this.name = name;
            this.cluster = cluster;
            this.p = Pipeline.scenario(name.replace('-', '_'), 12, cluster == null ? null : cluster.broker(), pg);
            env.put("CONSUMER_RETRY_MAX_MS", "4000"); // outages here last seconds, not hours
            try (var old = java.nio.file.Files.newDirectoryStream(java.nio.file.Files.createDirectories(Path.of("target/faults")),
                    name + "-*.log")) {
                for (Path log : old) {
                    java.nio.file.Files.delete(log); // rewinds are counted from this run's logs only
                }
            }
        }

        /** Static members' names, kept by the processes that hold them (a StatefulSet's pod names). */
        final Map<ServiceProcess, String> memberNames = new java.util.HashMap<>();

        ServiceProcess start() throws Exception {
            Map<String, String> processEnv = new LinkedHashMap<>(env);
            String member = null;
            memberNames.keySet().retainAll(services);
            if (env.containsKey(STATIC_MEMBERS)) {
                // a replacement takes the name of the process it replaces, as a StatefulSet's new pod does
                for (int i = 0; member == null || memberNames.containsValue(member); i++) {
                    member = name + "-" + i;
                }
                processEnv.put(STATIC_MEMBERS, member);
            }
            ServiceProcess s = ServiceProcess.start(p, log(started++), "256m", processEnv);
            services.add(s);
            if (member != null) {
                memberNames.put(s, member);
            }
            return s;
        }

        /** Until every poll thread of every process is a member and the group is stable; then its generation is kept. */
        void awaitSettledGroup(int members) throws Exception {
            p.awaitSettledGroup(members);
            generationAtFault = generation();
            revokedAtFault = revoked();
        }

        long revoked() throws java.io.IOException {
            return sumOverLogs(ServiceProcess::revokedPartitions);
        }

        /** A count read from each log of this scenario's processes, summed. */
        long sumOverLogs(LogCount count) throws java.io.IOException {
            long sum = 0;
            for (int i = 0; i < started; i++) {
                sum += count.of(log(i));
            }
            return sum;
        }

        /** The group's generation, from the coordinator's log lines. */
        int generation() throws java.io.IOException {
            return cluster == null ? EmbeddedKafka.generation(p.group) : cluster.generation(p.group);
        }

        /**
         * What the service does with a server in recovery: its URL's targetServerType=primary refuses to connect there,
         * and the pool's validation query (routes/jdbc-datasource.camel.yaml) fails on a connection that is there.
         */
        void checkStandbyRefused(EmbeddedPostgres standby) throws Exception {
            String url = standby.jdbcUrl(p.database);
            try (Connection c = java.sql.DriverManager.getConnection(url + (url.contains("?") ? "&" : "?") + "targetServerType=primary",
                    standby.user(), standby.password())) {
                violations.add("targetServerType=primary connected to a standby");
            } catch (java.sql.SQLException refused) {
                System.out.println(name + ": a connection to the standby with targetServerType=primary: " + refused.getMessage());
            }
            String validation = java.nio.file.Files.readAllLines(Path.of("routes/jdbc-datasource.camel.yaml")).stream()
                    .filter(l -> l.contains("validationQuery:")).findFirst().orElseThrow().replaceAll(".*validationQuery: *", "");
            try (Connection c = standby.connect(p.database); var st = c.createStatement()) {
                st.executeQuery(validation).close();
                violations.add("the pool's validation query passed on a standby");
            } catch (java.sql.SQLException dropped) {
                System.out.println(name + ": the pool's validation query on the standby: " + dropped.getMessage());
            }
        }

        /**
         * A streaming replica of the primary, and the service restarted with both in DB_HOSTS (primary first), as a
         * multi-host URL names a cluster's members.
         */
        EmbeddedPostgres replicaInDbHosts(EmbeddedPostgres primary) throws Exception {
            EmbeddedPostgres replica = primary.startReplica(Path.of("target/ha-postgres/" + name + "-replica"));
            servers.add(replica);
            env.put("DB_HOSTS", primary.host() + ":" + primary.port() + "," + replica.host() + ":" + replica.port());
            services.remove(0).stop();
            start();
            return replica;
        }

        /** Waits for a batch committed in the database after the given moment, and prints how long that took. */
        void awaitFirstBatchSince(long sinceNanos) throws InterruptedException {
            java.sql.Timestamp since = new java.sql.Timestamp(System.currentTimeMillis() - (System.nanoTime() - sinceNanos) / 1_000_000);
            Pipeline.await("a batch committed in the new database", Duration.ofMinutes(2), () -> Pipeline.safe(() ->
                    p.count("SELECT count(*) FROM metrics WHERE created_at > '" + since.toInstant() + "'") > 0));
            System.out.printf("%s: first batch committed %.1f s after the database took writes again%n", name,
                    (System.nanoTime() - sinceNanos) / 1e9);
        }

        void awaitSchema() throws InterruptedException {
            Pipeline.await("the service's schema", Duration.ofMinutes(2),
                    () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM pg_class WHERE relname = 'rejected_events'") == 1));
        }

        /**
         * Polls the first service's readiness until the named check is DOWN (503), and returns that check's
         * message; records a violation when it does not happen within 15 s.
         */
        String awaitNotReady(String check) throws Exception {
            int port = services.get(0).httpPort();
            long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
            String last = "no answer";
            while (System.nanoTime() < deadline) {
                try {
                    var ready = Pipeline.get(port, "/observe/health/ready");
                    last = ready.getKey() + " " + ready.getValue();
                    var checks = new com.fasterxml.jackson.databind.ObjectMapper().readTree(ready.getValue()).get("checks");
                    for (var c : checks) {
                        if (ready.getKey() == 503 && check.equals(c.get("name").asText()) && "DOWN".equals(c.get("status").asText())) {
                            return c.path("message").asText();
                        }
                    }
                } catch (java.io.IOException e) {
                    last = e.toString();
                }
                Thread.sleep(250);
            }
            violations.add("readiness check " + check + " not DOWN within 15 s (last: " + last + ")");
            return last;
        }

        Path log(int n) {
            return Path.of("target/faults", name + "-" + n + ".log");
        }

        void sleep(long min, long max) throws InterruptedException {
            Thread.sleep(min + (long) (random.nextDouble() * (max - min)));
        }
    }

    interface LogCount {
        long of(Path log) throws java.io.IOException;
    }

    interface Fault {
        void inject(Run run) throws Exception;
    }

    /**
     * A scenario: its load (share of duplicates and invalid records), its services, its fault, and whether it runs on
     * the three-node cluster instead of the embedded broker.
     */
    record Scenario(String name, double duplicates, double invalid, int consumers, Map<String, String> env, Fault fault,
                    boolean onCluster, boolean ownPostgres) {
        Scenario(String name, double duplicates, double invalid, int consumers, Map<String, String> env, Fault fault) {
            this(name, duplicates, invalid, consumers, env, fault, false, false);
        }

        Scenario(String name, double duplicates, double invalid, int consumers, Map<String, String> env, Fault fault, boolean onCluster) {
            this(name, duplicates, invalid, consumers, env, fault, onCluster, false);
        }
    }

    /**
     * In a scenario's env, this key (with any value) gives every process a static group membership
     * (KAFKA_GROUP_INSTANCE_ID) of its own, reused by the process that replaces it.
     */
    static final String STATIC_MEMBERS = "KAFKA_GROUP_INSTANCE_ID";
    /** Poll threads per process: CONSUMER_THREADS's default. */
    static final int THREADS = 2;

    static final List<Scenario> SCENARIOS = withStaticMembers(List.of(
            new Scenario("kill9", 0, 0, 1, Map.of(), run -> {
                for (int i = 0; i < 5; i++) {
                    run.sleep(1500, 3500);
                    run.services.remove(0).kill9();
                    run.start();
                    run.restarts++;
                }
            }),
            new Scenario("pg-stop", 0, 0, 1, Map.of(), run -> {
                run.sleep(2000, 3000);
                Pipeline.postgres().stop();
                long stoppedAt = System.nanoTime();
                String why = run.awaitNotReady("database");
                System.out.println("pg-stop: readiness while PostgreSQL is down: " + why);
                Thread.sleep(Math.max(0, 20_000 - (System.nanoTime() - stoppedAt) / 1_000_000));
                Pipeline.postgres().restart();
            }),
            // two instances in a settled group through a minute without PostgreSQL: failed batches are retried by
            // consumers that keep their membership and partitions, so the group does not rebalance at all
            new Scenario("pg-outage", 0, 0, 2, Map.of(), run -> {
                Pipeline.postgres().stop();
                Thread.sleep(60_000);
                Pipeline.postgres().restart();
                Pipeline.await("the events stored after the outage", Duration.ofMinutes(2),
                        () -> Pipeline.safe(() -> run.p.lag() == 0));
                int rebalances = run.generation() - run.generationAtFault;
                if (rebalances != 0) {
                    run.violations.add(rebalances + " rebalances during a database outage");
                }
            }),
            new Scenario("pg-kill9", 0, 0, 1, Map.of(), run -> {
                run.sleep(2000, 3000);
                Pipeline.postgres().kill();
                Thread.sleep(5_000);
                Pipeline.postgres().restart();
            }),
            // the statement timeout is the server's, so only the driver's socket timeout ends a wait on a server
            // that has stopped answering: the batch in flight must fail and be rewound, not hang. The server freezes
            // while a batch's COPY waits on it (for a lock this test holds), so that there is a batch in flight: between
            // batches the next one's borrow validates the pool's idle connections one after another, each until the
            // socket timeout, which can outlast the freeze and then succeed with nothing failed (CI saw that once).
            new Scenario("pg-freeze", 0, 0, 1, Map.of("DB_SOCKET_TIMEOUT_S", "5"), run -> {
                run.sleep(2000, 3000);
                try (Connection lock = run.p.db(); var st = lock.createStatement()) {
                    lock.setAutoCommit(false);
                    st.execute("LOCK TABLE metrics IN SHARE MODE"); // writers wait, readers do not
                    Pipeline.await("a batch's COPY waiting on the server", Duration.ofSeconds(30), () -> Pipeline.safe(() ->
                            run.p.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY metrics %'") > 0));
                    Pipeline.postgres().freeze(true);
                    try {
                        Thread.sleep(15_000);
                    } finally {
                        Pipeline.postgres().freeze(false);
                    }
                    lock.commit();
                }
                Pipeline.await("a batch failed by the socket timeout", Duration.ofSeconds(30),
                        () -> Pipeline.safe(() -> ServiceProcess.rewinds(run.log(0)) > 0));
            }),
            new Scenario("rebalance", 0, 0, 3, Map.of(), run -> {
                for (int i = 0; i < 6; i++) {
                    run.sleep(2000, 4000);
                    ServiceProcess leaving = run.services.remove(run.random.nextInt(run.services.size()));
                    if (i % 2 == 0) {
                        leaving.stop();
                    } else {
                        leaving.kill9();
                    }
                    run.start();
                    run.restarts++;
                }
            }),
            new Scenario("slow-db", 0, 0, 2, Map.of("KAFKA_MAX_POLL_INTERVAL_MS", "8000",
                    "KAFKA_SESSION_TIMEOUT", "10000", "KAFKA_HEARTBEAT_INTERVAL", "1000"), run -> {
                run.sleep(2000, 3000);
                // every batch waits for this lock longer than max.poll.interval.ms
                try (Connection c = run.p.db(); var st = c.createStatement()) {
                    c.setAutoCommit(false);
                    st.execute("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE");
                    Thread.sleep(15_000);
                    c.commit();
                }
            }),
            new Scenario("poison-flood", 0, 0.1, 2, Map.of(), run -> { }),
            new Scenario("duplicate-storm", 1.0, 0, 2, Map.of(), run -> { }),
            // three nodes, replication factor 3, min.insync.replicas 2: the node coordinating the group is killed
            // with -9 mid-stream, then one leading a partition (and not coordinating), each restarted after 10 s
            new Scenario("cluster-coordinator-kill9", 0, 0, 2, Map.of(), run -> {
                run.sleep(2000, 3000);
                killAndRestart(run.cluster, run.cluster.coordinatorOf(run.p.group));
            }, true),
            new Scenario("cluster-leader-kill9", 0, 0, 2, Map.of(), run -> {
                run.sleep(2000, 3000);
                int coordinator = run.cluster.coordinatorOf(run.p.group);
                int leader = coordinator;
                for (int partition = 0; leader == coordinator && partition < 12; partition++) {
                    leader = run.cluster.leaderOf(run.p.topic, partition);
                }
                killAndRestart(run.cluster, leader);
            }, true),
            // last, so no other scenario runs on a broker restarted inside this JVM
            new Scenario("broker-restart", 0, 0, 1, Map.of(), run -> {
                run.sleep(2000, 3000);
                Pipeline.kafka().restartBroker(10_000);
            }),
            // an asynchronous replica held behind while the primary commits batches, the primary killed and the replica
            // promoted, the service then pointed at it (restarted with its address, as a read-write endpoint moves):
            // the events only the old primary had are read again from the database's positions
            new Scenario("pg-async-failover", 0.01, 0.001, 1, Map.of(), run -> {
                EmbeddedPostgres primary = run.p.server();
                EmbeddedPostgres replica = primary.startReplica(Path.of("target/ha-postgres/pg-async-failover-replica"));
                run.servers.add(replica);
                run.checkStandbyRefused(replica);
                run.sleep(1500, 2500);
                replica.holdWalReceiver(true);
                run.sleep(2500, 3500);
                primary.kill();
                replica.holdWalReceiver(false);
                replica.promote();
                long promoted = System.nanoTime();
                run.p.moveTo(replica);
                run.services.remove(0).stop();
                run.start();
                run.restarts++;
                run.awaitFirstBatchSince(promoted);
            }, false, true),
            // a primary and a streaming replica, both in the service's DB_HOSTS from the start: mid-stream, a switchover
            // (the primary shut down cleanly, which sends its last WAL to the replica, the replica promoted, the old
            // primary restarted as its standby). The service finds the new primary by itself; nothing is lost
            new Scenario("pg-switchover", 0.01, 0.001, 1, Map.of(), run -> {
                EmbeddedPostgres primary = run.p.server();
                EmbeddedPostgres replica = run.replicaInDbHosts(primary);
                run.sleep(2000, 3000);
                primary.stop();
                replica.promote();
                long promoted = System.nanoTime();
                primary.restartAsStandbyOf(replica);
                run.p.moveTo(replica);
                run.awaitFirstBatchSince(promoted);
            }, false, true),
            // the same two servers: the primary's postmaster killed with -9 mid-stream and the replica promoted; what the
            // replica had not received when the primary died is read again
            new Scenario("pg-primary-kill9", 0.01, 0.001, 1, Map.of(), run -> {
                EmbeddedPostgres primary = run.p.server();
                EmbeddedPostgres replica = run.replicaInDbHosts(primary);
                run.sleep(2000, 3000);
                primary.kill();
                replica.promote();
                long promoted = System.nanoTime();
                run.p.moveTo(replica);
                run.awaitFirstBatchSince(promoted);
            }, false, true),
            // a base backup taken mid-stream, the database restored from it a few seconds later while the service runs:
            // everything stored after the backup is read again, found by the next batch's position check
            new Scenario("pg-restore", 0.01, 0.001, 1, Map.of(), run -> {
                EmbeddedPostgres pg = run.p.server();
                Path backup = Path.of("target/ha-postgres/pg-restore-backup");
                run.sleep(1500, 2500);
                pg.backup(backup);
                run.sleep(2500, 3500);
                pg.restoreFrom(backup);
                run.awaitFirstBatchSince(System.nanoTime());
            }, false, true)), "kill9", "rebalance", "slow-db");

    private static void killAndRestart(KafkaCluster cluster, int node) throws Exception {
        System.out.println("  kill -9 of Kafka node " + node);
        cluster.kill9(node);
        Thread.sleep(10_000);
        cluster.startNode(node);
        cluster.awaitNodes(KafkaCluster.NODES);
    }

    /** The scenarios, and after the ones named a copy of each, "-static", whose processes are static group members. */
    private static List<Scenario> withStaticMembers(List<Scenario> scenarios, String... named) {
        List<Scenario> all = new ArrayList<>();
        for (Scenario s : scenarios) {
            all.add(s);
            if (List.of(named).contains(s.name())) {
                Map<String, String> env = new LinkedHashMap<>(s.env());
                env.put(STATIC_MEMBERS, "");
                all.add(new Scenario(s.name() + "-static", s.duplicates(), s.invalid(), s.consumers(), env, s.fault(), s.onCluster(),
                        s.ownPostgres()));
            }
        }
        return List.copyOf(all);
    }

    private FaultSuite() {
    }

    public static void main(String[] args) {
        Pipeline.exitWith(() -> {
            long events = Long.parseLong(System.getenv().getOrDefault("FAULT_EVENTS", "200000"));
            int repeat = Integer.parseInt(System.getenv().getOrDefault("FAULT_REPEAT", "1"));
            List<Result> results = runAll(events, System.getenv().getOrDefault("FAULT_SCENARIOS", ""), repeat);
            print(results);
            return results.stream().allMatch(r -> r.violations().isEmpty());
        });
    }

    /** The scenarios named in only (all when blank), each repeat times in a row. */
    static List<Result> runAll(long events, String only, int repeat) throws Exception {
        Pipeline.startServices(Path.of("target/fault-postgres"));
        try {
            return runAll(events, only, repeat, new ArrayList<>());
        } finally {
            if (cluster != null) {
                cluster.close();
                cluster = null;
            }
        }
    }

    private static KafkaCluster cluster;

    private static List<Result> runAll(long events, String only, int repeat, List<Result> results) throws Exception {
        for (int round = 1; round <= repeat; round++) {
            String of = repeat > 1 ? " (" + round + " of " + repeat + ")" : "";
            if (only.isBlank() || List.of(only.split(",")).contains("start-at-end")) {
                System.out.println("Scenario start-at-end" + of + " ...");
                results.add(startAtEndWithFailedFirstBatch(events));
            }
            for (Scenario s : SCENARIOS) {
                if (only.isBlank() || List.of(only.split(",")).contains(s.name())) {
                    if (s.ownPostgres() && !EmbeddedPostgres.canBackUp()) {
                        // the README's test command on a machine with Maven Central's PostgreSQL only; .ci/run installs Debian's
                        System.out.println("Scenario " + s.name() + " skipped: it needs pg_basebackup, from Debian's postgresql");
                        continue;
                    }
                    System.out.println("Scenario " + s.name() + of + " ...");
                    results.add(run(s, events));
                    System.out.println("  " + results.get(results.size() - 1));
                }
            }
        }
        return results;
    }

    static Result run(Scenario s, long events) throws Exception {
        if (s.onCluster() && cluster == null) {
            System.out.println("  starting a Kafka cluster of " + KafkaCluster.NODES + " nodes");
            cluster = KafkaCluster.start(Path.of("target/kafka-cluster"));
        }
        if (!s.ownPostgres()) {
            return run(s, events, s.onCluster() ? cluster : null, null);
        }
        // a server of the scenario's own, which it fails over or restores
        try (EmbeddedPostgres own = EmbeddedPostgres.startFresh(Path.of("target/ha-postgres/" + s.name()))) {
            return run(s, events, s.onCluster() ? cluster : null, own);
        }
    }

    /** The named scenario on the Kafka cluster and PostgreSQL given (the secured tests' own). */
    static Result run(String scenario, long events, KafkaCluster on, EmbeddedPostgres pg) throws Exception {
        return run(SCENARIOS.stream().filter(s -> s.name().equals(scenario)).findFirst().orElseThrow(), events, on, pg);
    }

    private static Result run(Scenario s, long events, KafkaCluster on, EmbeddedPostgres pg) throws Exception {
        long start = System.nanoTime();
        Run run = new Run(s.name(), on, pg);
        try {
            run.env.putAll(s.env());
            for (int i = 0; i < s.consumers(); i++) {
                run.start();
            }
            run.awaitSchema();
            run.awaitSettledGroup(s.consumers() * THREADS);
            // produced over several seconds, so the faults land mid-stream
            var load = run.p.load(1000, events).withRate(20_000).withShares(s.duplicates(), s.invalid());
            Instant since = Instant.now().truncatedTo(ChronoUnit.MICROS);
            var producing = CompletableFuture.supplyAsync(() -> LoadGenerator.produce(load, run.p.kafkaClientProperties()));
            s.fault().inject(run);
            LoadGenerator.Summary sent = producing.get();
            return check(run, since, sent, start);
        } finally {
            for (ServiceProcess sp : run.services) {
                sp.stop();
            }
            try {
                run.p.close();
            } catch (Exception e) {
                // a server the fault left read-only or gone: the scenario's own result, or its exception, is what counts
                System.out.println("  " + run.name + ": could not drop the scenario's database: " + e.getMessage());
            }
            for (EmbeddedPostgres server : run.servers) {
                server.close();
            }
        }
    }

    /** KAFKA_FROM_BEGINNING=false: old records skipped, but a failed first batch is not. */
    static Result startAtEndWithFailedFirstBatch(long events) throws Exception {
        long start = System.nanoTime();
        Run run = new Run("start-at-end");
        try {
            LoadGenerator.produce(run.p.load(1000, events / 10).withSeed(1));
            Instant since = Instant.now().truncatedTo(ChronoUnit.MICROS);
            run.env.put("KAFKA_FROM_BEGINNING", "false");
            run.start();
            Pipeline.await("group positioned at the end", Duration.ofMinutes(1),
                    () -> Pipeline.safe(() -> run.p.lag() == 0 && !run.p.committedOffsets().isEmpty()));
            run.awaitSettledGroup(THREADS);
            run.p.refuseWrites(true);
            var load = run.p.load(1000, events).withRate(20_000).withSeed(2);
            var producing = CompletableFuture.supplyAsync(() -> LoadGenerator.produce(load));
            Pipeline.await("a failed first batch", Duration.ofMinutes(1), () -> Pipeline.safe(() -> ServiceProcess.rewinds(run.log(0)) > 0));
            Thread.sleep(3000);
            run.p.refuseWrites(false);
            Result r = check(run, since, producing.get(), start);
            long old = run.p.count("SELECT count(*) FROM metrics WHERE timestamp < '" + since + "'");
            if (old > 0) {
                r.violations().add(old + " records from before the group's start were read");
            }
            return r;
        } finally {
            for (ServiceProcess sp : run.services) {
                sp.stop();
            }
            run.p.close();
        }
    }

    /** Counts the events of the load that started producing at {@code since} (their timestamps are no earlier). */
    static Result check(Run run, Instant since, LoadGenerator.Summary sent, long startNanos) throws Exception {
        Pipeline p = run.p;
        List<String> violations = new ArrayList<>(run.violations);
        String storedSince = "SELECT count(DISTINCT event_id) FROM metrics WHERE timestamp >= '" + since + "'";
        try {
            Pipeline.await("every valid event stored", Duration.ofMinutes(5), () -> Pipeline.safe(() -> p.count(storedSince) >= sent.valid()));
            // once all is stored, the committed offsets must follow soon: a partition left behind is a stall
            p.awaitCaughtUp(Duration.ofSeconds(60));
        } catch (AssertionError e) {
            // what every thread of every process was doing, and where each partition stands, for whoever reads
            // the logs of a run that stalled
            for (ServiceProcess sp : run.services) {
                sp.printThreads();
            }
            System.out.print(run.name + ": " + e.getMessage() + "\n" + p.offsetReport());
            violations.add("stall: " + e.getMessage() + ", lag " + Pipeline.safeLag(p) + " (thread dumps in " + run.log(0).getParent() + ")");
        }
        long stored = p.count(storedSince);
        long rows = p.count("SELECT count(*) FROM metrics WHERE timestamp >= '" + since + "'");
        long claimed = p.count("SELECT count(*) FROM processed_events WHERE event_time >= '" + since + "'");
        long rejected = p.count("SELECT count(*) FROM rejected_events");
        long rejectedRecords = p.count("SELECT count(DISTINCT (kafka_topic, kafka_partition, kafka_offset)) FROM rejected_events");
        long lost = sent.valid() - stored;
        long duplicated = rows - stored + (rejected - rejectedRecords);
        if (lost != 0) {
            violations.add(lost + " valid events lost");
        }
        if (duplicated != 0) {
            violations.add(duplicated + " rows duplicated");
        }
        if (claimed != stored) {
            violations.add("processed_events " + claimed + " != metrics " + stored);
        }
        if (rejected != sent.invalid()) {
            violations.add("rejected_events " + rejected + " != invalid sent " + sent.invalid());
        }
        long outOfOrder = p.count("""
                SELECT count(*) FROM (
                  SELECT p.kafka_offset, lag(p.kafka_offset) OVER (PARTITION BY m.sensor_id ORDER BY m.id) AS previous
                  FROM metrics m JOIN processed_events p USING (event_id)) rows
                WHERE previous > kafka_offset""");
        if (outOfOrder != 0) {
            violations.add(outOfOrder + " rows out of offset order");
        }
        if (run.env.containsKey(STATIC_MEMBERS)) {
            // each poll thread of each process is a member of its own, named after the process's instance id;
            // a replacement started near the end may still be starting when the others have caught up
            List<String> expected = run.memberNames.values().stream()
                    .flatMap(n -> java.util.stream.IntStream.range(0, THREADS).mapToObj(t -> n + "-" + t)).sorted().toList();
            List<String> members = List.of();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!members.equals(expected) && System.nanoTime() < deadline) {
                members = p.members();
                Thread.sleep(members.equals(expected) ? 0 : 500);
            }
            if (!members.equals(expected)) {
                violations.add("group members " + members + " after 60 s, expected " + expected);
            }
        }
        return new Result(run.name, sent.records(), sent.valid(), stored, rejected, lost, duplicated, run.restarts,
                run.sumOverLogs(ServiceProcess::rewinds),
                run.generation() - run.generationAtFault, run.revoked() - run.revokedAtFault, run.sumOverLogs(ServiceProcess::readAgain),
                (System.nanoTime() - startNanos) / 1e9, violations);
    }

    static void print(List<Result> results) {
        System.out.println();
        System.out.println("| scenario | produced | valid | stored | rejected | lost | duplicated | restarts | rewinds | rebalances | partitions revoked | read again | wall time | violations |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for (Result r : results) {
            System.out.printf("| %s | %,d | %,d | %,d | %,d | %d | %d | %d | %d | %d | %d | %,d | %.0f s | %s |%n", r.scenario(), r.produced(),
                    r.valid(), r.stored(), r.rejected(), r.lost(), r.duplicated(), r.restarts(), r.rewinds(), r.rebalances(),
                    r.revoked(), r.readAgain(), r.seconds(),
                    r.violations().isEmpty() ? "none" : String.join("; ", r.violations()));
        }
    }

}
