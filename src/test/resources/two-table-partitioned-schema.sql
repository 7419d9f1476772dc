-- The partitioned layout's tables as deployments made them until processed_events became a view of metrics
-- (docs/decisions.md 23): its own partitioned table beside metrics, which had no Kafka coordinates. The upgrade
-- test starts from it.
CREATE TABLE processed_events (
  event_id        VARCHAR(255) NOT NULL,
  sensor_id       VARCHAR(255) NOT NULL,
  processed_at    TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
  kafka_partition INTEGER,
  kafka_offset    BIGINT,
  event_time      TIMESTAMPTZ  NOT NULL,
  PRIMARY KEY (event_time, event_id)
) PARTITION BY RANGE (event_time);
CREATE SEQUENCE metrics_id_seq AS BIGINT;
CREATE TABLE metrics (
  id         BIGINT           NOT NULL DEFAULT nextval('metrics_id_seq'),
  sensor_id  VARCHAR(255)     NOT NULL,
  event_id   VARCHAR(255)     NOT NULL,
  timestamp  TIMESTAMPTZ      NOT NULL,
  value      DOUBLE PRECISION NOT NULL,
  created_at TIMESTAMPTZ      NOT NULL DEFAULT NOW(),
  PRIMARY KEY (timestamp, event_id)
) PARTITION BY RANGE (timestamp);
ALTER SEQUENCE metrics_id_seq OWNED BY metrics.id;
CREATE INDEX idx_metrics_sensor_timestamp ON metrics (sensor_id, timestamp);
