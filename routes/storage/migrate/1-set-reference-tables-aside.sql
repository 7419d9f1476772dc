-- Migration from the reference schema's unpartitioned tables to the partitioned layout, step 1 of 3: the old
-- tables and the names of their keys are set aside (metrics_reference, processed_events_reference), so that
-- step 2, routes/storage/schema.sql, can make the new tables under the names dashboards use. metrics_id_seq is kept
-- and handed over: metrics.id continues where it was. Run the three steps in one transaction, with the service
-- stopped (docs/storage.md):
--   psql -v ON_ERROR_STOP=1 --single-transaction -f routes/storage/migrate/1-set-reference-tables-aside.sql \
--     -f routes/storage/schema.sql -f routes/storage/migrate/3-copy-reference-rows.sql
ALTER TABLE metrics RENAME TO metrics_reference;
ALTER TABLE processed_events RENAME TO processed_events_reference;
ALTER INDEX IF EXISTS metrics_pkey RENAME TO metrics_reference_pkey;
ALTER INDEX IF EXISTS metrics_event_id_key RENAME TO metrics_reference_event_id_key;
ALTER INDEX IF EXISTS processed_events_pkey RENAME TO processed_events_reference_pkey;
ALTER INDEX IF EXISTS idx_metrics_sensor_timestamp RENAME TO idx_metrics_reference_sensor_timestamp;
ALTER SEQUENCE metrics_id_seq OWNED BY NONE;
