-- GET /api/metrics: one page of readings, newest first, as a JSON array (built here: one round trip, and the
-- timestamps come out as ISO 8601). An empty :#sensorId means every sensor. Served by the
-- metrics(sensor_id, timestamp DESC) index, or metrics(timestamp) across sensors.
SELECT COALESCE(json_agg(page ORDER BY page.timestamp DESC, page.id DESC), '[]')::text
FROM (
  SELECT id, sensor_id, event_id, timestamp, value, created_at
  FROM metrics
  WHERE (:#sensorId = '' OR sensor_id = :#sensorId)
    AND timestamp >= :#from AND timestamp <= :#to
  ORDER BY timestamp DESC, id DESC
  LIMIT :#limit OFFSET :#offset
) AS page
