-- Migration step 3 of 3 (step 1 says how to run them): the partitions every old row needs, the rows, and a check
-- that every stored event arrived; the old tables stay as they were until you drop them
-- (DROP TABLE metrics_reference, processed_events_reference).
-- The interval below must be the service's DB_PARTITION_INTERVAL (default 1 day).
SELECT sensor_metrics_create_partitions(
  ARRAY(SELECT DISTINCT floor(extract(epoch FROM timestamp) / 3600)::bigint FROM metrics_reference), INTERVAL '1 day');

-- in key order: each partition's indexes are filled from the left, not at random. processed_events is now a view of
-- metrics: each metric takes its claim's Kafka coordinates. A claim without a metric (the reference consumer
-- committed its claim before its metric, and lost the metric) is not carried over: the event was never stored, and
-- without the claim a redelivery stores it.
INSERT INTO metrics (id, sensor_id, event_id, timestamp, value, created_at, kafka_partition, kafka_offset)
SELECT m.id, m.sensor_id, m.event_id, m.timestamp, m.value, m.created_at, p.kafka_partition, p.kafka_offset
FROM metrics_reference m LEFT JOIN processed_events_reference p USING (event_id)
ORDER BY m.timestamp, m.event_id;

-- every minute of the old rows, for the service's rollup refresh to count (routes/storage/refresh-rollups.camel.yaml)
INSERT INTO metrics_rollup_stale (minute)
SELECT DISTINCT date_trunc('minute', timestamp, 'UTC') FROM metrics_reference;

DO $$
DECLARE
  old_metrics bigint := (SELECT count(*) FROM metrics_reference);
  new_metrics bigint := (SELECT count(*) FROM metrics);
BEGIN
  IF old_metrics <> new_metrics THEN
    RAISE EXCEPTION 'migration incomplete: metrics % of %', new_metrics, old_metrics;
  END IF;
  RAISE NOTICE 'migrated % metrics rows', new_metrics;
END
$$;
