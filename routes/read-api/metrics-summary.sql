-- GET /api/metrics/summary: how many readings, the first and last timestamp, and how far behind now the
-- last one is (lag_seconds; null when there is none). An empty :#sensorId means every sensor.
SELECT json_build_object(
  'total_events', count(*),
  'from', min(timestamp),
  'to', max(timestamp),
  'lag_seconds', round(extract(epoch FROM now() - max(timestamp))::numeric, 3)
)::text
FROM metrics
WHERE (:#sensorId = '' OR sensor_id = :#sensorId)
  AND timestamp >= :#from AND timestamp <= :#to
