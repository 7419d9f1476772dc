package org.sensormetrics.consumer;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import io.micrometer.core.instrument.FunctionCounter;
import org.apache.camel.CamelContext;
import org.apache.camel.CamelContextAware;
import org.apache.camel.Exchange;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-off of a job a timer runs (the rollup refresh): a failed run is logged as one line with its root cause
 * and counted, and the timer's ticks are skipped until the back-off has passed, doubling from {@code initialMs} to
 * {@code maxMs} with each failure in a row, as the ingest route backs off a failed batch. A run that succeeds
 * resets it. Counted as {@code sensor_metrics_<job>_runs_total} by outcome.
 */
public class RetryBackOff implements CamelContextAware {

    private static final Logger LOG = LoggerFactory.getLogger(RetryBackOff.class);

    private final AtomicLong succeeded = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private CamelContext camelContext;
    private String job = "job";
    private long initialMs = 500;
    private long maxMs = 30_000;
    private int failuresInARow;
    private long notBeforeNanos;
    private boolean registered;

    /** Whether a run is due: false while backing off after a failure. */
    public synchronized boolean isDue() {
        return failuresInARow == 0 || System.nanoTime() - notBeforeNanos >= 0;
    }

    public synchronized void succeeded() {
        register();
        succeeded.incrementAndGet();
        if (failuresInARow > 0) {
            LOG.info("{} recovered after {} failed run(s)", job, failuresInARow);
            failuresInARow = 0;
        }
    }

    /** In the route's doCatch: one line with the root cause, and the next run after the back-off. */
    public synchronized void failed(Exchange exchange) {
        register();
        failed.incrementAndGet();
        failuresInARow++;
        long delay = delayMs(initialMs, maxMs, failuresInARow);
        notBeforeNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay);
        Exception cause = exchange.getProperty(Exchange.EXCEPTION_CAUGHT, Exception.class);
        LOG.warn("{} failed, nothing of it committed (failure {} in a row), next run in {} ms: {}", job, failuresInARow, delay,
                cause == null ? "unknown" : IngestProgress.rootMessage(cause));
    }

    /** The back-off after this many failures in a row: initialMs, doubling with each, at most maxMs. */
    static long delayMs(long initialMs, long maxMs, int failuresInARow) {
        return Math.min(maxMs, initialMs << Math.min(failuresInARow - 1, 20));
    }

    private void register() {
        if (registered) {
            return;
        }
        String name = "sensor.metrics." + job.toLowerCase().replace(' ', '.') + ".runs";
        var registry = IngestProgress.meterRegistry(camelContext);
        FunctionCounter.builder(name, succeeded, AtomicLong::get).description(job + " runs, by outcome")
                .tag("outcome", "succeeded").register(registry);
        FunctionCounter.builder(name, failed, AtomicLong::get).description(job + " runs, by outcome")
                .tag("outcome", "failed").register(registry);
        registered = true;
    }

    public long getFailures() {
        return failed.get();
    }

    public void setJob(String job) {
        this.job = job;
    }

    public void setInitialMs(long initialMs) {
        this.initialMs = initialMs;
    }

    public void setMaxMs(long maxMs) {
        this.maxMs = maxMs;
    }

    @Override
    public CamelContext getCamelContext() {
        return camelContext;
    }

    @Override
    public void setCamelContext(CamelContext camelContext) {
        this.camelContext = camelContext;
    }
}
