package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.sensormetrics.consumer.Pipeline.utf8;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.camel.main.Main;
import org.junit.jupiter.api.Test;

/**
 * The documented replay: rejected records exported from rejected_events, fixed, and dropped as a .jsonl
 * file for tools/replay-rejected.camel.yaml, which sends them back into the topic; the service then
 * stores them once, and once only when the same file is replayed again.
 */
class ReplayRejectedTest {

    @Test
    void storesFixedRejectedRecordsOnceEvenWhenReplayedTwice() throws Exception {
        try (Pipeline p = Pipeline.scenario("replay", 3)) {
            p.startService();
            List<Map.Entry<String, byte[]>> records = new ArrayList<>();
            records.add(Map.entry("s-1", utf8(LoadGenerator.reading("s-1", "good-0", Instant.parse("2024-01-15T10:00:00Z"), 1))));
            for (int i = 0; i < 3; i++) {
                records.add(Map.entry("s-1", utf8("{\"sensor_id\":\"s-1\",\"event_id\":\"late-" + i
                        + "\",\"timestamp\":\"15/01/2024 10:0" + i + "\",\"value\":" + i + "}")));
            }
            p.send(records);
            p.awaitCaughtUp(Duration.ofMinutes(2));
            assertEquals(3, p.count("SELECT count(*) FROM rejected_events"));

            // what an operator does: export the payloads, fix them, drop the file
            List<String> fixed = new ArrayList<>();
            try (var c = p.db(); var st = c.createStatement();
                 var rs = st.executeQuery("SELECT payload FROM rejected_events WHERE reason LIKE 'timestamp%' ORDER BY id")) {
                while (rs.next()) {
                    fixed.add(rs.getString(1).replaceAll("\"15/01/2024 10:0(\\d)\"", "\"2024-01-15T10:0$1:00Z\""));
                }
            }
            Path dir = Files.createDirectories(Path.of("target", p.topic + "-replay"));
            Main replay = new Main();
            replay.configure().withRoutesIncludePattern("file:tools/replay-rejected.camel.yaml,file:routes/kafka-security.camel.yaml");
            replay.setPropertyPlaceholderLocations("file:tools/replay.properties");
            replay.addOverrideProperty("kafka.brokers", Pipeline.kafka().bootstrapServers());
            replay.addOverrideProperty("kafka.topic", p.topic);
            replay.addOverrideProperty("replay.directory", dir.toString());
            replay.start();
            try {
                for (int round = 1; round <= 2; round++) {
                    Files.write(dir.resolve("fixed-" + round + ".jsonl.tmp"), fixed);
                    Files.move(dir.resolve("fixed-" + round + ".jsonl.tmp"), dir.resolve("fixed-" + round + ".jsonl"));
                    Path done = dir.resolve("done").resolve("fixed-" + round + ".jsonl");
                    Pipeline.await("file " + round + " replayed", Duration.ofMinutes(1), () -> Files.exists(done));
                    p.awaitCaughtUp(Duration.ofMinutes(2));
                    p.assertExactlyOnce(4);
                }
            } finally {
                replay.stop();
                replay.shutdown();
            }
            assertEquals(3, p.count("SELECT count(*) FROM metrics WHERE event_id LIKE 'late-%' AND timestamp >= '2024-01-15T10:00:00Z'"));
            assertEquals(3, p.progress().getDuplicates(), "the second replay skipped, not stored again");
            assertEquals(3, p.count("SELECT count(*) FROM rejected_events"), "the original rejections stay on record");
        }
    }
}
