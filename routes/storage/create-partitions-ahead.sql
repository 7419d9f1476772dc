-- Maintenance: the partitions from an hour ago (clocks differ) to db.partition.premake intervals ahead, so live
-- readings never wait for one to be made. Returns how many partitions of metrics it made.
SELECT sensor_metrics_create_partitions(
  ARRAY(SELECT generate_series(
    floor(extract(epoch FROM now() - INTERVAL '1 hour') / 3600)::bigint,
    floor(extract(epoch FROM now() + CAST(:#${properties:db.partition.interval} AS interval)
                                     * CAST(:#${properties:db.partition.premake} AS integer)) / 3600)::bigint)),
  CAST(:#${properties:db.partition.interval} AS interval))
