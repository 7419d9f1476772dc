package org.sensormetrics.consumer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.apache.camel.Component;
import org.apache.camel.component.kafka.KafkaComponent;
import org.apache.camel.component.kafka.KafkaConfiguration;
import org.apache.camel.spi.ComponentCustomizer;

/**
 * How every Kafka client of the process reaches the broker: the security protocol, SASL and TLS settings of
 * KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* (application.properties), set on Camel's kafka component
 * when it is created. Every kafka endpoint copies the component's settings, so the ingest consumers, the
 * static members' admin calls (which take the consumers' settings), the lag monitor's admin client (which takes
 * the component's) and the replay tool's producer all connect the same way.
 *
 * <p>Java only for what properties cannot say: the JAAS line is built from the user name and password with
 * its quoting (a password may hold {@code "} or {@code \}), blank settings are left out instead of reaching
 * Kafka as empty values (an empty trust store password next to a PEM file is an error there), a store's type
 * follows its file name when not given, and a wrong combination fails at startup with the setting's name
 * instead of as a disconnect in every poll. No value set here is ever logged: Kafka prints passwords and the
 * JAAS line as [hidden].
 */
public final class KafkaSecurity implements ComponentCustomizer {

    private static final List<String> PROTOCOLS = List.of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL");
    private static final Map<String, String> LOGIN_MODULES = Map.of(
            "PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule",
            "SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule",
            "SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule");

    private String securityProtocol = "PLAINTEXT";
    private String saslMechanism = "";
    private String saslUsername = "";
    private String saslPassword = "";
    private String saslJaasConfig = "";
    private String sslTruststoreLocation = "";
    private String sslTruststorePassword = "";
    private String sslTruststoreType = "";
    private String sslKeystoreLocation = "";
    private String sslKeystorePassword = "";
    private String sslKeystoreType = "";
    private String sslKeyPassword = "";

    public void setSecurityProtocol(String securityProtocol) {
        this.securityProtocol = trim(securityProtocol).toUpperCase(Locale.ROOT);
    }

    public void setSaslMechanism(String saslMechanism) {
        this.saslMechanism = trim(saslMechanism).toUpperCase(Locale.ROOT);
    }

    public void setSaslUsername(String saslUsername) {
        this.saslUsername = trim(saslUsername);
    }

    public void setSaslPassword(String saslPassword) {
        this.saslPassword = saslPassword == null ? "" : saslPassword;
    }

    public void setSaslJaasConfig(String saslJaasConfig) {
        this.saslJaasConfig = trim(saslJaasConfig);
    }

    public void setSslTruststoreLocation(String sslTruststoreLocation) {
        this.sslTruststoreLocation = trim(sslTruststoreLocation);
    }

    public void setSslTruststorePassword(String sslTruststorePassword) {
        this.sslTruststorePassword = sslTruststorePassword == null ? "" : sslTruststorePassword;
    }

    public void setSslTruststoreType(String sslTruststoreType) {
        this.sslTruststoreType = trim(sslTruststoreType).toUpperCase(Locale.ROOT);
    }

    public void setSslKeystoreLocation(String sslKeystoreLocation) {
        this.sslKeystoreLocation = trim(sslKeystoreLocation);
    }

    public void setSslKeystorePassword(String sslKeystorePassword) {
        this.sslKeystorePassword = sslKeystorePassword == null ? "" : sslKeystorePassword;
    }

    public void setSslKeystoreType(String sslKeystoreType) {
        this.sslKeystoreType = trim(sslKeystoreType).toUpperCase(Locale.ROOT);
    }

    public void setSslKeyPassword(String sslKeyPassword) {
        this.sslKeyPassword = sslKeyPassword == null ? "" : sslKeyPassword;
    }

    @Override
    public boolean isEnabled(String name, Component target) {
        return target instanceof KafkaComponent;
    }

    @Override
    public void configure(String name, Component target) {
        KafkaConfiguration config = ((KafkaComponent) target).getConfiguration();
        if (!PROTOCOLS.contains(securityProtocol)) {
            throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL=" + securityProtocol + ": must be one of " + PROTOCOLS);
        }
        if (securityProtocol.equals("PLAINTEXT")) {
            return; // Kafka's default; the component keeps whatever camel.component.kafka.* gave it
        }
        config.setSecurityProtocol(securityProtocol);
        if (securityProtocol.startsWith("SASL_")) {
            String mechanism = saslMechanism.isEmpty() ? "PLAIN" : saslMechanism;
            config.setSaslMechanism(mechanism);
            config.setSaslJaasConfig(saslJaasConfig.isEmpty() ? jaasLine(mechanism) : saslJaasConfig);
        }
        if (securityProtocol.endsWith("SSL")) {
            if (!sslTruststoreLocation.isEmpty()) {
                config.setSslTruststoreLocation(readable("KAFKA_SSL_TRUSTSTORE_LOCATION", sslTruststoreLocation));
                config.setSslTruststoreType(storeType(sslTruststoreType, sslTruststoreLocation));
                config.setSslTruststorePassword(blankAsNull(sslTruststorePassword));
            }
            if (!sslKeystoreLocation.isEmpty()) {
                config.setSslKeystoreLocation(readable("KAFKA_SSL_KEYSTORE_LOCATION", sslKeystoreLocation));
                config.setSslKeystoreType(storeType(sslKeystoreType, sslKeystoreLocation));
                config.setSslKeystorePassword(blankAsNull(sslKeystorePassword));
                config.setSslKeyPassword(blankAsNull(sslKeyPassword));
            }
        }
    }

    private String jaasLine(String mechanism) {
        if (saslUsername.isEmpty() || saslPassword.isEmpty()) {
            throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL=" + securityProtocol
                    + " needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_JAAS_CONFIG)");
        }
        return jaasLine(mechanism, saslUsername, saslPassword);
    }

    /** The JAAS line of a user name and password, for the mechanisms that take them. */
    static String jaasLine(String mechanism, String username, String password) {
        String module = LOGIN_MODULES.get(mechanism);
        if (module == null) {
            throw new IllegalArgumentException("KAFKA_SASL_MECHANISM=" + mechanism + ": a user name and password work with "
                    + LOGIN_MODULES.keySet().stream().sorted().toList() + "; for another mechanism set KAFKA_SASL_JAAS_CONFIG");
        }
        return module + " required username=\"" + quoted(username) + "\" password=\"" + quoted(password) + "\";";
    }

    /** Kafka reads the JAAS line's values as Java-style quoted strings. */
    private static String quoted(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    /** The given type, else the one its file name says, else Kafka's default (JKS). */
    private static String storeType(String given, String location) {
        if (!given.isEmpty()) {
            return given;
        }
        String file = location.toLowerCase(Locale.ROOT);
        if (file.endsWith(".pem") || file.endsWith(".crt")) {
            return "PEM";
        }
        return file.endsWith(".p12") || file.endsWith(".pfx") ? "PKCS12" : "JKS";
    }

    private static String readable(String setting, String location) {
        if (!Files.isReadable(Path.of(location))) {
            throw new IllegalArgumentException(setting + "=" + location + ": no such file, or not readable by this process");
        }
        return location;
    }

    private static String blankAsNull(String value) {
        return value.isEmpty() ? null : value;
    }

    private static String trim(String value) {
        return value == null ? "" : value.trim();
    }
}
