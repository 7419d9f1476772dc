package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.camel.CamelContext;
import org.apache.camel.spi.CamelEvent;
import org.apache.camel.support.EventNotifierSupport;

import org.junit.jupiter.api.Test;

/**
 * The rollups per sensor per minute and per hour, on the real broker and database: after a refresh they equal a
 * GROUP BY over the readings still stored, whatever arrived (live, late, a backfill over days, redeliveries),
 * after a refresh killed half-way, after an upgrade of a database that had readings before the rollups, and after
 * retention dropped the readings' partition, which the rollups outlive until their own retention drops them.
 */
class RollupsTest {

    private static final Duration CATCH_UP = Duration.ofMinutes(3);

    @Test
    void equalGroupByAfterLiveLateBackfilledAndRedeliveredReadings() throws Exception {
        try (Pipeline p = Pipeline.scenario("rollups", 4)) {
            p.startService();
            Instant now = Instant.now();
            LoadGenerator.Summary live = LoadGenerator.produce(p.load(50, 5_000).withShares(0.2, 0.01));
            // a backfill: event times over the last three days, one every 50 s
            LoadGenerator.Summary backfill = LoadGenerator.produce(p.load(50, 5_000).withSeed(2)
                    .withClock(n -> now.minus(3, ChronoUnit.DAYS).plusSeconds(50 * n)));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            // late readings for buckets already rolled up, and the same events once more
            LoadGenerator.Summary late = LoadGenerator.produce(p.load(50, 2_000).withSeed(3)
                    .withClock(n -> now.minus(2, ChronoUnit.DAYS).plusMillis(n * 7)));
            LoadGenerator.produce(p.load(50, 2_000).withSeed(3).withClock(n -> now.minus(2, ChronoUnit.DAYS).plusMillis(n * 7)));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            long stored = live.valid() + backfill.valid() + late.valid();
            p.assertExactlyOnce(stored);
            assertEquals(stored, p.count("SELECT sum(readings) FROM metrics_rollup_minute"));
            assertEquals(stored, p.count("SELECT sum(readings) FROM metrics_rollup_hour"));

            // marks left by a version whose marks did not count their readings
            p.stopService();
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("ALTER TABLE metrics_rollup_stale DROP COLUMN readings");
                st.execute("INSERT INTO metrics_rollup_stale (minute) SELECT DISTINCT date_trunc('minute', timestamp, 'UTC') FROM metrics");
            }
            p.startService();
            p.awaitRollupsExact();

            // an upgraded database: the rollups did not exist when these readings were stored
            p.stopService();
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("DROP TABLE metrics_rollup_minute, metrics_rollup_hour, metrics_rollup_minute_total, metrics_rollup_hour_total, "
                        + "metrics_rollup_stale, metrics_rollup_stale_hour, metrics_rollup_paused");
            }
            p.set("rollup.refresh-max-minutes", "500").set("rollup.refresh-max-readings", "1000"); // several refreshes
            p.startService();
            p.awaitRollupsExact();
            assertEquals(stored, p.count("SELECT sum(readings) FROM metrics_rollup_hour"));
        }
    }

    @Test
    void aRefreshKilledHalfWayIsDoneAgainByTheNext() throws Exception {
        try (Pipeline p = Pipeline.scenario("rollups_killed", 4)) {
            p.startService();
            LoadGenerator.Summary first = LoadGenerator.produce(p.load(20, 2_000));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            try (Connection blocker = p.db(); var st = blocker.createStatement()) {
                // the hour rollups held, so the next refresh writes its minutes and then waits in its second statement
                blocker.setAutoCommit(false);
                st.execute("LOCK TABLE metrics_rollup_hour IN SHARE MODE");
                LoadGenerator.Summary second = LoadGenerator.produce(p.load(20, 2_000).withSeed(2));
                p.awaitCaughtUp(CATCH_UP);
                Pipeline.await("a refresh waiting half-way", Duration.ofSeconds(30), () -> Pipeline.safe(() -> p.count("""
                        SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'metrics_rollup_hour'::regclass""") > 0));
                // its backend ends as in a crash of the service or the database: the transaction is rolled back
                assertEquals(1, p.count("""
                        SELECT count(pg_terminate_backend(pid)) FROM pg_locks
                        WHERE NOT granted AND relation = 'metrics_rollup_hour'::regclass"""));
                blocker.commit();
                p.awaitRollupsExact();
                assertEquals(first.valid() + second.valid(), p.count("SELECT sum(readings) FROM metrics_rollup_hour"));
            }
        }
    }

    @Test
    void marksOfMinutesWhoseReadingsAreGoneDoNotHoldUpTheMinutesBehindThem() throws Exception {
        try (Pipeline p = Pipeline.scenario("rollups_empty_marks", 4)) {
            p.startService();
            Instant hourAgo = Instant.now().minus(1, ChronoUnit.HOURS);
            LoadGenerator.produce(p.load(20, 2_000).withClock(n -> hourAgo.plusMillis(n * 100)));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            p.stopService();
            try (Connection c = p.db(); var st = c.createStatement()) {
                // 1,000 minutes marked whose readings are gone, as after a retention drop, older than the rest
                st.execute("""
                        INSERT INTO metrics_rollup_stale (minute, readings)
                        SELECT date_trunc('minute', now() - INTERVAL '20 days', 'UTC') + n * INTERVAL '1 minute', 0
                        FROM generate_series(0, 999) AS n""");
                // and the minutes with readings marked, their rollups wrong until they are recounted
                st.execute("UPDATE metrics_rollup_minute SET value_sum = value_sum + 1");
                st.execute("""
                        INSERT INTO metrics_rollup_stale (minute, readings)
                        SELECT date_trunc('minute', timestamp, 'UTC'), count(*) FROM metrics GROUP BY 1""");
            }
            assertTrue(p.rollupMismatches("minute") > 0);
            // one refresh of 100 minutes at a time, one timer tick per 10 minutes: only the first tick's refreshes
            // can make them exact within the wait
            p.set("rollup.refresh-interval-ms", "600000").set("rollup.refresh-max-minutes", "100");
            p.startService();
            p.awaitRollupsExact();
            assertEquals(0, p.count("SELECT count(*) FROM metrics_rollup_stale"));
        }
    }

    @Test
    void rollupsOutliveTheReadingsRetentionDropsAndHaveARetentionOfTheirOwn() throws Exception {
        try (Pipeline p = Pipeline.scenario("rollups_retention", 4).set("db.partition.maintenance-interval-ms", "500")) {
            p.startService();
            Instant now = Instant.now();
            // 300 readings each 6 and 2 days ago, and some rejected records
            LoadGenerator.produce(p.load(10, 300).withClock(n -> now.minus(6, ChronoUnit.DAYS).plusSeconds(n)));
            LoadGenerator.produce(p.load(10, 300).withSeed(2).withClock(n -> now.minus(2, ChronoUnit.DAYS).plusSeconds(n)));
            LoadGenerator.Summary live = LoadGenerator.produce(p.load(10, 200).withSeed(3).withShares(0, 0.5));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            String sixDaysAgo = "bucket < now() - INTERVAL '5 days'";
            long oldMinutes = p.count("SELECT count(*) FROM metrics_rollup_minute WHERE " + sixDaysAgo);
            long oldHours = p.count("SELECT count(*) FROM metrics_rollup_hour WHERE " + sixDaysAgo);
            assertTrue(oldMinutes > 0 && oldHours > 0);
            long rejected = p.count("SELECT count(*) FROM rejected_events");
            assertTrue(rejected > 0);
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("UPDATE rejected_events SET rejected_at = now() - INTERVAL '8 days' WHERE id % 2 = 0");
            }
            long oldRejected = p.count("SELECT count(*) FROM rejected_events WHERE rejected_at < now() - INTERVAL '7 days'");

            // the readings kept 4 days: the partition of 6 days ago goes, its rollups stay
            p.stopService();
            p.set("retention.days", "4");
            p.startService();
            Pipeline.await("readings of 6 days ago dropped", Duration.ofSeconds(60), () -> Pipeline.safe(() ->
                    p.count("SELECT count(*) FROM metrics WHERE timestamp < now() - INTERVAL '5 days'") == 0));
            assertEquals(oldMinutes, p.count("SELECT count(*) FROM metrics_rollup_minute WHERE " + sixDaysAgo));
            assertEquals(oldHours, p.count("SELECT count(*) FROM metrics_rollup_hour WHERE " + sixDaysAgo));
            p.awaitRollupsExact();
            // the summary still counts the readings of 6 days ago, from their rollups
            assertEquals(600 + live.valid(), summary(p).get("total_events").asLong());

            // rollups kept 5 days, rejected records 7: the rollups of 6 days ago go, those of 2 days ago stay
            p.stopService();
            p.set("rollup.retention-days", "5").set("rejected.retention-days", "7");
            p.startService();
            Pipeline.await("rollups of 6 days ago dropped", Duration.ofSeconds(60), () -> Pipeline.safe(() ->
                    p.count("SELECT count(*) FROM metrics_rollup_minute WHERE " + sixDaysAgo)
                            + p.count("SELECT count(*) FROM metrics_rollup_hour WHERE " + sixDaysAgo) == 0));
            Pipeline.await("rejected records older than 7 days deleted", Duration.ofSeconds(60), () -> Pipeline.safe(() ->
                    p.count("SELECT count(*) FROM rejected_events") == rejected - oldRejected));
            assertEquals(300 + live.valid(), p.count("SELECT sum(readings) FROM metrics_rollup_hour WHERE bucket >= now() - INTERVAL '5 days'"));
            p.awaitRollupsExact();

            // rollups kept a day, readings 4: the readings of 2 days ago count as themselves in the summary
            p.stopService();
            p.set("rollup.retention-days", "1");
            p.startService();
            Pipeline.await("rollups of 2 days ago dropped", Duration.ofSeconds(60), () -> Pipeline.safe(() ->
                    p.count("SELECT count(*) FROM metrics_rollup_hour_total WHERE bucket < now() - INTERVAL '1 day'") == 0));
            assertEquals(300, p.count("SELECT count(*) FROM metrics WHERE timestamp < now() - INTERVAL '1 day'"));
            assertEquals(300 + live.valid(), summary(p).get("total_events").asLong());
            Instant twoDaysAgo = now.minus(2, ChronoUnit.DAYS);
            assertSummariesEqualTheReadings(p, twoDaysAgo, now, "rollups expired before the readings");
        }
    }

    @Test
    void summaryFromTheRollupsEqualsTheReadingsForAnyWindow() throws Exception {
        try (Pipeline p = Pipeline.scenario("summary_rollups", 4)) {
            p.startService();
            Instant start = Instant.parse("2024-03-10T22:17:23.456789Z");
            // 7 sensors, a reading each 1.3 s over 2.5 hours, across midnight
            p.storeAndRollUp(p.load(7, 7_000).withClock(n -> start.plusMillis(1_300 * n)));
            Instant end = start.plusMillis(1_300 * 7_000);
            assertSummariesEqualTheReadings(p, start, end, "refreshed");
            try (Connection blocker = p.db(); var st = blocker.createStatement()) {
                // the refresh held in its second statement: the late readings' minutes stay marked stale meanwhile
                blocker.setAutoCommit(false);
                st.execute("LOCK TABLE metrics_rollup_hour IN SHARE MODE");
                LoadGenerator.produce(p.load(7, 500).withSeed(2).withClock(n -> start.plusSeconds(17 * n)));
                p.awaitCaughtUp(CATCH_UP);
                assertTrue(p.count("SELECT count(*) FROM metrics_rollup_stale") > 0);
                assertSummariesEqualTheReadings(p, start, end, "late readings not yet rolled up");
                blocker.commit();
            }
            p.awaitRollupsExact();
            assertSummariesEqualTheReadings(p, start, end, "late readings rolled up");

            // rollups off: readings stored now are not rolled up, so the summary counts the readings themselves
            p.stopService();
            p.set("rollup.enabled", "false");
            p.startService();
            LoadGenerator.produce(p.load(7, 300).withSeed(4).withClock(n -> start.plusSeconds(29 * n)));
            p.awaitCaughtUp(CATCH_UP);
            assertSummariesEqualTheReadings(p, start, end, "rollups off");
            var series = p.get("/api/metrics/series?sensorId=sensor_3&step=1m");
            assertEquals(404, series.getKey(), series.getValue());

            // and on again: the minutes stored meanwhile are rolled up too
            p.stopService();
            p.set("rollup.enabled", "true");
            p.startService();
            p.awaitRollupsExact();
            assertSummariesEqualTheReadings(p, start, end, "rollups on again");
        }
    }

    /**
     * The summary API, for every sensor and for one, against count, min and max over the readings themselves: all
     * time, and windows of every kind around [from, to] (part minutes, whole minutes and hours, bounds that are a
     * reading's own timestamp, which the window includes).
     */
    private static void assertSummariesEqualTheReadings(Pipeline p, Instant from, Instant to, String when) throws Exception {
        java.util.Random random = new java.util.Random(11);
        java.util.List<Instant[]> windows = new java.util.ArrayList<>();
        windows.add(new Instant[] {Instant.parse("0001-01-01T00:00:00Z"), Instant.parse("9999-12-31T23:59:59.999999Z")});
        long span = Duration.between(from, to).toMillis();
        java.util.List<Instant> stamps = new java.util.ArrayList<>();
        try (Connection c = p.db(); var st = c.createStatement();
             var rs = st.executeQuery("SELECT timestamp FROM metrics ORDER BY md5(event_id) LIMIT 10")) {
            while (rs.next()) {
                stamps.add(rs.getObject(1, java.time.OffsetDateTime.class).toInstant());
            }
        }
        for (int i = 0; i < 40; i++) {
            Instant a = from.minusMillis(span / 10).plusMillis((long) (random.nextDouble() * span * 1.2)).plusNanos(random.nextInt(1_000_000) * 1_000L);
            Instant b = a.plusMillis((long) (random.nextDouble() * span / (1 + random.nextInt(20))));
            switch (i % 5) {
                case 1 -> a = a.truncatedTo(ChronoUnit.MINUTES);
                case 2 -> {
                    a = a.truncatedTo(ChronoUnit.HOURS);
                    b = b.truncatedTo(ChronoUnit.HOURS).minusNanos(1_000);
                }
                case 3 -> {
                    a = stamps.get(i % stamps.size());
                    b = stamps.get((i + 1) % stamps.size());
                }
                case 4 -> b = a.plusSeconds(random.nextInt(90)); // within a minute or two
                default -> { }
            }
            windows.add(a.isAfter(b) ? new Instant[] {b, a} : new Instant[] {a, b});
        }
        try (Connection c = p.db(); var expected = c.prepareStatement("""
                SELECT count(*), min(timestamp), max(timestamp) FROM metrics
                WHERE (? = '' OR sensor_id = ?) AND timestamp >= ? AND timestamp <= ?""")) {
            for (String sensor : new String[] {"", "sensor_3"}) {
                for (Instant[] w : windows) {
                    expected.setString(1, sensor);
                    expected.setString(2, sensor);
                    expected.setObject(3, w[0].atOffset(java.time.ZoneOffset.UTC));
                    expected.setObject(4, w[1].atOffset(java.time.ZoneOffset.UTC));
                    String want;
                    try (var rs = expected.executeQuery()) {
                        rs.next();
                        want = rs.getLong(1) + " " + instant(rs.getObject(2, java.time.OffsetDateTime.class))
                                + " " + instant(rs.getObject(3, java.time.OffsetDateTime.class));
                    }
                    var json = summary(p, "?from=" + w[0] + "&to=" + w[1] + (sensor.isEmpty() ? "" : "&sensorId=" + sensor));
                    String got = json.get("total_events").asLong() + " " + instant(json.get("from")) + " " + instant(json.get("to"));
                    assertEquals(want, got, when + ", sensor '" + sensor + "', window " + w[0] + " to " + w[1]);
                }
            }
        }
    }

    private static com.fasterxml.jackson.databind.JsonNode summary(Pipeline p) throws Exception {
        return summary(p, "");
    }

    private static com.fasterxml.jackson.databind.JsonNode summary(Pipeline p, String query) throws Exception {
        var answer = p.get("/api/metrics/summary" + query);
        assertEquals(200, answer.getKey(), answer.getValue());
        return new com.fasterxml.jackson.databind.ObjectMapper().readTree(answer.getValue());
    }

    private static Instant instant(java.time.OffsetDateTime time) {
        return time == null ? null : time.toInstant();
    }

    private static Instant instant(com.fasterxml.jackson.databind.JsonNode time) {
        return time.isNull() ? null : java.time.OffsetDateTime.parse(time.asText()).toInstant();
    }

    @Test
    void seriesOfOneSensorPerMinuteHourAndDayFromTheRollups() throws Exception {
        try (Pipeline p = Pipeline.scenario("series", 4)) {
            p.startService();
            Instant start = Instant.parse("2024-03-10T22:00:00Z");
            // 5 sensors, one reading each 9 s over 5 hours across midnight
            p.storeAndRollUp(p.load(5, 2_000).withClock(n -> start.plusSeconds(9 * n)));
            String range = "&from=2024-03-10T00:00:00Z&to=2024-03-12T00:00:00Z";
            for (String step : new String[] {"1m", "1h", "1d"}) {
                var byDefault = p.get("/api/metrics/series?sensorId=sensor_1&step=" + step); // the last 20,160 steps
                assertEquals(200, byDefault.getKey(), byDefault.getValue());
                var answer = p.get("/api/metrics/series?sensorId=sensor_1&step=" + step + range);
                assertEquals(200, answer.getKey(), answer.getValue());
                var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(answer.getValue());
                long count = 0;
                for (var point : json.get("points")) {
                    count += point.get("count").asLong();
                }
                assertEquals(p.count("SELECT count(*) FROM metrics WHERE sensor_id = 'sensor_1'"), count, step);
                String unit = step.equals("1m") ? "minute" : step.equals("1h") ? "hour" : "day";
                assertEquals(p.count("SELECT count(DISTINCT date_trunc('" + unit + "', timestamp, 'UTC')) FROM metrics WHERE sensor_id = 'sensor_1'"),
                        json.get("points").size(), step);
                var first = json.get("points").get(0);
                assertEquals(p.count("SELECT count(*) FROM metrics WHERE sensor_id = 'sensor_1' AND timestamp < '"
                        + Instant.parse(first.get("time").asText().replace("+00:00", "Z")).plus(1, unit.equals("minute") ? ChronoUnit.MINUTES
                        : unit.equals("hour") ? ChronoUnit.HOURS : ChronoUnit.DAYS) + "'"), first.get("count").asLong(), step + " first point");
            }
            for (String bad : new String[] {"?step=1m" + range, "?sensorId=sensor_1&step=5m" + range, "?sensorId=sensor_1" + range,
                    "?sensorId=sensor_1&step=1m&from=2024-03-12T00:00:00Z&to=2024-03-10T00:00:00Z",
                    "?sensorId=sensor_1&step=1m&from=2000-01-01T00:00:00Z&to=2024-01-01T00:00:00Z"}) {
                var answer = p.get("/api/metrics/series" + bad);
                assertEquals(400, answer.getKey(), bad + ": " + answer.getValue());
            }
        }
    }

    /**
     * Minutes marked between the refresh's partition step and its transaction, in hours whose rollup partitions do
     * not exist yet (as batches of a backfill mark them while a refresh runs): the transaction recounts only the
     * minutes whose partitions were made for it, and the rest at the next refresh. Each of the first three refreshes
     * finds such marks, at the contract's distant edges too, so the race is reproduced every time, not by load.
     */
    @Test
    void aRefreshWritesOnlyIntoPartitionsMadeForItWhateverWasMarkedMeanwhile() throws Exception {
        List<String> hours = List.of("0001-01-01T00:00:00Z", "2900-06-01T12:00:00Z", "9999-12-31T23:00:00Z");
        AtomicInteger marked = new AtomicInteger();
        AtomicInteger failedRefreshes = new AtomicInteger();
        AtomicReference<CamelContext> service = new AtomicReference<>();
        try (Pipeline p = Pipeline.scenario("rollups_race", 2)) {
            p.beforeStart(service::set);
            p.beforeStart(context -> context.getManagementStrategy().addEventNotifier(new EventNotifierSupport() {
                @Override
                public void notify(CamelEvent event) throws Exception {
                    if (!(event instanceof CamelEvent.ExchangeSentEvent sent)) {
                        return;
                    }
                    String uri = sent.getEndpoint().getEndpointUri();
                    if (uri.startsWith("direct://refresh-rollups") && sent.getExchange().getException() != null) {
                        failedRefreshes.incrementAndGet();
                    } else if (uri.startsWith("sql:") && uri.contains("rollup-partitions") && marked.get() < hours.size()) {
                        markReadingsOfAnHourWithoutRollupPartitions(p, hours.get(marked.getAndIncrement()));
                    }
                }
            }));
            p.startService();
            Pipeline.await("marks made between the partition step and the transaction", Duration.ofSeconds(30),
                    () -> marked.get() == hours.size());
            p.awaitRollupsExact();
            Pipeline.await("every mark recounted", Duration.ofSeconds(30),
                    () -> Pipeline.safe(() -> p.count("SELECT count(*) FROM metrics_rollup_stale") == 0));
            assertEquals(hours.size() * 5L * 3, p.count("SELECT sum(readings) FROM metrics_rollup_hour"));
            assertEquals(0, failedRefreshes.get(), "refreshes that wrote into a partition that did not exist");
            assertEquals(0, refreshRetry(service.get()).getFailures(), "failed refreshes counted");
        }
    }

    /**
     * A refresh that fails every time (a rollup table gone) is logged as one line per failure and waits out a
     * back-off that doubles, as a failed batch does; once the cause is gone the marks left behind are recounted.
     */
    @Test
    void aFailingRefreshBacksOffAndRecoversWithTheMarksItLeft() throws Exception {
        AtomicReference<CamelContext> service = new AtomicReference<>();
        try (Pipeline p = Pipeline.scenario("rollups_failing", 2).set("consumer.retry-initial-ms", "2000")
                .set("consumer.retry-max-ms", "4000")) {
            p.beforeStart(service::set);
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(10, 500));
            p.awaitCaughtUp(CATCH_UP);
            p.awaitRollupsExact();
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("ALTER TABLE metrics_rollup_minute_total RENAME TO metrics_rollup_minute_total_away");
            }
            RetryBackOff retry = refreshRetry(service.get());
            long before = retry.getFailures();
            long from = System.nanoTime();
            LoadGenerator.Summary more = LoadGenerator.produce(p.load(10, 500).withSeed(2));
            p.awaitCaughtUp(CATCH_UP);
            Pipeline.await("two refreshes failed", Duration.ofSeconds(30), () -> retry.getFailures() - before >= 2);
            // 2 s, then 4 s between attempts, where the timer ticks every 0.5 s: at most one failure per 2 s and one more
            long seconds = Duration.ofNanos(System.nanoTime() - from).toSeconds();
            assertTrue(retry.getFailures() - before <= seconds / 2 + 1, (retry.getFailures() - before) + " failures in " + seconds + " s");
            try (Connection c = p.db(); var st = c.createStatement()) {
                st.execute("ALTER TABLE metrics_rollup_minute_total_away RENAME TO metrics_rollup_minute_total");
            }
            p.awaitRollupsExact();
            assertEquals(sent.valid() + more.valid(), p.count("SELECT sum(readings) FROM metrics_rollup_minute_total"));
            assertEquals(0, p.progress().getFailures(), "ingest went on while the refresh failed");
        }
    }

    private static RetryBackOff refreshRetry(CamelContext context) {
        return context.getRegistry().lookupByNameAndType("rollupRefreshRetry", RetryBackOff.class);
    }

    /** Readings of five sensors in three minutes of the hour (its last microsecond too), stored and marked as a batch would. */
    private static void markReadingsOfAnHourWithoutRollupPartitions(Pipeline p, String hour) throws Exception {
        try (Connection c = p.db(); var st = c.createStatement()) {
            st.execute("SELECT sensor_metrics_create_partitions(ARRAY[floor(extract(epoch FROM TIMESTAMPTZ '" + hour
                    + "') / 3600)::bigint], CAST('1 day' AS interval))");
            st.execute("""
                    INSERT INTO metrics (sensor_id, event_id, timestamp, value)
                    SELECT 's' || s, 'race-' || TIMESTAMPTZ '%1$s' || '-' || s || '-' || m, TIMESTAMPTZ '%1$s' + m, s * 10 + extract(minute FROM m)
                    FROM generate_series(1, 5) AS s,
                         unnest(ARRAY[INTERVAL '0 minutes', INTERVAL '30 minutes 1 second', INTERVAL '59 minutes 59.999999 seconds']) AS m"""
                    .formatted(hour));
            st.execute("""
                    INSERT INTO metrics_rollup_stale (minute, readings)
                    SELECT date_trunc('minute', timestamp, 'UTC'), count(*) FROM metrics
                    WHERE timestamp >= TIMESTAMPTZ '%1$s' AND timestamp < TIMESTAMPTZ '%1$s' + INTERVAL '1 hour' GROUP BY 1"""
                    .formatted(hour));
        }
    }
}
