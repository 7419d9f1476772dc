-- Before each rollup refresh, outside its transaction: the partitions of the rollup tables for every hour with a
-- stale minute, made where missing (the readings' partitions are made per batch; the rollups' follow here, so an
-- upgraded database gets them for its older days as the refresh reaches them). Returns how many it made.
SELECT sensor_metrics_create_partitions_of(ARRAY['metrics_rollup_minute', 'metrics_rollup_minute_total', 'metrics_rollup_hour', 'metrics_rollup_hour_total'],
  ARRAY(SELECT DISTINCT floor(extract(epoch FROM minute) / 3600)::bigint FROM metrics_rollup_stale),
  CAST(:#${properties:db.partition.interval} AS interval))
