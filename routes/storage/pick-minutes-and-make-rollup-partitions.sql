-- The rollup refresh, step one, outside its transaction: picks the minutes the refresh recounts and makes the
-- partitions of the rollup tables for their hours, where missing, so that a partition made here is there when the
-- transaction writes. The transaction recounts only these minutes (refresh-minute-rollups.sql): a minute marked
-- meanwhile, in an hour whose partitions nobody made yet, waits for the next refresh, which picks it and makes
-- them (docs/decisions.md 25). Partitions follow the marks, so an upgraded database gets them for its older days
-- as the refresh reaches them.
-- Picked: the oldest stale minutes, at most rollup.refresh-max-minutes and about rollup.refresh-max-readings
-- readings (one refresh stays well within the statement timeout), and always the first, however many readings it
-- has. The minute now in progress waits until it has lasted a refresh interval (or, for intervals of a minute or
-- more, until it has ended): every batch marks it, and recounting it at every refresh would read its rows many
-- times over. Its readings are still exact within two refresh intervals of being stored. Minutes ahead of now (a
-- clock that runs ahead, a reading from the future) are not held back.
-- Returns the picked minutes (minutes since 1970, separated by commas: to_timestamp of whole seconds is exact for
-- any year), whether its bounds left marked minutes that were ready (more: the refresh goes on at once only then;
-- going on while it took anything recounted, in a bulk load of a minute just ended, that whole minute again for
-- every batch of it stored meanwhile, docs/decisions.md 25) and how many partitions it made.
WITH stale AS (
  SELECT minute, sum(coalesce(readings, 0)) AS readings FROM metrics_rollup_stale
  WHERE minute + LEAST(INTERVAL '1 minute', CAST(:#${properties:rollup.refresh-interval-ms} AS bigint) * INTERVAL '1 millisecond') <= now()
     OR minute > now()
  GROUP BY minute
  ORDER BY minute
  -- one more than a refresh takes: whether any is left after it
  LIMIT CAST(:#${properties:rollup.refresh-max-minutes} AS integer) + 1
),
picked AS (
  SELECT minute FROM (SELECT minute, row_number() OVER (ORDER BY minute) AS place,
                             sum(readings) OVER (ORDER BY minute) - readings AS before FROM stale) s
  WHERE place <= CAST(:#${properties:rollup.refresh-max-minutes} AS integer)
    AND before < CAST(:#${properties:rollup.refresh-max-readings} AS bigint)
)
SELECT coalesce((SELECT string_agg((extract(epoch FROM minute) / 60)::bigint::text, ',') FROM picked), '') AS minutes,
       (SELECT count(*) FROM stale) > (SELECT count(*) FROM picked) AS more,
       sensor_metrics_create_partitions_of(ARRAY['metrics_rollup_minute', 'metrics_rollup_minute_total', 'metrics_rollup_hour', 'metrics_rollup_hour_total'],
         ARRAY(SELECT DISTINCT floor(extract(epoch FROM minute) / 3600)::bigint FROM picked),
         CAST(:#${properties:db.partition.interval} AS interval)) AS partitions_made
