-- The rollup refresh, step two, in its transaction: the minutes step one picked (the variable picked,
-- minutes since 1970 separated by commas, pick-minutes-and-make-rollup-partitions.sql), those still marked, are
-- recounted from the readings and written to metrics_rollup_minute and, over all sensors,
-- metrics_rollup_minute_total, and their marks removed. Only those: their rollup partitions were made before this
-- transaction began, and a minute marked since waits for the next refresh. A minute whose readings are gone (their
-- partition dropped by retention) finds none and keeps its rollups: rows are only ever written, never deleted
-- here. Returns how many minutes it recounted.
-- A minute rolled up for the first time (no total yet: the totals are written with the minutes, and dropped with
-- them) is the common case, live or backfill: its rows are plain inserts, with no conflict to check (one refresh at
-- a time writes rollups), and each sensor's hour gets the new minutes added to it, as an hour is exactly the sum of
-- its minutes after every refresh. A minute rolled up before (late readings, redeliveries) is rewritten, and each
-- sensor's hours among those are marked for part two, which sums them again from their minutes. At one reading per
-- sensor and minute this took the refresh from 14.8 to 8-9 us per reading (docs/decisions.md 25).
WITH picked AS (
  SELECT s.minute, t.bucket IS NULL AS first_rollup
  FROM (SELECT DISTINCT minute FROM metrics_rollup_stale
        WHERE minute = ANY (ARRAY(SELECT to_timestamp(CAST(m AS bigint) * 60)
                                  FROM unnest(string_to_array(:#${variable.picked[minutes]}, ',')) AS m))) s
  LEFT JOIN metrics_rollup_minute_total t ON t.bucket = s.minute
),
cleared AS (
  DELETE FROM metrics_rollup_stale s USING picked p WHERE s.minute = p.minute
),
-- each picked minute apart, its readings by the primary key: a join the planner could turn around read the whole
-- table (50,000,000 rows) once per minute when it misjudged the picked minutes' number (docs/decisions.md 25).
-- first and last as min and max of (time, id, value): array_agg(value ORDER BY ...) sorted each bucket apart,
-- a third of the recount's time (docs/decisions.md 22)
counted AS (
  SELECT m.sensor_id, p.minute AS bucket, p.first_rollup, m.readings, m.value_sum, m.value_min, m.value_max,
         m.first_time, m.first_value, m.last_time, m.last_value
  FROM picked p
  CROSS JOIN LATERAL (
    SELECT sensor_id, count(*) AS readings, sum(value) AS value_sum, min(value) AS value_min, max(value) AS value_max,
           min(timestamp) AS first_time, ((min(ARRAY[(timestamp, id, value)::sensor_metrics_reading]))[1]).value AS first_value,
           max(timestamp) AS last_time, ((max(ARRAY[(timestamp, id, value)::sensor_metrics_reading]))[1]).value AS last_value
    FROM metrics
    WHERE timestamp >= p.minute AND timestamp < p.minute + INTERVAL '1 minute'
    GROUP BY sensor_id
  ) m
),
-- in key order: the index is written page after page
added AS (
  INSERT INTO metrics_rollup_minute (sensor_id, bucket, readings, value_sum, value_min, value_max,
                                     first_time, first_value, last_time, last_value)
  SELECT sensor_id, bucket, readings, value_sum, value_min, value_max, first_time, first_value, last_time, last_value
  FROM counted WHERE first_rollup
  ORDER BY sensor_id, bucket
),
replaced AS (
  INSERT INTO metrics_rollup_minute AS r (sensor_id, bucket, readings, value_sum, value_min, value_max,
                                          first_time, first_value, last_time, last_value)
  SELECT sensor_id, bucket, readings, value_sum, value_min, value_max, first_time, first_value, last_time, last_value
  FROM counted WHERE NOT first_rollup
  ORDER BY sensor_id, bucket
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET readings = EXCLUDED.readings, value_sum = EXCLUDED.value_sum, value_min = EXCLUDED.value_min,
      value_max = EXCLUDED.value_max, first_time = EXCLUDED.first_time, first_value = EXCLUDED.first_value,
      last_time = EXCLUDED.last_time, last_value = EXCLUDED.last_value
),
-- a picked minute's readings are all recounted above, every sensor's, so its total is theirs
totals AS (
  INSERT INTO metrics_rollup_minute_total AS t (bucket, readings, first_time, last_time)
  SELECT bucket, sum(readings), min(first_time), max(last_time) FROM counted GROUP BY bucket
  ON CONFLICT (bucket) DO UPDATE
  SET readings = EXCLUDED.readings, first_time = EXCLUDED.first_time, last_time = EXCLUDED.last_time
),
-- each sensor's hours among the minutes counted; an hour's first reading is its earliest minute's first, its last
-- its latest minute's last (minutes do not overlap: no tie to break)
sensor_hours AS (
  SELECT sensor_id, date_trunc('hour', bucket, 'UTC') AS hour, bool_and(first_rollup) AS added_only,
         sum(readings) AS readings, sum(value_sum) AS value_sum, min(value_min) AS value_min, max(value_max) AS value_max,
         min(first_time) AS first_time, ((min(ARRAY[(first_time, 0, first_value)::sensor_metrics_reading]))[1]).value AS first_value,
         max(last_time) AS last_time, ((max(ARRAY[(last_time, 0, last_value)::sensor_metrics_reading]))[1]).value AS last_value
  FROM counted GROUP BY 1, 2
),
-- added to the hours: counts and sums add up, min and max of both, the earlier first and the later last
merged AS (
  INSERT INTO metrics_rollup_hour AS r (sensor_id, bucket, readings, value_sum, value_min, value_max,
                                        first_time, first_value, last_time, last_value)
  SELECT sensor_id, hour, readings, value_sum, value_min, value_max, first_time, first_value, last_time, last_value
  FROM sensor_hours WHERE added_only
  ORDER BY sensor_id, hour
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET readings = r.readings + EXCLUDED.readings, value_sum = r.value_sum + EXCLUDED.value_sum,
      value_min = least(r.value_min, EXCLUDED.value_min), value_max = greatest(r.value_max, EXCLUDED.value_max),
      first_time = least(r.first_time, EXCLUDED.first_time),
      first_value = CASE WHEN EXCLUDED.first_time < r.first_time THEN EXCLUDED.first_value ELSE r.first_value END,
      last_time = greatest(r.last_time, EXCLUDED.last_time),
      last_value = CASE WHEN EXCLUDED.last_time > r.last_time THEN EXCLUDED.last_value ELSE r.last_value END
),
-- and over all sensors, for the hours in which every minute counted is new
merged_totals AS (
  INSERT INTO metrics_rollup_hour_total AS t (bucket, readings, first_time, last_time)
  SELECT hour, sum(readings), min(first_time), max(last_time) FROM sensor_hours GROUP BY hour HAVING bool_and(added_only)
  ON CONFLICT (bucket) DO UPDATE
  SET readings = t.readings + EXCLUDED.readings, first_time = least(t.first_time, EXCLUDED.first_time),
      last_time = greatest(t.last_time, EXCLUDED.last_time)
),
-- the other hours, summed again from their minutes by part two
hours AS (
  INSERT INTO metrics_rollup_stale_hour (sensor_id, hour)
  SELECT sensor_id, hour FROM sensor_hours WHERE NOT added_only
)
SELECT count(*) FROM picked
