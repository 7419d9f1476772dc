package org.sensormetrics.consumer;

import java.util.BitSet;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.camel.component.kafka.DefaultKafkaClientFactory;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes the ingest route's Kafka consumers: each an {@link IngestConsumer} (commits that never go back to records of
 * a partition this consumer lost, retries without leaving the group), and each with its own static membership.
 *
 * <p>Static group membership (KIP-345): camel-kafka passes its {@code groupInstanceId} unchanged to each of the
 * route's {@code consumersCount} consumers, and two members with one instance id fence each other. So each live
 * consumer gets its own id, the configured one plus a slot number: "pod-0" becomes "pod-0-0" and "pod-0-1". A
 * consumer takes the lowest free slot and gives it back when it closes. A restarted process therefore asks for the
 * ids it had before, and the group coordinator hands it their partitions at once, without waiting for the session
 * timeout of the members that died with the old process (docs/scaling.md, recovery).
 *
 * <p>A static member that closes stays in the group until its session times out: right for a pod that comes
 * back under its name, but its partitions go unread that long when it does not (scale-down, or a
 * Deployment's rolling update, whose new pods have new names). So a clean close also removes the member
 * from the group with the admin API (KIP-345), and only a crash (kill -9, OOM) keeps it for its restart.
 * (Closing with KIP-1092's LEAVE_GROUP option was tried first: it left the members in the group here.)
 *
 * <p>A blank instance id leaves membership dynamic.
 */
public final class IngestClientFactory extends DefaultKafkaClientFactory implements org.apache.camel.CamelContextAware {

    private static final Logger LOG = LoggerFactory.getLogger(IngestClientFactory.class);
    private static final long REMOVE_TIMEOUT_SECONDS = 5;

    private final BitSet slotsInUse = new BitSet();
    private org.apache.camel.CamelContext camelContext;
    private volatile DatabasePositions positions;

    @Override
    public org.apache.camel.CamelContext getCamelContext() {
        return camelContext;
    }

    @Override
    public void setCamelContext(org.apache.camel.CamelContext camelContext) {
        this.camelContext = camelContext;
        this.positions = new DatabasePositions(camelContext);
    }

    @Override
    @SuppressWarnings("rawtypes")
    public Consumer getConsumer(Properties kafkaProps) {
        String instanceId = kafkaProps.getProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "").trim();
        Properties props = (Properties) kafkaProps.clone();
        if (instanceId.isEmpty()) {
            props.remove(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
            return new IngestConsumer(props, positions, () -> { });
        }
        int slot = takeSlot();
        props.setProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId + "-" + slot);
        // a client id that says which member it is, in the broker's logs and in the group's description
        props.setProperty(ConsumerConfig.CLIENT_ID_CONFIG, instanceId + "-" + slot);
        try {
            return new IngestConsumer(props, positions, new LeaveAndRelease(props, slot, adminProperties(props)));
        } catch (RuntimeException e) {
            releaseSlot(slot);
            throw e;
        }
    }

    /** The consumer's connection settings (servers, TLS, SASL) that an admin client also takes; no client id. */
    static Properties adminProperties(Properties consumer) {
        Properties admin = new Properties();
        for (String name : AdminClientConfig.configNames()) {
            if (consumer.containsKey(name) && !ConsumerConfig.CLIENT_ID_CONFIG.equals(name)) {
                admin.put(name, consumer.get(name));
            }
        }
        return admin;
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

    /** Run once a static member's consumer has closed: it leaves the group and gives its slot back. */
    private final class LeaveAndRelease implements Runnable {
        private final int slot;
        private final String groupId;
        private final String instanceId;
        private final Properties adminProps;
        private final AtomicBoolean released = new AtomicBoolean();

        LeaveAndRelease(Properties props, int slot, Properties adminProps) {
            this.slot = slot;
            this.groupId = props.getProperty(ConsumerConfig.GROUP_ID_CONFIG);
            this.instanceId = props.getProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
            this.adminProps = adminProps;
        }

        // once only: a second close must not free a slot another consumer has taken since
        @Override
        public void run() {
            if (released.compareAndSet(false, true)) {
                try {
                    leaveGroup();
                } finally {
                    releaseSlot(slot);
                }
            }
        }

        private void leaveGroup() {
            try (Admin admin = Admin.create(adminProps)) {
                admin.removeMembersFromConsumerGroup(groupId, new RemoveMembersFromConsumerGroupOptions(List.of(new MemberToRemove(instanceId))))
                        .all().get(REMOVE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                LOG.info("Static member {} left group {}", instanceId, groupId);
            } catch (Exception e) {
                // the member stays until its session times out, as after a crash
                LOG.warn("Static member {} could not leave group {}: {}", instanceId, groupId, e.toString());
                if (e instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}
