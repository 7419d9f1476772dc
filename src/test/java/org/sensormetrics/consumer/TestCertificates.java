package org.sensormetrics.consumer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Certificates made with openssl for the secured tests: a CA; a server certificate it signs for 127.0.0.1 and
 * localhost; one for another host name; a client certificate for mutual TLS; and a second CA that signed none of
 * them (what a service trusting the wrong CA sees). Each key and certificate as the clients want it: PEM files,
 * Kafka's PEM key stores (key and chain in one file), pgjdbc's PKCS-8 DER key, and PKCS12.
 */
final class TestCertificates {

    static final String PKCS12_PASSWORD = "keystore-secret-7";

    final Path dir;

    private TestCertificates(Path dir) {
        this.dir = dir;
    }

    /** Makes every file under dir (readable by all: the PostgreSQL server may run as another user). */
    static TestCertificates create(Path dir) throws IOException, InterruptedException {
        dir = Files.createDirectories(dir.toAbsolutePath());
        TestCertificates c = new TestCertificates(dir);
        c.ca("ca");
        c.ca("other-ca");
        c.signed("server", "ca", "sensor-metrics test server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
        c.signed("elsewhere", "ca", "db.example.com", "subjectAltName=DNS:db.example.com");
        c.signed("client", "ca", "sensor-metrics-consumer", "extendedKeyUsage=clientAuth");
        try (var files = Files.list(dir)) {
            files.forEach(f -> f.toFile().setReadable(true, false));
        }
        return c;
    }

    Path ca() {
        return dir.resolve("ca.pem");
    }

    Path otherCa() {
        return dir.resolve("other-ca.pem");
    }

    /** name.pem (certificate), name.key (PKCS-8 PEM key). */
    Path cert(String name) {
        return dir.resolve(name + ".pem");
    }

    Path key(String name) {
        return dir.resolve(name + ".key");
    }

    /** Key and certificate chain in one PEM file: Kafka's PEM key store. */
    Path pemKeystore(String name) {
        return dir.resolve(name + "-keystore.pem");
    }

    /** The key as PKCS-8 DER, pgjdbc's format. */
    Path pk8(String name) {
        return dir.resolve(name + ".pk8");
    }

    /** Key and chain as PKCS12, password {@link #PKCS12_PASSWORD}. */
    Path pkcs12(String name) {
        return dir.resolve(name + ".p12");
    }

    private void ca(String name) throws IOException, InterruptedException {
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=" + name + " of the sensor-metrics tests",
                "-keyout", key(name).toString(), "-out", cert(name).toString());
    }

    private void signed(String name, String ca, String commonName, String extension) throws IOException, InterruptedException {
        Path csr = dir.resolve(name + ".csr");
        Path ext = dir.resolve(name + ".ext");
        Files.writeString(ext, extension + "\n");
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + commonName, "-keyout", key(name).toString(), "-out", csr.toString());
        openssl("x509", "-req", "-in", csr.toString(), "-CA", cert(ca).toString(), "-CAkey", key(ca).toString(), "-CAcreateserial",
                "-days", "30", "-extfile", ext.toString(), "-out", cert(name).toString());
        Files.writeString(pemKeystore(name), Files.readString(key(name)) + Files.readString(cert(name)) + Files.readString(cert(ca)));
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", key(name).toString(), "-outform", "DER", "-out", pk8(name).toString());
        openssl("pkcs12", "-export", "-in", cert(name).toString(), "-inkey", key(name).toString(), "-certfile", cert(ca).toString(),
                "-passout", "pass:" + PKCS12_PASSWORD, "-out", pkcs12(name).toString());
    }

    private void openssl(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("openssl"));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).directory(dir.toFile()).start();
        String output = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("openssl failed: " + String.join(" ", command) + "\n" + output);
        }
    }
}
