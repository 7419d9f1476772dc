package org.sensormetrics.consumer;

import org.apache.camel.TypeConverterLoaderException;
import org.apache.camel.component.micrometer.MicrometerTimerAction;
import org.apache.camel.spi.TypeConverterLoader;
import org.apache.camel.spi.TypeConverterRegistry;
import org.apache.camel.support.SimpleTypeConverter;

/**
 * A direct converter from text to camel-micrometer's timer action, for the routes' {@code action: start} and
 * {@code action: stop}. camel-micrometer converts the action on every exchange, and Camel's enum conversion first
 * looks for a converter of that exact pair: with none, each lookup scans the whole registry (a miss is not
 * remembered), calling {@code Class.getInterfaces} on the way, four times per batch. That was about 6% of the poll
 * threads' sampled allocation (docs/decisions.md 24). Found by META-INF/services/org/apache/camel/TypeConverterLoader,
 * as Camel finds its own converters; under {@code camel run} the routes work the same without it, as before.
 */
public final class TimerActionConverterLoader implements TypeConverterLoader {

    @Override
    public void load(TypeConverterRegistry registry) throws TypeConverterLoaderException {
        registry.addTypeConverter(MicrometerTimerAction.class, String.class, new SimpleTypeConverter(false,
                (type, exchange, value) -> action(value.toString().trim())));
    }

    /** As Camel's enum conversion matches: the constant's name in any case. */
    static MicrometerTimerAction action(String text) {
        for (MicrometerTimerAction action : MicrometerTimerAction.values()) {
            if (action.name().equalsIgnoreCase(text)) {
                return action;
            }
        }
        throw new IllegalArgumentException("Not a timer action (start, stop): " + text);
    }
}
