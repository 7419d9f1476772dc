-- Stores one Kafka batch in one statement: the rows arrive as one JSON array (:#rows), so the whole batch
-- costs one round trip. Inside the caller's transaction:
--   * rejected records go to rejected_events (once per topic/partition/offset);
--   * of the valid ones, the first occurrence of each event_id in the batch claims it in processed_events
--     (ON CONFLICT DO NOTHING skips ids stored by earlier batches or by a concurrent consumer);
--   * only claimed events get a metrics row, inserted in partition/offset order so that metrics.id
--     follows each sensor's Kafka order.
-- Claims are made in event_id order, so two consumers never lock the same ids in opposite orders.
WITH batch AS (
  SELECT *
  FROM jsonb_to_recordset(CAST(convert_from(:#rows, 'UTF8') AS jsonb)) AS r(
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
  RETURNING event_id
)
INSERT INTO metrics (sensor_id, event_id, timestamp, value)
SELECT f.sensor_id, f.event_id, TIMESTAMPTZ 'epoch' + f.event_time_us * INTERVAL '1 microsecond', f.value
FROM first_seen f
JOIN claimed c ON c.event_id = f.event_id
ORDER BY f.kafka_partition, f.kafka_offset
