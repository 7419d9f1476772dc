-- GET /api/rejected: the newest rejected records with their reason and Kafka coordinates. Payloads are cut
-- to :#payloadChars characters here (payload_length says how long the stored one is); the full record stays in
-- the table and in the topic.
SELECT COALESCE(json_agg(page ORDER BY page.id DESC), '[]')::text
FROM (
  SELECT id, kafka_topic, kafka_partition, kafka_offset, record_key, reason, payload_encoding,
         left(payload, :#payloadChars) AS payload, char_length(payload) AS payload_length, rejected_at
  FROM rejected_events
  ORDER BY id DESC
  LIMIT :#limit
) AS page
