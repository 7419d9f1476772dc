-- The reference schema as deployments made it before the partitioned layout (the seed's tables and indexes, plus
-- rejected_events, as this service's schema.sql created them until then). Tests and the cost-growth benchmark
-- build the reference layout from it; the migration test starts from it.
CREATE TABLE IF NOT EXISTS processed_events (
  event_id        VARCHAR(255) PRIMARY KEY,
  sensor_id       VARCHAR(255) NOT NULL,
  processed_at    TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
  kafka_partition INTEGER,
  kafka_offset    BIGINT
);
CREATE TABLE IF NOT EXISTS metrics (
  id         BIGSERIAL PRIMARY KEY,
  sensor_id  VARCHAR(255)     NOT NULL,
  event_id   VARCHAR(255)     NOT NULL UNIQUE,
  timestamp  TIMESTAMPTZ      NOT NULL,
  value      DOUBLE PRECISION NOT NULL,
  created_at TIMESTAMPTZ      NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_processed_events_sensor_id ON processed_events (sensor_id);
CREATE INDEX IF NOT EXISTS idx_processed_events_processed_at ON processed_events (processed_at);
CREATE INDEX IF NOT EXISTS idx_metrics_sensor_id ON metrics (sensor_id);
CREATE INDEX IF NOT EXISTS idx_metrics_timestamp ON metrics (timestamp);
CREATE INDEX IF NOT EXISTS idx_metrics_sensor_timestamp ON metrics (sensor_id, timestamp DESC);

-- Records that broke the contract, kept with their Kafka coordinates so an operator can fix and replay them.
-- One row per topic/partition/offset: a redelivered batch cannot record the same record twice.
CREATE TABLE IF NOT EXISTS rejected_events (
  id               BIGSERIAL PRIMARY KEY,
  kafka_topic      VARCHAR(249) NOT NULL,
  kafka_partition  INTEGER      NOT NULL,
  kafka_offset     BIGINT       NOT NULL,
  record_key       TEXT,
  payload          TEXT,
  payload_encoding VARCHAR(8)   NOT NULL,
  reason           TEXT         NOT NULL,
  rejected_at      TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
  UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX IF NOT EXISTS idx_rejected_events_rejected_at ON rejected_events (rejected_at);
