-- The storage layout for long-running deployments (docs/decisions.md 13): the reference schema's tables and
-- columns, partitioned by event time so that old days are dropped whole and every index stays append-only.
-- Idempotent: runs at every start when db.schema.create=true. A database that already has the reference
-- schema's unpartitioned tables keeps them (every CREATE below is IF NOT EXISTS) and the service uses its
-- statement for them (store-batch-reference-layout.sql) until it is migrated (routes/storage/migrate/).
--
-- Keys lead with the event time: a batch of live readings inserts at the right-hand edge of each index,
-- so the pages it touches stay in memory however large the table grows, and the partition key is in
-- every unique key as PostgreSQL requires. A redelivered event carries the same timestamp, so
-- (time, event_id) still catches every redelivery.
--
-- No character in this file may be a hash or a question mark: camel-sql would take them for parameters.

-- metrics.id keeps its meaning (a number that follows each sensor's Kafka order) but is no longer the primary
-- key: a unique key on a partitioned table must contain the event time. The sequence is created on its own
-- so that a migrated database continues the numbers it had.
CREATE SEQUENCE IF NOT EXISTS metrics_id_seq AS BIGINT;
CREATE TABLE IF NOT EXISTS metrics (
  id         BIGINT           NOT NULL DEFAULT nextval('metrics_id_seq'),
  sensor_id  VARCHAR(255)     NOT NULL,
  event_id   VARCHAR(255)     NOT NULL,
  timestamp  TIMESTAMPTZ      NOT NULL,
  value      DOUBLE PRECISION NOT NULL,
  created_at TIMESTAMPTZ      NOT NULL DEFAULT NOW(),
  kafka_partition INTEGER,
  kafka_offset    BIGINT,
  PRIMARY KEY (timestamp, event_id)
) PARTITION BY RANGE (timestamp);
ALTER SEQUENCE metrics_id_seq OWNED BY metrics.id;

-- One sensor's readings newest first (GET /api/metrics, read backwards). The primary key serves time ranges across
-- sensors; the reference schema's metrics(sensor_id) and metrics(timestamp) would only repeat these two. Each
-- sensor's new readings go to one place in it (the end of the sensor's range), so its hot pages are one per sensor.
-- Ascending or descending made no difference measured (3,459 and 3,460 MB at 50,000,000 rows, docs/decisions.md 13).
CREATE INDEX IF NOT EXISTS idx_metrics_sensor_timestamp ON metrics (sensor_id, timestamp);

-- processed_events: the idempotency claim, as the seed describes it, plus the event time it is keyed by. A view of
-- metrics, whose primary key is the claim: a table of its own repeated every event's id, sensor and time in a second
-- heap and a second index of the same key, 39% of the bytes stored and of the WAL written per event
-- (docs/decisions.md 23). processed_at is the metric's created_at, which the seed's separate row got from the same
-- transaction's NOW().
-- A database made before kept its processed_events table: it is renamed processed_events_legacy, still dropped
-- partition by partition by retention, and the view shows its rows for the metrics stored before (the ones
-- without Kafka coordinates of their own) and metrics' own for the rest.
DO $$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('processed_events')) = 'p' THEN
    ALTER TABLE metrics ADD COLUMN IF NOT EXISTS kafka_partition INTEGER, ADD COLUMN IF NOT EXISTS kafka_offset BIGINT;
    ALTER TABLE processed_events RENAME TO processed_events_legacy;
  END IF;
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('processed_events')) = 'r' THEN
    RETURN; -- the reference schema's table, until the database is migrated
  ELSIF to_regclass('processed_events_legacy') IS NULL THEN
    CREATE OR REPLACE VIEW processed_events AS
      SELECT event_id, sensor_id, created_at AS processed_at, kafka_partition, kafka_offset, timestamp AS event_time
      FROM metrics;
  ELSE
    CREATE OR REPLACE VIEW processed_events AS
      SELECT event_id, sensor_id, created_at AS processed_at, kafka_partition, kafka_offset, timestamp AS event_time
      FROM metrics WHERE kafka_offset IS NOT NULL
      UNION ALL
      SELECT event_id, sensor_id, processed_at, kafka_partition, kafka_offset, event_time
      FROM processed_events_legacy;
  END IF;
END
$$;

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

