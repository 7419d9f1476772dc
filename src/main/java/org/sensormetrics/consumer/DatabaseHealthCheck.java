package org.sensormetrics.consumer;

import java.sql.Connection;
import java.util.Map;

import javax.sql.DataSource;

import org.apache.camel.health.HealthCheckResultBuilder;
import org.apache.camel.impl.health.AbstractHealthCheck;

/**
 * Readiness check {@code database}: DOWN, with the driver's reason, while PostgreSQL cannot be reached
 * through the pool the routes use (the registry's one DataSource). Readiness only: restarting the
 * consumer does not bring a database back.
 */
public class DatabaseHealthCheck extends AbstractHealthCheck {

    private int timeoutSeconds = 2;

    public DatabaseHealthCheck() {
        super("sensor-metrics", "database");
    }

    public void setTimeoutSeconds(int timeoutSeconds) {
        this.timeoutSeconds = timeoutSeconds;
    }

    @Override
    public boolean isLiveness() {
        return false;
    }

    @Override
    protected void doCall(HealthCheckResultBuilder builder, Map<String, Object> options) {
        // looked up on each call: the DataSource may be declared after this bean (or by the runtime, on Camel K)
        DataSource dataSource = getCamelContext().getRegistry().findSingleByType(DataSource.class);
        if (dataSource == null) {
            builder.down().message("no DataSource in the registry");
            return;
        }
        try (Connection connection = dataSource.getConnection()) {
            if (connection.isValid(timeoutSeconds)) {
                builder.up();
            } else {
                builder.down().message("PostgreSQL did not answer within " + timeoutSeconds + " s");
            }
        } catch (Exception e) {
            builder.down().message("PostgreSQL unreachable: " + IngestProgress.rootMessage(e));
        }
    }
}
