-- Before each batch's transaction, outside it: the partitions of metrics for every hour
-- the batch's readings fall in (sensorReadings.eventHours: hours since 1970 separated by commas), made where missing, so no
-- valid reading can fail its batch for want of a partition: late data, a backfill of an old topic, any year
-- from 1 to 9999. Returns how many partitions it made (usually 0, after one catalog look-up per interval).
SELECT sensor_metrics_create_partitions(CAST(string_to_array(:#${bean:sensorReadings?method=eventHours}, ',') AS bigint[]),
                                        CAST(:#${properties:db.partition.interval} AS interval))
