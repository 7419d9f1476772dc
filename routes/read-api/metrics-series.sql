-- GET /api/metrics/series: one sensor's readings per step from the rollups (routes/storage/refresh-rollups.camel.yaml),
-- buckets from :#from (inclusive) to :#to (exclusive), empty buckets left out. 1m and 1h read their rollup table
-- by its primary key, (sensor_id, bucket); 1d sums 24 hour rollups a day. Exact once the last refresh has run.
SELECT json_build_object(
  'sensor_id', CAST(:#sensorId AS text), 'step', CAST(:#step AS text), 'from', CAST(:#from AS timestamptz), 'to', CAST(:#to AS timestamptz),
  'points', COALESCE(json_agg(json_build_object(
    'time', bucket, 'count', readings, 'avg', value_sum / readings, 'min', value_min, 'max', value_max,
    'first', first_value, 'last', last_value) ORDER BY bucket), '[]'))::text
FROM (
  SELECT bucket, readings, value_sum, value_min, value_max, first_value, last_value
  FROM metrics_rollup_minute
  WHERE :#step = '1m' AND sensor_id = :#sensorId AND bucket >= :#from AND bucket < :#to
  UNION ALL
  SELECT bucket, readings, value_sum, value_min, value_max, first_value, last_value
  FROM metrics_rollup_hour
  WHERE :#step = '1h' AND sensor_id = :#sensorId AND bucket >= :#from AND bucket < :#to
  UNION ALL
  SELECT date_trunc('day', bucket, 'UTC'), sum(readings), sum(value_sum), min(value_min), max(value_max),
         (array_agg(first_value ORDER BY bucket))[1], (array_agg(last_value ORDER BY bucket DESC))[1]
  FROM metrics_rollup_hour
  WHERE :#step = '1d' AND sensor_id = :#sensorId AND bucket >= :#from AND bucket < :#to
  GROUP BY 1
) AS points
