-- Maintenance, when REJECTED_RETENTION_DAYS is set: deletes the rejected records older than that window (by
-- rejected_at, which its index serves), at most 100,000 per run so that one run never holds the table long; the
-- next run goes on. Returns how many it deleted.
WITH expired AS (
  DELETE FROM rejected_events
  WHERE id IN (SELECT id FROM rejected_events
               WHERE rejected_at < now() - CAST(:#${properties:rejected.retention-days} AS numeric) * INTERVAL '1 day'
               ORDER BY rejected_at LIMIT 100000)
  RETURNING 1
)
SELECT count(*) FROM expired
