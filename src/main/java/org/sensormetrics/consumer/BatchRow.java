package org.sensormetrics.consumer;

import java.util.Map;

import com.fasterxml.jackson.annotation.JsonAnyGetter;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * One element of the JSON array store-batch.sql reads (its column names, in snake case): a reading, or a record
 * kept in rejected_events with its reason. A record type rather than a map: writing the array took 40% fewer of
 * the poll threads' profile samples (JFR, same load), and it is written for every batch.
 *
 * @param reasonCode the fixed word that labels the rejected records metric; not sent to the database
 * @param extra      the values of the contract's other fields (sensor-reading.schema.json), by column, written as
 *                   members of the row's JSON object beside the fixed ones; null when the contract has none
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
@JsonInclude(JsonInclude.Include.NON_NULL)
public record BatchRow(String kafkaTopic, Integer kafkaPartition, Long kafkaOffset, String recordKey,
        String eventId, String sensorId, Long eventTimeUs, Double value,
        String payload, String payloadEncoding, String reason, @JsonIgnore String reasonCode, @JsonIgnore Map<String, Object> extra) {

    static BatchRow reading(String topic, Integer partition, Long offset, String eventId, String sensorId, long eventTimeUs, double value,
            Map<String, Object> extra) {
        return new BatchRow(topic, partition, offset, null, eventId, sensorId, eventTimeUs, value, null, null, null, null, extra);
    }

    @JsonAnyGetter
    Map<String, Object> extraColumns() {
        return extra == null ? Map.of() : extra;
    }

    /**
     * The distinct hours (since 1970, UTC) the batch's readings fall in, separated by commas: what
     * create-partitions.sql needs to make every partition the batch will write to. Usually one or two.
     */
    public static String eventHours(java.util.List<BatchRow> rows) {
        java.util.TreeSet<Long> hours = new java.util.TreeSet<>();
        for (BatchRow row : rows) {
            if (row.eventTimeUs() != null) {
                hours.add(Math.floorDiv(row.eventTimeUs(), MICROS_PER_HOUR));
            }
        }
        StringBuilder text = new StringBuilder();
        for (Long hour : hours) {
            text.append(text.length() == 0 ? "" : ",").append(hour);
        }
        return text.toString();
    }

    private static final long MICROS_PER_HOUR = 3_600_000_000L;

    static BatchRow rejected(String topic, Integer partition, Long offset, String recordKey, String payload, String payloadEncoding,
            String reason, String reasonCode) {
        return new BatchRow(topic, partition, offset, recordKey, null, null, null, null, payload, payloadEncoding, reason, reasonCode, null);
    }
}
