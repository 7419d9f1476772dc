-- Maintenance, when ROLLUP_RETENTION_DAYS is set: drops the rollup partitions that hold nothing newer than that
-- window, whole, independent of the readings' retention. Locked in the order a refresh writes them. Returns the
-- dropped tables' names.
SELECT sensor_metrics_drop_partitions_of(ARRAY['metrics_rollup_minute', 'metrics_rollup_minute_total', 'metrics_rollup_hour', 'metrics_rollup_hour_total'],
  now() - CAST(:#${properties:rollup.retention-days} AS numeric) * INTERVAL '1 day',
  CAST(:#${properties:db.partition.lock-wait} AS interval))
