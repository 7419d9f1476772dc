package org.sensormetrics.consumer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.postgresql.PGConnection;

/**
 * The bulk benchmark's floor: the bare pipeline on the same broker, database layout and events, with no Camel and
 * no validation. A plain {@link KafkaConsumer} loop reads each poll, takes the four fields out of each record,
 * writes the poll with binary COPY in one transaction, and commits its offsets with {@code commitSync} after the
 * transaction committed. What the service spends beyond this is what Camel, validation and the guarantees cost.
 */
final class BarePipeline {

    private static final long MICROS_1970_TO_2000 = 946_684_800_000_000L;
    private static final byte[] COPY_HEADER = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};

    /** Seconds from the first poll with records to the last commit, the poll thread's CPU seconds, its session's CPU seconds. */
    record Result(double seconds, double pollThreadCpu, double sessionCpu) {
    }

    private BarePipeline() {
    }

    static Result run(Properties kafka, String topic, int batchSize, Connection db, long events) throws Exception {
        Properties props = new Properties();
        props.putAll(kafka);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "bare_" + System.nanoTime());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, batchSize);
        JsonFactory json = new JsonFactory();
        db.setAutoCommit(false);
        var copy = db.unwrap(PGConnection.class).getCopyAPI();
        long backend = db.unwrap(PGConnection.class).getBackendPID();
        var threads = ManagementFactory.getThreadMXBean();
        long stored = 0;
        long start = 0;
        double cpuStart = 0;
        double sessionStart = 0;
        try (var consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(java.util.List.of(topic));
            long deadline = System.nanoTime() + Duration.ofMinutes(30).toNanos();
            while (stored < events) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("bare pipeline: " + stored + " of " + events + " after 30 minutes");
                    }
                    continue;
                }
                if (start == 0) {
                    start = System.nanoTime();
                    cpuStart = threads.getCurrentThreadCpuTime() / 1e9;
                    sessionStart = CpuTimes.processSeconds(backend);
                }
                ByteArrayOutputStream bytes = new ByteArrayOutputStream(records.count() * 96);
                DataOutputStream out = new DataOutputStream(bytes);
                out.write(COPY_HEADER);
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    row(out, json, r);
                }
                out.writeShort(-1);
                copy.copyIn("COPY metrics (sensor_id, event_id, timestamp, value, kafka_partition, kafka_offset) FROM STDIN (FORMAT binary)",
                        new ByteArrayInputStream(bytes.toByteArray()));
                db.commit();
                consumer.commitSync();
                stored += records.count();
            }
        }
        return new Result((System.nanoTime() - start) / 1e9, threads.getCurrentThreadCpuTime() / 1e9 - cpuStart,
                CpuTimes.processSeconds(backend) - sessionStart);
    }

    /** One tuple: sensor_id, event_id, timestamp, value from the record's JSON; its partition and offset. */
    private static void row(DataOutputStream out, JsonFactory json, ConsumerRecord<byte[], byte[]> r) throws IOException {
        String sensor = null;
        String event = null;
        String time = null;
        double value = 0;
        try (JsonParser p = json.createParser(r.value())) {
            p.nextToken();
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                switch (field) {
                    case "sensor_id" -> sensor = p.getText();
                    case "event_id" -> event = p.getText();
                    case "timestamp" -> time = p.getText();
                    case "value" -> value = p.getDoubleValue();
                    default -> p.skipChildren();
                }
            }
        }
        Instant t = Instant.parse(time);
        out.writeShort(6);
        text(out, sensor);
        text(out, event);
        out.writeInt(8);
        out.writeLong(t.getEpochSecond() * 1_000_000 + t.getNano() / 1000 - MICROS_1970_TO_2000);
        out.writeInt(8);
        out.writeDouble(value);
        out.writeInt(4);
        out.writeInt(r.partition());
        out.writeInt(8);
        out.writeLong(r.offset());
    }

    private static void text(DataOutputStream out, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }
}
