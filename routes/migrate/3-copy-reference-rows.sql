-- Migration step 3 of 3 (step 1 says how to run them): the partitions every old row needs, the rows, and a check
-- that every stored event arrived; the old tables stay as they were until you drop them
-- (DROP TABLE metrics_reference, processed_events_reference).
-- The interval below must be the service's DB_PARTITION_INTERVAL (default 1 day).
SELECT sensor_metrics_create_partitions(
  ARRAY(SELECT DISTINCT floor(extract(epoch FROM timestamp) / 3600)::bigint FROM metrics_reference), INTERVAL '1 day');

-- in key order: each partition's indexes are filled from the left, not at random
INSERT INTO metrics (id, sensor_id, event_id, timestamp, value, created_at)
SELECT id, sensor_id, event_id, timestamp, value, created_at
FROM metrics_reference
ORDER BY timestamp, event_id;

-- every minute of the old rows, for the service's rollup refresh to count (routes/refresh-rollups.camel.yaml)
INSERT INTO metrics_rollup_stale (minute)
SELECT DISTINCT date_trunc('minute', timestamp, 'UTC') FROM metrics_reference;

-- processed_events now carries the event time it is keyed by, taken from the event's metric. A claim without a
-- metric (the reference consumer committed its claim before its metric, and lost the metric) is not carried
-- over: the event was never stored, and without the claim a redelivery stores it.
INSERT INTO processed_events (event_id, sensor_id, processed_at, kafka_partition, kafka_offset, event_time)
SELECT p.event_id, p.sensor_id, p.processed_at, p.kafka_partition, p.kafka_offset, m.timestamp
FROM processed_events_reference p JOIN metrics_reference m USING (event_id)
ORDER BY m.timestamp, p.event_id;

DO $$
DECLARE
  old_metrics bigint := (SELECT count(*) FROM metrics_reference);
  new_metrics bigint := (SELECT count(*) FROM metrics);
  claims bigint := (SELECT count(*) FROM processed_events_reference p JOIN metrics_reference m USING (event_id));
  new_claims bigint := (SELECT count(*) FROM processed_events);
BEGIN
  IF old_metrics <> new_metrics OR claims <> new_claims THEN
    RAISE EXCEPTION 'migration incomplete: metrics % of %, processed_events % of %', new_metrics, old_metrics, new_claims, claims;
  END IF;
  RAISE NOTICE 'migrated % metrics and % processed_events rows', new_metrics, new_claims;
END
$$;
