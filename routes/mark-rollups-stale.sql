-- Inside each batch's transaction (store-batch.camel.yaml): the minutes its readings fall in (sensorReadings.eventMinutes:
-- minutes since 1970 with the batch's readings in each, "minute:readings" separated by commas) are marked for the
-- next rollup refresh, so a refresh reads only the minutes that changed, and knows how many readings they hold.
-- Committed with the readings or not at all. A batch of duplicates marks its minutes too, which costs the refresh
-- one recount and changes nothing. to_timestamp of whole seconds is exact for any year, as a product of a number
-- and an interval, computed in floating point, is not (store-batch.sql).
INSERT INTO metrics_rollup_stale (minute, readings)
SELECT to_timestamp(CAST(split_part(m, ':', 1) AS bigint) * 60), CAST(split_part(m, ':', 2) AS integer)
FROM unnest(string_to_array(:#${bean:sensorReadings?method=eventMinutes}, ',')) AS m
