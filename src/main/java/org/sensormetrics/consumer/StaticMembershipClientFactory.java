package org.sensormetrics.consumer;

import java.time.Duration;
import java.util.BitSet;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.camel.component.kafka.DefaultKafkaClientFactory;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;

/**
 * Static group membership (KIP-345) for every poll thread of the ingest route. camel-kafka passes its
 * {@code groupInstanceId} unchanged to each of the route's {@code consumersCount} consumers, and two
 * members with one instance id fence each other. This factory gives each live consumer its own id, the
 * configured one plus a slot number: "pod-0" becomes "pod-0-0" and "pod-0-1". A consumer takes the
 * lowest free slot and gives it back when it closes. A restarted process therefore asks for the ids it
 * had before, and the group coordinator hands it their partitions at once, without waiting for the
 * session timeout of the members that died with the old process (docs/scaling.md, recovery).
 *
 * <p>A blank instance id leaves membership dynamic, as without this factory.
 */
public final class StaticMembershipClientFactory extends DefaultKafkaClientFactory {

    private final BitSet slotsInUse = new BitSet();

    @Override
    @SuppressWarnings({"rawtypes", "unchecked"})
    public Consumer getConsumer(Properties kafkaProps) {
        String instanceId = kafkaProps.getProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "").trim();
        Properties props = (Properties) kafkaProps.clone();
        if (instanceId.isEmpty()) {
            props.remove(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
            return super.getConsumer(props);
        }
        int slot = takeSlot();
        props.setProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId + "-" + slot);
        // a client id that says which member it is, in the broker's logs and in the group's description
        props.setProperty(ConsumerConfig.CLIENT_ID_CONFIG, instanceId + "-" + slot);
        try {
            return new SlotConsumer(props, slot);
        } catch (RuntimeException e) {
            releaseSlot(slot);
            throw e;
        }
    }

    private int takeSlot() {
        synchronized (slotsInUse) {
            int slot = slotsInUse.nextClearBit(0);
            slotsInUse.set(slot);
            return slot;
        }
    }

    private void releaseSlot(int slot) {
        synchronized (slotsInUse) {
            slotsInUse.clear(slot);
        }
    }

    /** A consumer that gives its slot back once closed, however it is closed. */
    private final class SlotConsumer extends KafkaConsumer<Object, Object> {
        private final int slot;
        private final AtomicBoolean released = new AtomicBoolean();

        SlotConsumer(Properties props, int slot) {
            super(props);
            this.slot = slot;
        }

        @Override
        public void close() {
            try {
                super.close();
            } finally {
                release();
            }
        }

        @Override
        public void close(Duration timeout) {
            try {
                super.close(timeout);
            } finally {
                release();
            }
        }

        @Override
        public void close(CloseOptions options) {
            try {
                super.close(options);
            } finally {
                release();
            }
        }

        // once only: one close variant may call another, and the slot may be taken again in between
        private void release() {
            if (released.compareAndSet(false, true)) {
                releaseSlot(slot);
            }
        }
    }
}
