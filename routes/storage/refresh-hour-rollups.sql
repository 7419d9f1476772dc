-- The rollup refresh, part two, in part one's transaction: each sensor's hours part one marked are summed from
-- that sensor's minute rollups (its primary key serves the read) and written to metrics_rollup_hour. The first
-- reading of an hour is its earliest minute's first, the last its latest minute's last. Those hours over all
-- sensors go to metrics_rollup_hour_total. Returns how many hour rollups it wrote.
WITH picked AS (
  DELETE FROM metrics_rollup_stale_hour RETURNING sensor_id, hour
),
summed AS (
  INSERT INTO metrics_rollup_hour AS r (sensor_id, bucket, readings, value_sum, value_min, value_max,
                                        first_time, first_value, last_time, last_value)
  SELECT m.sensor_id, h.hour, sum(m.readings), sum(m.value_sum), min(m.value_min), max(m.value_max),
         min(m.first_time), ((min(ARRAY[(m.bucket, 0, m.first_value)::sensor_metrics_reading]))[1]).value,
         max(m.last_time), ((max(ARRAY[(m.bucket, 0, m.last_value)::sensor_metrics_reading]))[1]).value
  FROM (SELECT DISTINCT sensor_id, hour FROM picked) h
  JOIN metrics_rollup_minute m ON m.sensor_id = h.sensor_id AND m.bucket >= h.hour AND m.bucket < h.hour + INTERVAL '1 hour'
  GROUP BY m.sensor_id, h.hour
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET readings = EXCLUDED.readings, value_sum = EXCLUDED.value_sum, value_min = EXCLUDED.value_min,
      value_max = EXCLUDED.value_max, first_time = EXCLUDED.first_time, first_value = EXCLUDED.first_value,
      last_time = EXCLUDED.last_time, last_value = EXCLUDED.last_value
  RETURNING 1
),
-- and each of those hours over all sensors, from part one's minute totals (written earlier in this transaction)
totals AS (
  INSERT INTO metrics_rollup_hour_total AS t (bucket, readings, first_time, last_time)
  SELECT h.hour, sum(m.readings), min(m.first_time), max(m.last_time)
  FROM (SELECT DISTINCT hour FROM picked) h
  JOIN metrics_rollup_minute_total m ON m.bucket >= h.hour AND m.bucket < h.hour + INTERVAL '1 hour'
  GROUP BY h.hour
  ON CONFLICT (bucket) DO UPDATE
  SET readings = EXCLUDED.readings, first_time = EXCLUDED.first_time, last_time = EXCLUDED.last_time
)
SELECT count(*) FROM summed
