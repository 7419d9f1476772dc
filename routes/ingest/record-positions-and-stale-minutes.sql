-- Inside each batch's transaction (store-batch.camel.yaml), one statement, one round trip:
--   * the batch's position per Kafka partition, the offset after its last record, after checking that the database
--     still holds what this consumer believes it stored (sensor_metrics_record_positions, schema.sql): committed
--     with the readings or not at all, it says where to read again after a failover or a restore lost transactions;
--   * when rollups are kept, the minutes its readings fall in (sensorReadings.eventMinutes: minutes since 1970 with
--     the batch's readings in each, "minute:readings" separated by commas), marked for the next rollup refresh, so a
--     refresh reads only the minutes that changed, and knows how many readings they hold. A batch of duplicates
--     marks its minutes too, which costs the refresh one recount and changes nothing. to_timestamp of whole seconds
--     is exact for any year, as a product of a number and an interval, computed in floating point, is not
--     (store-batch.sql).
WITH marked AS (
  INSERT INTO metrics_rollup_stale (minute, readings)
  SELECT to_timestamp(CAST(split_part(m, ':', 1) AS bigint) * 60), CAST(split_part(m, ':', 2) AS integer)
  FROM unnest(string_to_array(:#${bean:sensorReadings?method=eventMinutes}, ',')) AS m
  WHERE CAST(:#${variable.global:rollupsKept} AS boolean)
  RETURNING 1
)
SELECT sensor_metrics_record_positions(CAST(:#${variable.kafkaBatch.topics} AS text[]),
                                       CAST(:#${variable.kafkaBatch.partitions} AS integer[]),
                                       CAST(:#${variable.kafkaBatch.expected} AS bigint[]),
                                       CAST(:#${variable.kafkaBatch.nextOffsets} AS bigint[])),
       (SELECT count(*) FROM marked)
