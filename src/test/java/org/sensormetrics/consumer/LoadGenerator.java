package org.sensormetrics.consumer;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Produces sensor readings in the contract's format, keyed by sensor_id, like the reference Go producer,
 * optionally with a share of duplicates and of invalid records of many kinds. Usable on its own:
 *
 * <pre>mvn -q test-compile exec:java -Drun.class=org.sensormetrics.consumer.LoadGenerator -Dexec.args="--events 100000"</pre>
 *
 * Flags (or the reference producer's environment variables): --brokers (KAFKA_BROKERS), --topic
 * (KAFKA_TOPIC), --sensors (SENSOR_COUNT, 1000), --rate (EVENTS_PER_SEC, 0 = as fast as possible),
 * --duration (RUN_DURATION_SEC; with --rate sets --events), --events (100000), --duplicates (share, 0),
 * --invalid (share, 0), --seed, --ids (EVENT_IDS: random, the default, or sequential). Random ids are version-4
 * UUIDs, as the reference producer sends ({@code uuid.New()}): they land anywhere in an index keyed by them.
 * Sequential ids ({@code new UUID(seed, n)}) sort in the order they are produced and always land at its
 * right-hand edge, which flatters any index on event_id; they are there to measure that difference.
 */
public final class LoadGenerator {

    /** Invalid records, one per kind the validator must reject; the name is what the test reports. */
    public static final Map<String, IntFunction<byte[]>> INVALID_KINDS = invalidKinds();

    public record Options(String brokers, String topic, int sensors, long events, int eventsPerSec,
                          double duplicateShare, double invalidShare, long seed, boolean sequentialIds, Clock clock) {
        public Options withEvents(long n) {
            return new Options(brokers, topic, sensors, n, eventsPerSec, duplicateShare, invalidShare, seed, sequentialIds, clock);
        }

        public Options withRate(int perSec) {
            return new Options(brokers, topic, sensors, events, perSec, duplicateShare, invalidShare, seed, sequentialIds, clock);
        }

        public Options withShares(double duplicates, double invalid) {
            return new Options(brokers, topic, sensors, events, eventsPerSec, duplicates, invalid, seed, sequentialIds, clock);
        }

        public Options withSeed(long newSeed) {
            return new Options(brokers, topic, sensors, events, eventsPerSec, duplicateShare, invalidShare, newSeed, sequentialIds, clock);
        }

        public Options withSequentialIds(boolean sequential) {
            return new Options(brokers, topic, sensors, events, eventsPerSec, duplicateShare, invalidShare, seed, sequential, clock);
        }

        /** Event times from this clock, given the event's number, instead of the time it is sent. */
        public Options withClock(Clock eventTime) {
            return new Options(brokers, topic, sensors, events, eventsPerSec, duplicateShare, invalidShare, seed, sequentialIds, eventTime);
        }
    }

    /** The event time of the n-th event. */
    public interface Clock {
        Instant time(long n);
    }

    /** The time the event is sent, as the reference producer stamps it. */
    public static final Clock WALL_CLOCK = n -> Instant.now();

    /** What was sent: valid = distinct valid events, records = everything written to the topic. */
    public record Summary(long valid, long duplicates, long invalid, long records, long millis) {
        @Override
        public String toString() {
            return String.format("sent %d records: %d distinct valid events, %d duplicates, %d invalid, in %.1f s",
                    records, valid, duplicates, invalid, millis / 1000.0);
        }
    }

    private LoadGenerator() {
    }

    public static String eventId(long seed, long n) {
        return new UUID(seed, n).toString();
    }

    /** A version-4 (random) UUID from the generator's own random numbers, so that a seed repeats its run. */
    static String randomEventId(SplittableRandom random) {
        long high = (random.nextLong() & ~0xF000L) | 0x4000L;
        long low = (random.nextLong() & 0x3FFF_FFFF_FFFF_FFFFL) | 0x8000_0000_0000_0000L;
        return new UUID(high, low).toString();
    }

    public static String sensorId(long n, int sensors) {
        return "sensor_" + (n % sensors);
    }

    public static String reading(String sensorId, String eventId, Instant time, double value) {
        return "{\"sensor_id\":\"" + sensorId + "\",\"event_id\":\"" + eventId + "\",\"timestamp\":\"" + time
                + "\",\"value\":" + value + "}";
    }

    public static Summary produce(Options o) {
        return produce(o, Map.of());
    }

    /** The same through a producer that also takes these settings (security.protocol, sasl.*, ssl.*). */
    public static Summary produce(Options o, Map<?, ?> connection) {
        Properties p = new Properties();
        p.putAll(connection);
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.brokers());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 131072);
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 4 * 1024 * 1024);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        SplittableRandom random = new SplittableRandom(o.seed());
        SplittableRandom ids = new SplittableRandom(~o.seed());
        List<IntFunction<byte[]>> kinds = new ArrayList<>(INVALID_KINDS.values());
        List<ProducerRecord<String, byte[]>> recent = new ArrayList<>();
        long start = System.nanoTime();
        long duplicates = 0;
        long invalid = 0;
        long records = 0;
        java.util.concurrent.atomic.AtomicLong failed = new java.util.concurrent.atomic.AtomicLong();
        org.apache.kafka.clients.producer.Callback onAck = (metadata, error) -> {
            if (error != null) {
                failed.incrementAndGet();
            }
        };
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p)) {
            for (long n = 0; n < o.events(); n++) {
                String sensor = sensorId(n, o.sensors());
                Instant time = o.clock().time(n).plusNanos(random.nextInt(1000));
                String eventId = o.sequentialIds() ? eventId(o.seed(), n) : randomEventId(ids);
                var record = new ProducerRecord<>(o.topic(), sensor,
                        reading(sensor, eventId, time, Math.round(random.nextDouble() * 100_000) / 1000.0)
                                .getBytes(StandardCharsets.UTF_8));
                producer.send(record, onAck);
                records++;
                if (o.duplicateShare() > 0 && random.nextDouble() < o.duplicateShare()) {
                    // half right behind the original (same poll), half a while later (another batch)
                    if (random.nextBoolean()) {
                        producer.send(record, onAck);
                    } else {
                        producer.send(recent.isEmpty() ? record : recent.get(random.nextInt(recent.size())), onAck);
                    }
                    duplicates++;
                    records++;
                }
                if (recent.size() < 10_000) {
                    recent.add(record);
                } else {
                    recent.set(random.nextInt(recent.size()), record);
                }
                if (o.invalidShare() > 0 && random.nextDouble() < o.invalidShare()) {
                    producer.send(new ProducerRecord<>(o.topic(), sensor, kinds.get((int) (invalid % kinds.size())).apply((int) invalid)), onAck);
                    invalid++;
                    records++;
                }
                pace(o.eventsPerSec(), n + 1, start);
            }
            producer.flush();
        }
        if (failed.get() > 0) {
            // the counts would be wrong: a check against them would report the broker's loss as ours
            throw new IllegalStateException(failed.get() + " records were not acknowledged by the broker");
        }
        return new Summary(o.events(), duplicates, invalid, records, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }

    private static void pace(int perSec, long sent, long startNanos) {
        if (perSec <= 0 || sent % 100 != 0) {
            return;
        }
        long due = startNanos + sent * 1_000_000_000L / perSec;
        long wait = due - System.nanoTime();
        if (wait > 0) {
            try {
                TimeUnit.NANOSECONDS.sleep(wait);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static Map<String, IntFunction<byte[]>> invalidKinds() {
        Map<String, IntFunction<byte[]>> k = new java.util.LinkedHashMap<>();
        String ts = "\"timestamp\":\"2024-01-15T10:30:45.123456789Z\"";
        k.put("not JSON", i -> utf8("sensor_1 42.5 " + i));
        k.put("JSON array", i -> utf8("[1,2," + i + "]"));
        k.put("missing event_id", i -> utf8("{\"sensor_id\":\"s\"," + ts + ",\"value\":1}"));
        k.put("empty sensor_id", i -> utf8("{\"sensor_id\":\"\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":1}"));
        k.put("value as string", i -> utf8("{\"sensor_id\":\"s\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":\"42\"}"));
        k.put("value not finite", i -> utf8("{\"sensor_id\":\"s\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":1e400}"));
        k.put("null value", i -> utf8("{\"sensor_id\":\"s\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":null}"));
        k.put("bad timestamp", i -> utf8("{\"sensor_id\":\"s\",\"event_id\":\"bad-" + i + "\",\"timestamp\":\"2024-02-30T25:00:00Z\",\"value\":1}"));
        k.put("id too long", i -> utf8("{\"sensor_id\":\"" + "x".repeat(300) + "\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":1}"));
        k.put("empty payload", i -> new byte[0]);
        k.put("binary garbage", i -> new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1, (byte) 0xc3, (byte) 0x28, (byte) i});
        k.put("1 MB value", i -> utf8("{\"sensor_id\":\"s\",\"event_id\":\"bad-" + i + "\",\"pad\":\"" + "a".repeat(1_000_000) + "\"}"));
        k.put("deeply nested", i -> utf8("[".repeat(2000) + "]".repeat(2000)));
        k.put("NUL in id", i -> utf8("{\"sensor_id\":\"s\\u0000\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":1}"));
        k.put("lone surrogate", i -> utf8("{\"sensor_id\":\"s\\ud800\",\"event_id\":\"bad-" + i + "\"," + ts + ",\"value\":1}"));
        return java.util.Collections.unmodifiableMap(k);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) {
        Map<String, String> flags = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            flags.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        int rate = Integer.parseInt(flag(flags, "rate", "EVENTS_PER_SEC", "0"));
        String duration = flag(flags, "duration", "RUN_DURATION_SEC", null);
        long events = rate > 0 && duration != null ? (long) rate * Long.parseLong(duration)
                : Long.parseLong(flag(flags, "events", "EVENTS", "100000"));
        Options o = new Options(flag(flags, "brokers", "KAFKA_BROKERS", "localhost:9092"),
                flag(flags, "topic", "KAFKA_TOPIC", "sensor_metrics"),
                Integer.parseInt(flag(flags, "sensors", "SENSOR_COUNT", "1000")), events, rate,
                Double.parseDouble(flag(flags, "duplicates", "DUPLICATE_SHARE", "0")),
                Double.parseDouble(flag(flags, "invalid", "INVALID_SHARE", "0")),
                Long.parseLong(flag(flags, "seed", "SEED", String.valueOf(System.currentTimeMillis()))),
                "sequential".equals(flag(flags, "ids", "EVENT_IDS", "random")), WALL_CLOCK);
        System.out.println(produce(o));
    }

    private static String flag(Map<String, String> flags, String name, String env, String fallback) {
        String v = flags.get(name);
        if (v == null) {
            v = System.getenv(env);
        }
        return v != null ? v : fallback;
    }
}
