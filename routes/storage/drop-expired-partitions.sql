-- Maintenance, when RETENTION_DAYS is set: drops the partitions that hold nothing newer than the retention window
-- plus db.partition.drop-grace. The service rejects readings older than the window itself (reason "older than
-- the retention window"), so the grace keeps the partition of any reading it accepted until that reading's batch
-- is long committed, whatever the clocks of service and database say. Returns the dropped tables' names.
SELECT sensor_metrics_drop_partitions(
  now() - CAST(:#${properties:retention.days} AS numeric) * INTERVAL '1 day' - CAST(:#${properties:db.partition.drop-grace} AS interval),
  CAST(:#${properties:db.partition.lock-wait} AS interval))
