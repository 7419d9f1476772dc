-- The statement for a database with the reference schema's unpartitioned tables (processed_events keyed by
-- event_id alone), which the service keeps using until the database is migrated (routes/migrate/); the
-- partitioned layout's statement is store-batch.sql, which differs in the keys and in the event time that
-- processed_events carries there.
--
-- Stores one Kafka batch in one statement: the rows arrive as one JSON array (:#rows), so the whole batch
-- costs one round trip. Inside the caller's transaction:
--   * rejected records go to rejected_events (once per topic/partition/offset);
--   * of the valid ones, the first occurrence of each event_id in the batch is kept;
--   * each kept event gets its processed_events row and its metrics row, both ON CONFLICT DO NOTHING:
--     the two rows are only ever written together, so an id stored by an earlier batch (or a
--     concurrent consumer) is skipped in both, and an id the old consumer marked processed without a
--     metric gets its metric. The statement's row count is the number of new metrics rows.
--   * metrics rows are inserted in partition/offset order, so metrics.id follows each sensor's order.
-- processed_events is written first and in event_id order: two consumers meeting on the same ids wait
-- for each other there, in one order, and never deadlock.
-- (A JOIN between the CTEs made the planner pick a nested loop: 2,000 x 2,000 comparisons, 10x slower.)
-- The time is whole seconds plus microseconds: one product of microseconds and an interval is computed in
-- floating point and lost microseconds beyond 285 years from 1970 (9999-12-31T23:59:59.999999Z became year 10000).
-- The array is read as json, not jsonb: json_to_recordset parses the text once, where jsonb would first
-- build its binary form (100,000 rows: 0.22-0.24 s against 0.30-0.36 s).
WITH batch AS (
  SELECT *
  FROM json_to_recordset(CAST(convert_from(:#rows, 'UTF8') AS json)) AS r(
    kafka_topic text, kafka_partition int, kafka_offset bigint, record_key text,
    event_id text, sensor_id text, event_time_us bigint, value float8,
    payload text, payload_encoding text, reason text)
),
rejected AS (
  INSERT INTO rejected_events (kafka_topic, kafka_partition, kafka_offset, record_key, payload, payload_encoding, reason)
  SELECT kafka_topic, kafka_partition, kafka_offset, record_key, payload, payload_encoding, reason
  FROM batch
  WHERE reason IS NOT NULL
  ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING
),
first_seen AS (
  SELECT DISTINCT ON (event_id) *
  FROM batch
  WHERE reason IS NULL
  ORDER BY event_id, kafka_partition, kafka_offset
),
claimed AS (
  INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset)
  SELECT event_id, sensor_id, kafka_partition, kafka_offset
  FROM first_seen
  ORDER BY event_id
  ON CONFLICT (event_id) DO NOTHING
  RETURNING 1
)
INSERT INTO metrics (sensor_id, event_id, timestamp, value)
SELECT sensor_id, event_id, TIMESTAMPTZ 'epoch' + (event_time_us / 1000000) * INTERVAL '1 second'
         + (event_time_us % 1000000) * INTERVAL '1 microsecond', value
FROM first_seen
-- reading claimed first makes PostgreSQL finish the processed_events insert before this one starts
WHERE (SELECT count(*) FROM claimed) >= 0
ORDER BY kafka_partition, kafka_offset
ON CONFLICT (event_id) DO NOTHING
