package org.sensormetrics.consumer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.camel.Exchange;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ingest route's Kafka consumer. It knows which of the records Camel holds for a batch are still this
 * consumer's to store and commit, and it retries a failed batch without leaving the group.
 *
 * <p>camel-kafka's batching processor keeps polled records in a queue across polls and sends them when the queue is
 * full or the batching interval has passed; a rebalance in a poll meanwhile does not touch that queue. A batch can so
 * hold records of a partition that was revoked, read on and committed further by another member, and perhaps given
 * back: committing them would set the partition's offset back for good (the broker takes a commit from any member of
 * the current generation), and writing them would race the new owner. So every revocation <em>fences</em> its
 * partitions: records of a partition returned by poll before its latest fence are dropped from the batch that carries
 * them ({@link #fresh}). Records are told apart by their place in the stream poll returns, which the batching
 * processor hands to the route whole and in order: no header is read and no broker asked on the common path.
 *
 * <p>A failed batch ({@link #rewind}) seeks its partitions back to the batch's first records and fences them, so
 * records of those partitions already polled behind it are dropped too, then pauses every partition for the back-off
 * while polling goes on. The consumer thus stays in the group and keeps its partitions through a database outage: no
 * rebalance per failed batch (breakOnFirstError's reconnect, still there for a failure of this rewind itself).
 *
 * <p>The database, not Kafka, is the source of truth for what was stored ({@link DatabasePositions}): a partition it is
 * given is read from the database's position when that is behind the group's committed offset, and so is one whose
 * batch found the database behind what this consumer had stored since. Both mean a failover or a restore lost
 * committed transactions; the records are read again, logged and counted.
 *
 * <p>Only the poll thread calls it (a KafkaConsumer is not thread-safe), the rebalance callbacks included.
 *
 * <p>What it relies on in camel-kafka (4.18), each broken by an upgrade only with a test failing:
 * <ul>
 * <li>the route's {@code kafkaClientFactory} makes every consumer of the route, and Camel subscribes through
 * {@code subscribe(topics, listener)}, so every rebalance passes through {@link Fencing} (CommitSafetyTest);
 * <li>the batching processor hands on the records of each poll whole and in poll order, possibly gathered over
 * several polls: {@link #fresh} counts them and fails the batch otherwise (every ingest test);
 * <li>each record exchange carries a {@code DefaultKafkaManualCommit} whose {@code getConsumer()} is this consumer,
 * and its topic, partition and offset headers as String, Integer and Long (KafkaBatchOffsets; every ingest test);
 * <li>with batching, {@code allowManualCommit} and no auto-commit, Camel commits nothing itself: every commit the
 * group sees is {@link #commit}'s (IngestRouteTest.commitsNothingWhileTheDatabaseRefusesWritesAndLosesNothingAfterwards);
 * <li>an exception that escapes the route makes {@code breakOnFirstError} reconnect the consumer, which then
 * resumes from the committed offsets (the fault suite's kill9 and pg scenarios).
 * </ul>
 */
final class IngestConsumer extends KafkaConsumer<Object, Object> {

    private static final Logger LOG = LoggerFactory.getLogger(IngestConsumer.class);

    private final Runnable afterClose;
    /** Records poll has returned since this consumer was made. */
    private long returned;
    /** Records the route has been handed, in the order poll returned them. */
    private long taken;
    /** Per partition: records of it returned before this count are stale. */
    private final Map<TopicPartition, Long> fences = new HashMap<>();
    private long latestFence;
    /**
     * Per partition: the group's committed offset when it was assigned, then what this consumer committed since: what
     * the database holds of it, as far as this consumer knows. Commits never go below it.
     */
    private final Map<TopicPartition, Long> committed = new HashMap<>();
    /** The database's positions; null: not kept (tests of the consumer alone). */
    private final DatabasePositions positions;
    private final Set<TopicPartition> pausedForBackOff = new HashSet<>();
    /** System.nanoTime() at which the back-off ends; 0: not backing off. */
    private long backOffEnds;

    IngestConsumer(Properties props, DatabasePositions positions, Runnable afterClose) {
        super(props);
        this.positions = positions;
        this.afterClose = afterClose;
    }

    /** The offset up to which the database holds the partition, as far as this consumer knows; null if it does not. */
    Long storedUpTo(TopicPartition tp) {
        return committed.get(tp);
    }

    @Override
    public ConsumerRecords<Object, Object> poll(Duration timeout) {
        Duration wait = timeout;
        if (backOffEnds != 0) {
            long left = backOffEnds - System.nanoTime();
            if (left > 0) {
                // partitions assigned since the back-off began wait too
                pauseForBackOff(assignment());
                wait = Duration.ofNanos(Math.min(left, timeout.toNanos()));
            } else {
                pausedForBackOff.retainAll(assignment());
                resume(pausedForBackOff);
                pausedForBackOff.clear();
                backOffEnds = 0;
            }
        }
        ConsumerRecords<Object, Object> records = super.poll(wait);
        returned += records.count();
        return records;
    }

    /**
     * The records of the next batch Camel sends that are still this consumer's: all of them, unless a partition
     * was revoked or rewound since some of them were polled.
     *
     * @param batch the batch's record exchanges, in the order poll returned them
     */
    List<Exchange> fresh(List<Exchange> batch) {
        long first = taken;
        taken += batch.size();
        if (taken > returned) {
            // the batching processor hands on all that poll returns, in order; anything else would misplace the fences
            throw new IllegalStateException("Kafka batch of " + batch.size() + " records, but only " + (returned - first)
                    + " were polled and not yet handed on");
        }
        if (latestFence <= first) {
            return batch;
        }
        List<Exchange> fresh = new ArrayList<>(batch.size());
        Map<TopicPartition, Integer> dropped = new TreeMap<>(Comparator.comparing(TopicPartition::toString));
        for (int i = 0; i < batch.size(); i++) {
            Exchange record = batch.get(i);
            TopicPartition tp = partitionOf(record);
            Long fence = fences.get(tp);
            if (fence == null || first + i >= fence) {
                fresh.add(record);
            } else {
                dropped.merge(tp, 1, Integer::sum);
            }
        }
        if (latestFence <= taken) {
            fences.clear();
        }
        if (!dropped.isEmpty()) {
            LOG.info("Dropped records polled before their partition was revoked or rewound, neither stored nor committed: {}", dropped);
        }
        return fresh;
    }

    /** The topic and partition a record exchange came from, by its Kafka headers. */
    static TopicPartition partitionOf(Exchange record) {
        return new TopicPartition((String) record.getMessage().getHeader(KafkaConstants.TOPIC),
                (Integer) record.getMessage().getHeader(KafkaConstants.PARTITION));
    }

    /**
     * Commits, in one request, the offsets to resume from, of partitions this consumer owns: never one it does not
     * own now, and never below what it committed before in its current assignment.
     */
    void commit(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout) {
        Set<TopicPartition> owned = assignment();
        Map<TopicPartition, OffsetAndMetadata> safe = new HashMap<>(offsets);
        safe.entrySet().removeIf(e -> {
            Long before = committed.get(e.getKey());
            if (owned.contains(e.getKey()) && (before == null || e.getValue().offset() >= before)) {
                return false;
            }
            LOG.warn("Not committing offset {} of {}: {}", e.getValue().offset(), e.getKey(),
                    owned.contains(e.getKey()) ? "below " + before + ", committed before" : "not assigned to this consumer");
            return true;
        });
        if (safe.isEmpty()) {
            return;
        }
        commitSync(safe, timeout);
        safe.forEach((tp, offset) -> committed.put(tp, offset.offset()));
        if (LOG.isDebugEnabled()) {
            LOG.debug("Committed {} as member {} of generation {}, assignment {}", safe, groupMetadata().memberId(),
                    groupMetadata().generationId(), owned);
        }
    }

    /**
     * After a failed batch: read its partitions again from its first record of each, drop what was polled of them
     * behind it, and poll nothing for backOffMs while staying in the group.
     *
     * @param firstOffsets  per partition, the offset of the batch's first record of it
     * @param databaseBehind the batch failed because the database holds less than this consumer had stored: its
     *                       partitions are read from the database's positions where those are further back
     */
    void rewind(Map<TopicPartition, Long> firstOffsets, long backOffMs, boolean databaseBehind) {
        Set<TopicPartition> owned = assignment();
        if (databaseBehind) {
            Map<TopicPartition, Long> from = new HashMap<>(firstOffsets);
            readAgainWhereTheDatabaseIsBehind(firstOffsets.keySet()).forEach((tp, offset) -> from.merge(tp, offset, Math::min));
            firstOffsets = from;
        }
        firstOffsets.forEach((tp, offset) -> {
            if (owned.contains(tp)) {
                seek(tp, offset);
            }
        });
        fence(firstOffsets.keySet());
        backOffEnds = System.nanoTime() + Math.max(1, TimeUnit.MILLISECONDS.toNanos(backOffMs));
        pauseForBackOff(owned);
    }

    /**
     * The partitions whose position in the database is behind what this consumer knows was stored, with that
     * position: what to read again. Logged, counted, and taken as the new floor of this consumer's commits. A
     * database that cannot be asked now is asked again by the next batch's check.
     */
    private Map<TopicPartition, Long> readAgainWhereTheDatabaseIsBehind(Collection<TopicPartition> partitions) {
        Map<TopicPartition, Long> behind = new HashMap<>();
        if (positions == null) {
            return behind;
        }
        Map<TopicPartition, Long> stored;
        try {
            stored = positions.read(partitions);
        } catch (Exception e) {
            LOG.warn("Could not read the database's positions of {}: {}", partitions, IngestProgress.rootMessage(e));
            return behind;
        }
        Map<TopicPartition, Long> logStart = null;
        for (Map.Entry<TopicPartition, Long> e : stored.entrySet()) {
            TopicPartition tp = e.getKey();
            long position = e.getValue();
            Long known = committed.get(tp);
            if (known == null || position >= known) {
                continue;
            }
            if (logStart == null) {
                logStart = beginningOffsets(stored.keySet());
            }
            // Kafka's first offset; retention may even have passed what this consumer had stored
            long first = Math.min(logStart.getOrDefault(tp, 0L), known);
            long lost = known - position;
            if (first > position) {
                LOG.error("The database holds {} up to offset {}; this consumer had stored it up to {}: a failover or restore lost {} stored "
                        + "records, and offsets {} to {} are gone from Kafka (retention): {} records cannot be read again",
                        tp, String.format("%,d", position), String.format("%,d", known), String.format("%,d", lost),
                        String.format("%,d", position), String.format("%,d", first - 1), String.format("%,d", first - position));
                positions.unrecoverable(first - position);
            } else {
                LOG.warn("The database holds {} up to offset {}; Kafka's group had committed {}: a failover or restore lost {} stored records; "
                        + "reading them again", tp, String.format("%,d", position), String.format("%,d", known), String.format("%,d", lost));
            }
            positions.readAgain(known - Math.max(position, first));
            committed.put(tp, position);
            behind.put(tp, position);
        }
        return behind;
    }

    private void fence(Collection<TopicPartition> partitions) {
        for (TopicPartition tp : partitions) {
            fences.put(tp, returned);
        }
        if (!partitions.isEmpty()) {
            latestFence = returned;
        }
    }

    private void pauseForBackOff(Collection<TopicPartition> partitions) {
        if (pausedForBackOff.addAll(partitions)) {
            pause(partitions);
        }
    }

    @Override
    public void subscribe(Collection<String> topics, ConsumerRebalanceListener listener) {
        super.subscribe(topics, new Fencing(listener));
    }

    @Override
    public void subscribe(Pattern pattern, ConsumerRebalanceListener listener) {
        super.subscribe(pattern, new Fencing(listener));
    }

    /** Fences revoked and lost partitions before Camel's own listener runs; holds new ones through a back-off. */
    private final class Fencing implements ConsumerRebalanceListener {
        private final ConsumerRebalanceListener camel;

        Fencing(ConsumerRebalanceListener camel) {
            this.camel = camel;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            forget(partitions, "Revoked {} from member {}");
            camel.onPartitionsRevoked(partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            forget(partitions, "Lost {} (member {} was no longer in the group)");
            camel.onPartitionsLost(partitions);
        }

        private void forget(Collection<TopicPartition> partitions, String logLine) {
            fence(partitions);
            committed.keySet().removeAll(partitions);
            pausedForBackOff.removeAll(partitions);
            if (!partitions.isEmpty()) {
                LOG.info(logLine, partitions, groupMetadata().memberId());
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            camel.onPartitionsAssigned(partitions);
            if (!partitions.isEmpty()) {
                committed(new HashSet<>(partitions)).forEach((tp, offset) -> {
                    if (offset != null) {
                        committed.put(tp, offset.offset());
                    }
                });
                readAgainWhereTheDatabaseIsBehind(partitions).forEach(IngestConsumer.this::seek);
            }
            if (backOffEnds != 0) {
                pauseForBackOff(partitions);
            }
            if (!partitions.isEmpty()) {
                LOG.info("Assigned {} as member {} of generation {}; now owns {}", partitions, groupMetadata().memberId(),
                        groupMetadata().generationId(), assignment());
            }
        }
    }

    // close(CloseOptions) is left alone: it is not in the 3.9 client Camel JBang compiles this class against, and Camel
    // closes its consumers with close()
    @Override
    public void close() {
        try {
            super.close();
        } finally {
            afterClose.run();
        }
    }

    @Override
    public void close(Duration timeout) {
        try {
            super.close(timeout);
        } finally {
            afterClose.run();
        }
    }
}
