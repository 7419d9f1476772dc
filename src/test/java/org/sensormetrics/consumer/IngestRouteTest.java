package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;

import org.junit.jupiter.api.Test;

/** The ingest route against a real broker and a real database: every event exactly once, in order. */
class IngestRouteTest {

    private static final Duration CATCH_UP = Duration.ofMinutes(3);

    @Test
    void storesEveryEventExactlyOnceAndCommitsToTheEnd() throws Exception {
        try (Pipeline p = new Pipeline("bulk", 12)) {
            p.startService();
            LoadGenerator.Summary sent = LoadGenerator.produce(p.load(1000, 20_000));
            p.awaitCaughtUp(CATCH_UP);
            assertEquals(sent.valid(), p.count("SELECT count(*) FROM metrics"));
            assertEquals(sent.valid(), p.count("SELECT count(DISTINCT event_id) FROM metrics"));
            assertEquals(sent.valid(), p.count("SELECT count(*) FROM processed_events"));
            assertEquals(0, p.count("SELECT count(*) FROM rejected_events"));
            assertEquals(0, p.lag());
            assertTrue(p.committedOffsets().size() == 12, "all 12 partitions committed");
        }
    }
}
