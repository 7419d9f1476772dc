-- First in the refresh's transaction, in a statement of its own: one refresh at a time across every instance. The
-- next statement's snapshot is taken after this lock is held, so a refresh never writes counts older than the
-- ones the refresh before it wrote.
SELECT pg_advisory_xact_lock(hashtext('sensor_metrics_rollups'))
