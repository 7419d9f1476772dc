package org.sensormetrics.consumer;

import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes KAFKA_FROM_BEGINNING=false safe to combine with rewinds.
 *
 * <p>The consumer always runs with auto.offset.reset=earliest, because a rewind after a failed batch seeks
 * to the committed offsets and, on a partition with none yet, "latest" would skip the failed records.
 * "Start from the end" is therefore done here, once, before the route starts: every partition of the
 * topic that has no committed offset in the group gets its current end offset committed. Partitions
 * that already have one keep it. If other members are already consuming, the group owns its offsets and
 * this does nothing.
 */
public class KafkaStartPosition {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaStartPosition.class);

    private String brokers;
    private String topic;
    private String groupId;
    private boolean fromBeginning;

    public void setBrokers(String brokers) {
        this.brokers = brokers;
    }

    public void setTopic(String topic) {
        this.topic = topic;
    }

    public void setGroupId(String groupId) {
        this.groupId = groupId;
    }

    public void setFromBeginning(boolean fromBeginning) {
        this.fromBeginning = fromBeginning;
    }

    public void prepare() throws InterruptedException, ExecutionException {
        if (fromBeginning) {
            return;
        }
        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(config)) {
            Map<TopicPartition, OffsetSpec> partitions;
            try {
                partitions = admin.describeTopics(java.util.List.of(topic)).allTopicNames().get().get(topic)
                        .partitions().stream()
                        .collect(Collectors.toMap(p -> new TopicPartition(topic, p.partition()), p -> OffsetSpec.latest()));
            } catch (ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                    LOG.info("Topic {} does not exist yet: the group will read it from its first record", topic);
                    return;
                }
                throw e;
            }
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get();
            partitions.keySet().removeIf(tp -> committed.get(tp) != null);
            if (partitions.isEmpty()) {
                return;
            }
            Map<TopicPartition, OffsetAndMetadata> ends = admin.listOffsets(partitions).all().get().entrySet().stream()
                    .collect(Collectors.toMap(Map.Entry::getKey, e -> new OffsetAndMetadata(e.getValue().offset())));
            try {
                admin.alterConsumerGroupOffsets(groupId, ends).all().get();
                LOG.info("KAFKA_FROM_BEGINNING=false: group {} starts {} partition(s) of {} at their current end", groupId,
                        ends.size(), topic);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof GroupNotEmptyException)) {
                    throw e;
                }
                LOG.info("Group {} already has active members; keeping its offsets", groupId);
            }
        }
    }
}
