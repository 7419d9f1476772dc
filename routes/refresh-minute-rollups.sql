-- The rollup refresh, part one: the oldest stale minutes (at most rollup.refresh-max-minutes) are recounted from
-- the readings and written to metrics_rollup_minute and, over all sensors, metrics_rollup_minute_total, and their
-- marks removed; each sensor's hour they fall in is marked for part two. A minute whose readings are gone (their
-- partition dropped by retention) finds none and keeps its rollups: rows are only ever written, never deleted here.
-- Returns how many minute rollups it wrote.
-- The minute now in progress waits until it has lasted a refresh interval (or, for intervals of a minute or more,
-- until it has ended): every batch marks it, and recounting it at every refresh would read its rows many times
-- over. Its readings are still exact within two refresh intervals of being stored. Minutes ahead of now (a clock
-- that runs ahead, a reading from the future) are not held back.
WITH picked AS (
  SELECT DISTINCT minute FROM metrics_rollup_stale
  WHERE minute + LEAST(INTERVAL '1 minute', CAST(:#${properties:rollup.refresh-interval-ms} AS bigint) * INTERVAL '1 millisecond') <= now()
     OR minute > now()
  ORDER BY minute
  LIMIT CAST(:#${properties:rollup.refresh-max-minutes} AS integer)
),
cleared AS (
  DELETE FROM metrics_rollup_stale s USING picked p WHERE s.minute = p.minute
),
counted AS (
  INSERT INTO metrics_rollup_minute AS r (sensor_id, bucket, readings, value_sum, value_min, value_max,
                                          first_time, first_value, last_time, last_value)
  -- first and last as min and max of (time, id, value): array_agg(value ORDER BY ...) sorted each bucket apart,
  -- a third of the recount's time (docs/decisions.md 22)
  SELECT m.sensor_id, p.minute, count(*), sum(m.value), min(m.value), max(m.value),
         min(m.timestamp), ((min(ARRAY[(m.timestamp, m.id, m.value)::sensor_metrics_reading]))[1]).value,
         max(m.timestamp), ((max(ARRAY[(m.timestamp, m.id, m.value)::sensor_metrics_reading]))[1]).value
  FROM picked p
  JOIN metrics m ON m.timestamp >= p.minute AND m.timestamp < p.minute + INTERVAL '1 minute'
  GROUP BY m.sensor_id, p.minute
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET readings = EXCLUDED.readings, value_sum = EXCLUDED.value_sum, value_min = EXCLUDED.value_min,
      value_max = EXCLUDED.value_max, first_time = EXCLUDED.first_time, first_value = EXCLUDED.first_value,
      last_time = EXCLUDED.last_time, last_value = EXCLUDED.last_value
  RETURNING r.sensor_id, r.bucket, r.readings, r.first_time, r.last_time
),
-- a picked minute's readings are all recounted above, every sensor's, so its total is theirs
totals AS (
  INSERT INTO metrics_rollup_minute_total AS t (bucket, readings, first_time, last_time)
  SELECT bucket, sum(readings), min(first_time), max(last_time) FROM counted GROUP BY bucket
  ON CONFLICT (bucket) DO UPDATE
  SET readings = EXCLUDED.readings, first_time = EXCLUDED.first_time, last_time = EXCLUDED.last_time
),
hours AS (
  INSERT INTO metrics_rollup_stale_hour (sensor_id, hour)
  SELECT DISTINCT sensor_id, date_trunc('hour', bucket, 'UTC') FROM counted
)
SELECT count(*) FROM counted
