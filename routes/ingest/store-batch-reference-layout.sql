-- The statement for a database with the reference schema's unpartitioned tables (processed_events keyed by
-- event_id alone), which the service keeps using until the database is migrated (routes/storage/migrate/); the
-- partitioned layout's statement is store-batch.sql, which differs in the keys and in the event time that
-- processed_events carries there.
--
-- Stores one Kafka batch in one statement: the rows arrive as typed arrays, one per column (the readings' and the
-- rejected records' apart, as in store-batch.sql), so the whole batch costs one round trip. Inside the caller's transaction:
--   * rejected records go to rejected_events (once per topic/partition/offset);
--   * of the valid ones, the first occurrence of each event_id in the batch is kept;
--   * each kept event gets its processed_events row and its metrics row, both ON CONFLICT DO NOTHING:
--     the two rows are only ever written together, so an id stored by an earlier batch (or a
--     concurrent consumer) is skipped in both, and an id the old consumer marked processed without a
--     metric gets its metric. It returns the number of new metrics rows.
--   * metrics rows are inserted in partition/offset order, so metrics.id follows each sensor's order.
-- processed_events is written first and in event_id order: two consumers meeting on the same ids wait
-- for each other there, in one order, and never deadlock.
-- (A JOIN between the CTEs made the planner pick a nested loop: 2,000 x 2,000 comparisons, 10x slower.)
-- The time is whole seconds plus microseconds: one product of microseconds and an interval is computed in
-- floating point and lost microseconds beyond 285 years from 1970 (9999-12-31T23:59:59.999999Z became year 10000).
WITH rejected AS (
  INSERT INTO rejected_events (kafka_topic, kafka_partition, kafka_offset, record_key, payload, payload_encoding, reason)
  SELECT *
  FROM unnest(CAST(:#rejected_kafka_topic AS text[]), CAST(:#rejected_kafka_partition AS int[]),
              CAST(:#rejected_kafka_offset AS bigint[]), CAST(:#rejected_record_key AS text[]), CAST(:#rejected_payload AS text[]),
              CAST(:#rejected_payload_encoding AS text[]), CAST(:#rejected_reason AS text[]))
  ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING
),
batch AS (
  SELECT *
  FROM unnest(CAST(:#kafka_partition AS int[]), CAST(:#kafka_offset AS bigint[]), CAST(:#event_id AS text[]),
              CAST(:#sensor_id AS text[]), CAST(:#event_time_us AS bigint[]), CAST(:#value AS float8[]))
       AS r(kafka_partition, kafka_offset, event_id, sensor_id, event_time_us, value)
),
first_seen AS (
  SELECT DISTINCT ON (event_id) *
  FROM batch
  ORDER BY event_id, kafka_partition, kafka_offset
),
claimed AS (
  INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset)
  SELECT event_id, sensor_id, kafka_partition, kafka_offset
  FROM first_seen
  ORDER BY event_id
  ON CONFLICT (event_id) DO NOTHING
  RETURNING 1
),
stored AS (
  INSERT INTO metrics (sensor_id, event_id, timestamp, value)
  SELECT sensor_id, event_id, TIMESTAMPTZ 'epoch' + (event_time_us / 1000000) * INTERVAL '1 second'
           + (event_time_us % 1000000) * INTERVAL '1 microsecond', value
  FROM first_seen
  -- reading claimed first makes PostgreSQL finish the processed_events insert before this one starts
  WHERE (SELECT count(*) FROM claimed) >= 0
  ORDER BY kafka_partition, kafka_offset
  ON CONFLICT (event_id) DO NOTHING
  RETURNING 1
)
SELECT count(*) FROM stored
