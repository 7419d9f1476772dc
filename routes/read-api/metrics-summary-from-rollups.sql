-- GET /api/metrics/summary with rollups on: metrics-summary.sql's answer, read from the rollups where they are
-- exact and from the readings elsewhere, so that a week costs a few hundred rollup rows, not its readings.
-- The window is cut into its whole hours (metrics_rollup_hour for one sensor, metrics_rollup_hour_total for all),
-- the whole minutes left at its ends (the minute rollups) and the parts of a minute at its very ends (the
-- readings). A minute marked stale, whose rollups wait for the next refresh, is read from the readings, and an
-- hour with such a minute from its minutes. Rollups count from their oldest bucket (their retention may have
-- dropped older ones): readings older than that are read as themselves. Where the readings' retention dropped
-- readings and kept their rollups, the window's whole minutes still count them.
WITH w AS (
  SELECT CAST(:#from AS timestamptz) AS lo,
         CAST(:#to AS timestamptz) + INTERVAL '1 microsecond' AS hi,
         GREATEST(CAST(:#from AS timestamptz),
                  COALESCE((SELECT min(bucket) FROM metrics_rollup_hour_total), 'infinity')) AS rollups_from
),
-- whole minutes [mlo, mhi) and whole hours [hlo, hhi) inside the window, from where the rollups start
b AS (
  SELECT lo, hi,
         date_trunc('minute', rollups_from + INTERVAL '1 minute' - INTERVAL '1 microsecond', 'UTC') AS mlo,
         date_trunc('minute', hi, 'UTC') AS mhi,
         date_trunc('hour', rollups_from + INTERVAL '1 hour' - INTERVAL '1 microsecond', 'UTC') AS hlo,
         date_trunc('hour', hi, 'UTC') AS hhi
  FROM w
),
stale AS (
  SELECT DISTINCT s.minute FROM b JOIN metrics_rollup_stale s ON s.minute >= b.mlo AND s.minute < b.mhi
),
stale_hours AS (
  SELECT DISTINCT date_trunc('hour', minute, 'UTC') AS hour FROM stale
),
-- the ranges read from the minute rollups: the ends outside the whole hours, and the stale hours
minute_ranges AS (
  SELECT mlo AS r_from, LEAST(hlo, mhi) AS r_to FROM b
  UNION ALL
  SELECT GREATEST(hhi, hlo, mlo), mhi FROM b
  UNION ALL
  SELECT h.hour, h.hour + INTERVAL '1 hour' FROM b JOIN stale_hours h ON h.hour >= b.hlo AND h.hour < b.hhi
),
-- the ranges read from the readings: the parts of a minute at the ends, and the stale minutes
raw_ranges AS (
  SELECT lo AS r_from, LEAST(mlo, hi) AS r_to FROM b
  UNION ALL
  SELECT GREATEST(mlo, mhi), hi FROM b
  UNION ALL
  SELECT minute, minute + INTERVAL '1 minute' FROM stale
),
parts AS (
  SELECT r.readings, r.first_time, r.last_time
  FROM b JOIN metrics_rollup_hour r ON r.sensor_id = :#sensorId AND r.bucket >= b.hlo AND r.bucket < b.hhi
  WHERE r.bucket NOT IN (SELECT hour FROM stale_hours)
  UNION ALL
  SELECT t.readings, t.first_time, t.last_time
  FROM b JOIN metrics_rollup_hour_total t ON t.bucket >= b.hlo AND t.bucket < b.hhi
  WHERE :#sensorId = '' AND t.bucket NOT IN (SELECT hour FROM stale_hours)
  UNION ALL
  SELECT r.readings, r.first_time, r.last_time
  FROM minute_ranges x JOIN metrics_rollup_minute r ON r.sensor_id = :#sensorId AND r.bucket >= x.r_from AND r.bucket < x.r_to
  WHERE r.bucket NOT IN (SELECT minute FROM stale)
  UNION ALL
  SELECT t.readings, t.first_time, t.last_time
  FROM minute_ranges x JOIN metrics_rollup_minute_total t ON t.bucket >= x.r_from AND t.bucket < x.r_to
  WHERE :#sensorId = '' AND t.bucket NOT IN (SELECT minute FROM stale)
  UNION ALL
  -- each range apart (LATERAL), so that its scan is estimated as a range of a partition: as a join, the range was
  -- estimated at a ninth of every partition, and the newest, not yet vacuumed, was read whole (docs/benchmarks.md)
  SELECT m.readings, m.first_time, m.last_time
  FROM raw_ranges x CROSS JOIN LATERAL (
    SELECT count(*) AS readings, min(timestamp) AS first_time, max(timestamp) AS last_time FROM metrics
    WHERE sensor_id = :#sensorId AND timestamp >= x.r_from AND timestamp < x.r_to
  ) m
  UNION ALL
  SELECT m.readings, m.first_time, m.last_time
  FROM raw_ranges x CROSS JOIN LATERAL (
    SELECT count(*) AS readings, min(timestamp) AS first_time, max(timestamp) AS last_time FROM metrics
    WHERE timestamp >= x.r_from AND timestamp < x.r_to
  ) m
  WHERE :#sensorId = ''
)
SELECT json_build_object(
  'total_events', COALESCE(sum(readings), 0),
  'from', min(first_time),
  'to', max(last_time),
  'lag_seconds', round(extract(epoch FROM now() - max(last_time))::numeric, 3)
)::text
FROM parts