-- A reading as the rollups order them, by time and then id: min and max over one-element arrays of it pick a
-- bucket's first and last reading without sorting each bucket (routes/storage/refresh-minute-rollups.sql).
DO $$
BEGIN
  IF to_regtype('sensor_metrics_reading') IS NULL THEN
    CREATE TYPE sensor_metrics_reading AS (time TIMESTAMPTZ, id BIGINT, value DOUBLE PRECISION);
  END IF;
END
$$;

-- Rollups of the readings per sensor per minute and per hour (routes/storage/refresh-rollups.camel.yaml), partitioned by
-- bucket like metrics and kept by their own retention (ROLLUP_RETENTION_DAYS): a bucket outlives its raw rows.
-- first and last are the readings with the earliest and latest timestamp, the lower metrics.id on a tie (the
-- earlier in its sensor's Kafka order) for first, the higher for last.
-- A DO block: the first start after an upgrade also marks every minute already stored, so the refresh rolls up
-- the rows that predate the rollups, a bounded number of minutes per run.
DO $$
BEGIN
  IF to_regclass('metrics_rollup_minute') IS NULL THEN
    CREATE TABLE metrics_rollup_minute (
      sensor_id   VARCHAR(255)     NOT NULL,
      bucket      TIMESTAMPTZ      NOT NULL,
      readings    BIGINT           NOT NULL,
      value_sum   DOUBLE PRECISION NOT NULL,
      value_min   DOUBLE PRECISION NOT NULL,
      value_max   DOUBLE PRECISION NOT NULL,
      first_time  TIMESTAMPTZ      NOT NULL,
      first_value DOUBLE PRECISION NOT NULL,
      last_time   TIMESTAMPTZ      NOT NULL,
      last_value  DOUBLE PRECISION NOT NULL,
      PRIMARY KEY (sensor_id, bucket)
    ) PARTITION BY RANGE (bucket);
    CREATE TABLE metrics_rollup_hour (LIKE metrics_rollup_minute INCLUDING ALL) PARTITION BY RANGE (bucket);
    -- the same buckets over all sensors, for the all-sensors summary: a row per minute or hour, not one per sensor
    CREATE TABLE metrics_rollup_minute_total (
      bucket     TIMESTAMPTZ NOT NULL PRIMARY KEY,
      readings   BIGINT      NOT NULL,
      first_time TIMESTAMPTZ NOT NULL,
      last_time  TIMESTAMPTZ NOT NULL
    ) PARTITION BY RANGE (bucket);
    CREATE TABLE metrics_rollup_hour_total (LIKE metrics_rollup_minute_total INCLUDING ALL) PARTITION BY RANGE (bucket);
    -- minutes whose readings changed since the last refresh, with how many readings the change brought: one row
    -- per minute per batch, no key (a key would make concurrent batches of one minute wait for each other)
    CREATE TABLE metrics_rollup_stale (minute TIMESTAMPTZ NOT NULL, readings INTEGER);
    CREATE INDEX idx_metrics_rollup_stale_minute ON metrics_rollup_stale (minute);
    -- each sensor's hours whose minutes the refresh has just rewritten, within its own transaction
    CREATE TABLE metrics_rollup_stale_hour (sensor_id VARCHAR(255) NOT NULL, hour TIMESTAMPTZ NOT NULL);
    -- since when a service has run with rollups off and not marked what it stored (pause-rollups.sql)
    CREATE TABLE metrics_rollup_paused (since TIMESTAMPTZ NOT NULL);
    IF to_regclass('metrics') IS NOT NULL THEN
      INSERT INTO metrics_rollup_stale (minute, readings) SELECT date_trunc('minute', timestamp, 'UTC'), count(*) FROM metrics GROUP BY 1;
    END IF;
  END IF;
  -- made before the marks counted their readings: those left from then count as none. Looked up first: the
  -- ALTER's lock would queue every batch's mark behind a refresh in flight, at every start.
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('metrics_rollup_stale') AND attname = 'readings') THEN
    ALTER TABLE metrics_rollup_stale ADD COLUMN readings INTEGER;
  END IF;
END
$$;

