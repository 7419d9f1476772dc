package org.sensormetrics.consumer;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One row of a batch for store-batch.sql: a reading, or a record kept in rejected_events with its reason.
 *
 * @param reasonCode the fixed word that labels the rejected records metric; not sent to the database
 * @param extra      the values of the contract's other fields (sensor-reading.schema.json), by column; null when
 *                   the reading has none
 */
public record BatchRow(String kafkaTopic, Integer kafkaPartition, Long kafkaOffset, String recordKey,
        String eventId, String sensorId, Long eventTimeUs, Double value,
        String payload, String payloadEncoding, String reason, String reasonCode, Map<String, Object> extra) {

    /** The parameters of store-batch.sql that are not a contract column: an extra column may not take these names. */
    static final List<String> STATEMENT_PARAMETERS = List.of("kafka_partition", "kafka_offset", "event_time_us",
            "rejected_kafka_topic", "rejected_kafka_partition", "rejected_kafka_offset", "rejected_record_key",
            "rejected_payload", "rejected_payload_encoding", "rejected_reason");

    static BatchRow reading(String topic, Integer partition, Long offset, String eventId, String sensorId, long eventTimeUs, double value,
            Map<String, Object> extra) {
        return new BatchRow(topic, partition, offset, null, eventId, sensorId, eventTimeUs, value, null, null, null, null, extra);
    }

    static BatchRow rejected(String topic, Integer partition, Long offset, String recordKey, String payload, String payloadEncoding,
            String reason, String reasonCode) {
        return new BatchRow(topic, partition, offset, recordKey, null, null, null, null, payload, payloadEncoding, reason, reasonCode, null);
    }

    /**
     * The batch as store-batch.sql's named parameters: one array per column, typed (int[], long[], double[], String[]),
     * which the JDBC driver sends as PostgreSQL arrays for the statement to UNNEST. The readings' columns (event_id,
     * sensor_id, event_time_us, value, kafka_partition, kafka_offset and one per extra contract column) have one
     * element per reading, the rejected_* ones one per rejected record. Typed arrays cost PostgreSQL a quarter less
     * than one JSON array of row objects (docs/decisions.md 19).
     *
     * @param extraColumns the contract's columns beyond the core four, with the Java type of their values
     */
    static Map<String, Object> columns(List<BatchRow> rows, Map<String, Class<?>> extraColumns) {
        List<BatchRow> readings = new ArrayList<>(rows.size());
        List<BatchRow> rejected = new ArrayList<>();
        for (BatchRow row : rows) {
            (row.reason() == null ? readings : rejected).add(row);
        }
        int n = readings.size();
        int[] partitions = new int[n];
        long[] offsets = new long[n];
        String[] eventIds = new String[n];
        String[] sensorIds = new String[n];
        long[] times = new long[n];
        double[] values = new double[n];
        Map<String, Object[]> extras = new LinkedHashMap<>();
        extraColumns.forEach((column, type) -> extras.put(column, (Object[]) Array.newInstance(type, n)));
        for (int i = 0; i < n; i++) {
            BatchRow r = readings.get(i);
            partitions[i] = r.kafkaPartition();
            offsets[i] = r.kafkaOffset();
            eventIds[i] = r.eventId();
            sensorIds[i] = r.sensorId();
            times[i] = r.eventTimeUs();
            values[i] = r.value();
            if (r.extra() != null) {
                for (Map.Entry<String, Object> e : r.extra().entrySet()) {
                    extras.get(e.getKey())[i] = e.getValue();
                }
            }
        }
        Map<String, Object> columns = new LinkedHashMap<>();
        columns.put("kafka_partition", partitions);
        columns.put("kafka_offset", offsets);
        columns.put("event_id", eventIds);
        columns.put("sensor_id", sensorIds);
        columns.put("event_time_us", times);
        columns.put("value", values);
        columns.putAll(extras);
        int m = rejected.size();
        String[] topics = new String[m];
        int[] rejectedPartitions = new int[m];
        long[] rejectedOffsets = new long[m];
        String[] keys = new String[m];
        String[] payloads = new String[m];
        String[] encodings = new String[m];
        String[] reasons = new String[m];
        for (int i = 0; i < m; i++) {
            BatchRow r = rejected.get(i);
            topics[i] = r.kafkaTopic();
            rejectedPartitions[i] = r.kafkaPartition();
            rejectedOffsets[i] = r.kafkaOffset();
            keys[i] = r.recordKey();
            payloads[i] = r.payload();
            encodings[i] = r.payloadEncoding();
            reasons[i] = r.reason();
        }
        columns.put("rejected_kafka_topic", topics);
        columns.put("rejected_kafka_partition", rejectedPartitions);
        columns.put("rejected_kafka_offset", rejectedOffsets);
        columns.put("rejected_record_key", keys);
        columns.put("rejected_payload", payloads);
        columns.put("rejected_payload_encoding", encodings);
        columns.put("rejected_reason", reasons);
        return columns;
    }
}
