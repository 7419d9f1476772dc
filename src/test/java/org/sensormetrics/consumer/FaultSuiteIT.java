package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

/**
 * The whole fault suite in `mvn verify` (and so in CI): every scenario, 200,000 events each unless
 * -Dfault.events says otherwise, -Dfault.scenarios=kill9,... to pick.
 */
class FaultSuiteIT {

    @Test
    void nothingLostNothingTwiceWhateverBreaks() throws Exception {
        List<FaultSuite.Result> results = FaultSuite.runAll(Long.getLong("fault.events", 200_000),
                System.getProperty("fault.scenarios", ""), Integer.getInteger("fault.repeat", 1));
        FaultSuite.print(results);
        assertEquals(List.of(), results.stream().filter(r -> !r.violations().isEmpty())
                .map(r -> r.scenario() + ": " + r.violations()).toList());
    }
}
