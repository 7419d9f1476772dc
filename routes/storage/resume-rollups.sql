-- At the start of a service with rollups on, partitioned layout: if a service ran with them off
-- (pause-rollups.sql), every minute of a reading stored since then is marked, so that the refresh rolls it up.
-- That reads the whole of metrics once (created_at has no index); nothing at all when rollups were never off.
WITH resumed AS (
  DELETE FROM metrics_rollup_paused RETURNING since
)
INSERT INTO metrics_rollup_stale (minute, readings)
SELECT date_trunc('minute', m.timestamp, 'UTC'), count(*) FROM metrics m
WHERE EXISTS (SELECT 1 FROM resumed) AND m.created_at >= (SELECT min(since) FROM resumed)
GROUP BY 1