-- The range a partition of metrics or processed_events holds, read from the catalog, so that partitions made
-- by hand or with another interval count as well as the ones made here.
CREATE OR REPLACE FUNCTION sensor_metrics_partition_range(part regclass, OUT range_start timestamptz, OUT range_end timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE btrim(b[1], '''')::timestamptz END,
         CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE btrim(b[2], '''')::timestamptz END
  FROM pg_class c, regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((.*)\) TO \((.*)\)') AS b
  WHERE c.oid = part
$$;

-- Every range partition of a table, with its range.
CREATE OR REPLACE FUNCTION sensor_metrics_partitions(parent regclass)
RETURNS TABLE (part regclass, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT i.inhrelid::regclass, r.range_start, r.range_end
  FROM pg_inherits i, sensor_metrics_partition_range(i.inhrelid::regclass) AS r
  WHERE i.inhparent = parent AND r.range_start IS NOT NULL
$$;

-- The name suffix of the partitions that start at lo: the UTC date, and the time where they do not start at midnight
-- or are shorter than a day (metrics_p20240115, metrics_p20240115T0600).
CREATE OR REPLACE FUNCTION sensor_metrics_partition_suffix(lo timestamptz, part_interval interval)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD')
         || CASE WHEN part_interval < INTERVAL '1 day' OR lo <> date_trunc('day', lo, 'UTC')
                 THEN to_char(lo AT TIME ZONE 'UTC', '"T"HH24MI') ELSE '' END
$$;

-- Makes sure a partition of each of the parents takes every given hour (hours since 1970, one per hour that has
-- readings): the partitions of the interval that holds it, made where missing and narrowed to the gap between
-- existing ones (those of the first parent, which the others follow). Returns how many it made of the first. Called for every batch before
-- its transaction (nothing to do in the common case: one catalog look-up per distinct interval of the batch)
-- and by the maintenance ahead of time. Created with LIKE and ATTACH, which take only a SHARE UPDATE EXCLUSIVE
-- lock on the parent: running inserts and queries neither wait for it nor make it wait.
CREATE OR REPLACE FUNCTION sensor_metrics_create_partitions_of(parents text[], event_hours bigint[], part_interval interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+00';
  t timestamptz;
  lo timestamptz;
  hi timestamptz;
  below timestamptz;
  above timestamptz;
  covered_from timestamptz := 'infinity';
  covered_to timestamptz := '-infinity';
  parent text;
  made integer := 0;
  serialised boolean := false;
BEGIN
  IF part_interval < INTERVAL '1 hour' OR extract(epoch FROM part_interval)::bigint % 3600 <> 0
     OR extract(month FROM part_interval) <> 0 OR extract(year FROM part_interval) <> 0 THEN
    RAISE EXCEPTION 'partition interval % is not a whole number of hours (e.g. 1 day, 7 days, 6 hours)', part_interval;
  END IF;
  FOR t IN SELECT DISTINCT to_timestamp(h * 3600) FROM unnest(event_hours) AS h ORDER BY 1 LOOP
    CONTINUE WHEN t >= covered_from AND t < covered_to;
    lo := date_bin(part_interval, t, origin);
    -- the common case: the partition named for this interval exists and takes this hour
    SELECT r.range_start, r.range_end INTO covered_from, covered_to
    FROM sensor_metrics_partition_range(to_regclass(format('%I', parents[1] || '_p' || sensor_metrics_partition_suffix(lo, part_interval)))) AS r;
    CONTINUE WHEN t >= covered_from AND t < covered_to;
    IF NOT serialised THEN
      -- one creator at a time across every instance; taken before any lock on the tables, always
      PERFORM pg_advisory_xact_lock(hashtext('sensor_metrics_partitions'));
      serialised := true;
    END IF;
    SELECT max(p.range_end) FILTER (WHERE p.range_end <= t), min(p.range_start) FILTER (WHERE p.range_start > t),
           max(p.range_start) FILTER (WHERE t >= p.range_start AND t < p.range_end),
           max(p.range_end) FILTER (WHERE t >= p.range_start AND t < p.range_end)
    INTO below, above, covered_from, covered_to
    FROM sensor_metrics_partitions(parents[1]::regclass) AS p;
    CONTINUE WHEN covered_from IS NOT NULL; -- made by another instance meanwhile, or by hand
    hi := least(lo + part_interval, above);
    lo := greatest(lo, below);
    FOREACH parent IN ARRAY parents LOOP
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', parent || '_p' || sensor_metrics_partition_suffix(lo, part_interval), parent);
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                     parent, parent || '_p' || sensor_metrics_partition_suffix(lo, part_interval), lo, hi);
    END LOOP;
    made := made + 1;
    covered_from := lo;
    covered_to := hi;
  END LOOP;
  RETURN made;
END
$$;

-- The readings' table.
CREATE OR REPLACE FUNCTION sensor_metrics_create_partitions(event_hours bigint[], part_interval interval)
RETURNS integer LANGUAGE sql AS $$
  SELECT sensor_metrics_create_partitions_of(ARRAY['metrics'], event_hours, part_interval)
$$;

-- Drops the partitions of the parents that hold nothing newer than cutoff, whole (no DELETE, no VACUUM debt), and
-- returns their names. The parents are locked first, in the order given, which is the order the writers lock
-- them, and only for lock_wait: a transaction in flight is waited for, never failed, and if the tables are busy
-- for longer the next run tries again.
CREATE OR REPLACE FUNCTION sensor_metrics_drop_partitions_of(parents text[], cutoff timestamptz, lock_wait interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  p record;
  dropped text[] := '{}';
BEGIN
  IF NOT EXISTS (SELECT 1 FROM unnest(parents) AS parent, sensor_metrics_partitions(parent::regclass) AS x WHERE x.range_end <= cutoff) THEN
    RETURN '';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('sensor_metrics_partitions'));
  PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text, true);
  BEGIN
    EXECUTE 'LOCK TABLE ' || (SELECT string_agg('ONLY ' || quote_ident(parent), ', ') FROM unnest(parents) AS parent)
            || ' IN ACCESS EXCLUSIVE MODE';
  EXCEPTION WHEN lock_not_available THEN
    RETURN 'none: the tables stayed busy for ' || lock_wait;
  END;
  FOR p IN SELECT x.part::text AS name FROM unnest(parents) AS parent, sensor_metrics_partitions(parent::regclass) AS x
           WHERE x.range_end <= cutoff LOOP
    EXECUTE format('DROP TABLE %s', p.name); -- a regclass as text: the name, quoted where it needs to be
    dropped := dropped || p.name;
  END LOOP;
  RETURN array_to_string(dropped, ', ');
END
$$;

-- The readings' table, and the processed_events table of a database made before (no batch writes it any more).
CREATE OR REPLACE FUNCTION sensor_metrics_drop_partitions(cutoff timestamptz, lock_wait interval)
RETURNS text LANGUAGE sql AS $$
  SELECT sensor_metrics_drop_partitions_of(
    ARRAY(SELECT t FROM unnest(ARRAY['processed_events_legacy', 'metrics']) AS t WHERE to_regclass(t) IS NOT NULL),
    cutoff, lock_wait)
$$;

-- The position in the database (docs/reliability.md, failover): per Kafka partition, the offset after the last record
-- a committed batch stored, written in that batch's transaction. Kafka's committed offsets follow the database's
-- commits, so they say what was stored only while the database keeps what it committed; a failover to a lagging
-- replica or a restore from a backup loses the last transactions, and then this table, lost with them, says where
-- to read again.
CREATE TABLE IF NOT EXISTS kafka_positions (
    topic VARCHAR(255) NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (topic, kafka_partition)
);

-- In each batch's transaction: records each partition's next offset (never lowering it: a batch read again after a
-- crash ends where the database already was), after checking that the database still holds what the consumer
-- believes it stored there (expected: Kafka's committed offset when the partition was assigned, then each batch's
-- end; null where unknown). A database that holds less lost committed transactions: the batch fails with SQLSTATE
-- SMPOS, and the consumer reads the partition again from the database's position (IngestConsumer).
CREATE OR REPLACE FUNCTION sensor_metrics_record_positions(topics text[], partitions integer[], expected bigint[], next_offsets bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  behind text;
  recorded integer;
BEGIN
  SELECT string_agg(format('%s-%s holds up to offset %s, not %s', k.topic, k.kafka_partition, k.next_offset, b.expected), '; ')
    INTO behind
    FROM unnest(topics, partitions, expected) AS b(topic, kafka_partition, expected)
    JOIN kafka_positions k ON k.topic = b.topic AND k.kafka_partition = b.kafka_partition
   WHERE k.next_offset < b.expected;
  IF behind IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'SMPOS',
      MESSAGE = 'The database lost records it had stored (a failover or a restore): ' || behind;
  END IF;
  INSERT INTO kafka_positions AS k (topic, kafka_partition, next_offset)
  SELECT * FROM unnest(topics, partitions, next_offsets)
  ON CONFLICT (topic, kafka_partition)
  DO UPDATE SET next_offset = GREATEST(k.next_offset, EXCLUDED.next_offset), updated_at = NOW();
  GET DIAGNOSTICS recorded = ROW_COUNT;
  RETURN recorded;
END
$$;
