package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

import org.apache.camel.impl.DefaultCamelContext;
import org.apache.camel.support.DefaultMessage;
import org.apache.camel.util.CaseInsensitiveMap;
import org.junit.jupiter.api.Test;

/** The headers map against Camel's own (CaseInsensitiveMap), operation by operation. */
class ArrayHeadersMapFactoryTest {

    private static final List<String> NAMES = List.of("kafka.TOPIC", "kafka.topic", "KAFKA.PARTITION", "kafka.partition", "Content-Type",
            "content-type", "CamelHttpQuery", "sensorId", "SENSORID", "ı", "I", "i", "ſ", "S", "\u212A", "k", "K", "Ωmega", "ωMEGA", "");

    @Test
    void camelUsesItForEveryMessage() throws Exception {
        try (DefaultCamelContext context = new DefaultCamelContext()) {
            context.start();
            assertInstanceOf(ArrayHeadersMapFactory.class, context.getCamelContextExtension().getHeadersMapFactory());
            DefaultMessage message = new DefaultMessage(context);
            message.setHeader("Authorization", "Bearer x");
            assertEquals("Bearer x", message.getHeader("authorization"));
            assertInstanceOf(ArrayHeadersMapFactory.Headers.class, message.getHeaders());
        }
    }

    @Test
    void behavesAsCamelsCaseInsensitiveMap() {
        Random random = new Random(11);
        for (int round = 0; round < 2_000; round++) {
            Map<String, Object> camel = new CaseInsensitiveMap();
            Map<String, Object> ours = new ArrayHeadersMapFactory().newMap();
            for (int op = 0; op < 40; op++) {
                String name = NAMES.get(random.nextInt(NAMES.size()));
                Object value = random.nextInt(5);
                switch (random.nextInt(9)) {
                    case 0, 1 -> assertEquals(camel.put(name, value), ours.put(name, value), "put " + name);
                    case 2 -> assertEquals(camel.remove(name), ours.remove(name), "remove " + name);
                    case 3 -> assertEquals(camel.containsKey(name), ours.containsKey(name), "containsKey " + name);
                    case 4 -> {
                        // remove through the entry set's iterator, and change a value through an entry
                        for (Iterator<Map.Entry<String, Object>> it = ours.entrySet().iterator(); it.hasNext(); ) {
                            Map.Entry<String, Object> e = it.next();
                            if (e.getValue().equals(value)) {
                                it.remove();
                                camel.remove(e.getKey());
                            } else if (e.getValue().equals(0)) {
                                e.setValue(9);
                                camel.put(e.getKey(), 9);
                            }
                        }
                    }
                    case 5 -> assertEquals(camel.keySet().remove(name), ours.keySet().remove(name), "keySet().remove " + name);
                    case 6 -> assertEquals(camel.keySet().contains(name), ours.keySet().contains(name), "keySet().contains " + name);
                    case 7 -> {
                        // as KafkaBatchOffsets.release does: the names kept as given, not ignoring case
                        Set<String> kept = new HashSet<>();
                        random.ints(random.nextInt(4), 0, NAMES.size()).forEach(i -> kept.add(NAMES.get(i)));
                        assertEquals(camel.keySet().retainAll(kept), ours.keySet().retainAll(kept), "keySet().retainAll " + kept);
                    }
                    default -> assertEquals(camel.get(name), ours.get(name), "get " + name);
                }
                assertEquals(camel.size(), ours.size());
                // the same entries, names with the case they were first put with; the order is the puts' here
                assertEquals(new TreeMap<>(camel), new TreeMap<>(ours));
                assertEquals(camel, ours);
                assertTrue(ours.equals(camel) && camel.hashCode() == ours.hashCode());
            }
            Map<String, Object> copy = new ArrayHeadersMapFactory().newMap(ours);
            assertEquals(ours, copy);
            copy.clear();
            assertTrue(copy.isEmpty());
        }
    }
}
