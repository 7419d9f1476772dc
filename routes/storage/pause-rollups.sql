-- At the start of a service with rollups off (ROLLUPS_ENABLED=false), partitioned layout: what it stores from
-- now on is not marked for the rollups, so the time is kept for resume-rollups.sql (the first such start counts).
INSERT INTO metrics_rollup_paused (since)
SELECT now() WHERE NOT EXISTS (SELECT 1 FROM metrics_rollup_paused)
