-- Stores one Kafka batch in one statement: the rows arrive as typed arrays, one per column (the readings' and the
-- rejected records' apart), so the whole batch costs one round trip. Inside the caller's transaction:
--   * rejected records go to rejected_events (once per topic/partition/offset);
--   * of the valid ones, the first occurrence of each event_id in the batch is kept;
--   * each kept event gets its metrics row, keyed by (event time, event_id) and ON CONFLICT DO NOTHING, which is
--     the idempotency claim (processed_events is a view of metrics): an event stored by an earlier batch (or a
--     concurrent consumer) is skipped. It returns the number of new metrics rows.
--   * metrics.id is drawn in partition/offset order, so it follows each sensor's order; the rows are inserted in
--     key order: two consumers meeting on the same events wait for each other in one order and never deadlock,
--     and the rows reach each index page together.
-- Every row's partition exists: create-partitions.sql ran for this batch's event times just before.
-- The time is whole seconds plus microseconds: one product of microseconds and an interval is computed in
-- floating point and lost microseconds beyond 285 years from 1970 (9999-12-31T23:59:59.999999Z became year 10000).
-- Typed arrays, not one JSON array of row objects: the statement cost PostgreSQL a quarter less (docs/decisions.md 19).
-- A contract column beyond the core four is one more array here and one more column below, for example
-- CAST(:#unit AS text[]) after the value array, unit after value in the batch's column names, and unit at the end of
-- both column lists of the insert.
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
  SELECT DISTINCT ON (event_id) *, TIMESTAMPTZ 'epoch' + (event_time_us / 1000000) * INTERVAL '1 second'
         + (event_time_us % 1000000) * INTERVAL '1 microsecond' AS event_time
  FROM batch
  ORDER BY event_id, kafka_partition, kafka_offset
),
-- metrics.id in Kafka order (nextval is evaluated after the sort), the rows in key order below
numbered AS (
  SELECT *, nextval('metrics_id_seq') AS id
  FROM first_seen
  ORDER BY kafka_partition, kafka_offset
),
stored AS (
  INSERT INTO metrics (id, sensor_id, event_id, timestamp, value, kafka_partition, kafka_offset)
  SELECT id, sensor_id, event_id, event_time, value, kafka_partition, kafka_offset
  FROM numbered
  ORDER BY event_time, event_id
  ON CONFLICT (timestamp, event_id) DO NOTHING
  RETURNING 1
)
SELECT count(*) FROM stored
