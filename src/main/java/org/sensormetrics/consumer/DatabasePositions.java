package org.sensormetrics.consumer;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

import javax.sql.DataSource;

import io.micrometer.core.instrument.Counter;
import org.apache.camel.CamelContext;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The position in the database: per Kafka partition, the offset after the last record a committed batch stored
 * (table kafka_positions, written in each batch's transaction by routes/ingest/record-positions-and-stale-minutes.sql).
 * The ingest consumers read it when they are given partitions, and after a batch found the database behind what they
 * had stored (SQLSTATE {@value #LOST}): a failover to a lagging replica or a restore from a backup lost committed
 * transactions, and Kafka's committed offsets point past them.
 */
final class DatabasePositions {

    /** The SQLSTATE sensor_metrics_record_positions (routes/storage/schema.sql) fails a batch with. */
    static final String LOST = "SMPOS";
    /** The counter of records the database lost that Kafka no longer has; also a detail of the readiness check "ingest". */
    static final String UNRECOVERABLE = "sensor.metrics.records.unrecoverable";
    private static final Logger LOG = LoggerFactory.getLogger(DatabasePositions.class);
    private static final String UNDEFINED_TABLE = "42P01";

    private final CamelContext context;
    private volatile DataSource dataSource;

    DatabasePositions(CamelContext context) {
        this.context = context;
    }

    /** The stored position of each of the partitions the database has one for. */
    Map<TopicPartition, Long> read(Collection<TopicPartition> partitions) throws SQLException {
        Map<TopicPartition, Long> positions = new HashMap<>();
        if (partitions.isEmpty()) {
            return positions;
        }
        if (dataSource == null) {
            dataSource = context.getRegistry().mandatoryFindSingleByType(DataSource.class);
        }
        try (Connection c = dataSource.getConnection();
                PreparedStatement st = c.prepareStatement(
                        "SELECT topic, kafka_partition, next_offset FROM kafka_positions WHERE topic = ANY (?) AND kafka_partition = ANY (?)")) {
            st.setArray(1, c.createArrayOf("text", partitions.stream().map(TopicPartition::topic).distinct().toArray()));
            st.setArray(2, c.createArrayOf("integer", partitions.stream().map(TopicPartition::partition).distinct().toArray()));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    TopicPartition tp = new TopicPartition(rs.getString(1), rs.getInt(2));
                    if (partitions.contains(tp)) {
                        positions.put(tp, rs.getLong(3));
                    }
                }
            }
        } catch (SQLException e) {
            if (!UNDEFINED_TABLE.equals(e.getSQLState())) {
                throw e;
            }
            // the reference schema's database, which keeps no positions (docs/reliability.md)
            LOG.debug("No kafka_positions table: {}", e.getMessage());
        }
        return positions;
    }

    /** Records read again because the database had lost them. */
    void readAgain(long records) {
        counter("sensor.metrics.records.read.again", "Records read again from Kafka because the database lost them (failover, restore)")
                .increment(records);
    }

    /** Records the database lost that Kafka no longer has. */
    void unrecoverable(long records) {
        counter(UNRECOVERABLE, "Records the database lost and Kafka no longer has (retention): gone")
                .increment(records);
    }

    private Counter counter(String name, String description) {
        return Counter.builder(name).description(description).register(IngestProgress.meterRegistry(context));
    }
}
