package org.sensormetrics.consumer;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.stream.Collectors;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import org.apache.camel.CamelContext;
import org.apache.camel.Exchange;
import org.apache.camel.health.HealthCheckResultBuilder;
import org.apache.camel.impl.health.AbstractHealthCheck;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Counts what the ingest route stored, skipped and rejected, logs one progress line every few seconds
 * while busy, and backs off after a failed batch.
 *
 * <p>The back-off after a failed batch, for which the consumer pauses its partitions before it reads the batch
 * again, makes a database outage cost a retry every few seconds instead of a tight loop. It doubles from
 * {@code consumer.retry-initial-ms} up to {@code consumer.retry-max-ms} and resets after a good batch.
 *
 * <p>The counts are Prometheus counters too (sensor_metrics_events_stored_total, ..._records_rejected_total
 * by reason, ..._batches_total by outcome, ..._batch_size of each committed batch), and as the readiness check {@code ingest} it is DOWN, with the
 * cause, from a failed batch until a batch commits again.
 */
public class IngestProgress extends AbstractHealthCheck {

    private static final Logger LOG = LoggerFactory.getLogger(IngestProgress.class);

    private final AtomicLong stored = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final Map<String, AtomicLong> rejectedByReason = new ConcurrentHashMap<>();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicInteger consecutiveFailures = new AtomicInteger();
    private volatile String lastFailure;
    private volatile MeterRegistry meters;
    private DistributionSummary batchSize;
    private long retryInitialMs = 500;
    private long retryMaxMs = 30_000;
    private long progressIntervalMs = 5_000;
    private volatile long lastLogNanos = System.nanoTime();
    private volatile long storedAtLastLog;

    public IngestProgress() {
        super("sensor-metrics", "ingest");
    }

    /** Readiness only: a failing database is not fixed by restarting the consumer. */
    @Override
    public boolean isLiveness() {
        return false;
    }

    @Override
    protected void doCall(HealthCheckResultBuilder builder, Map<String, Object> options) {
        int failing = consecutiveFailures.get();
        builder.detail("stored", stored.get()).detail("failed.batches", failures.get());
        // records the database lost that Kafka no longer had (DatabasePositions): said here for as long as the process runs
        var gone = meterRegistry().find(DatabasePositions.UNRECOVERABLE).counter();
        long unrecoverable = gone == null ? 0 : (long) gone.count();
        if (unrecoverable > 0) {
            builder.detail("records.unrecoverable", unrecoverable);
        }
        if (failing == 0) {
            builder.up();
            if (unrecoverable > 0) {
                builder.message(unrecoverable + " records the database lost (a failover or restore) were gone from Kafka too and could not be"
                        + " stored again: the log names their offsets");
            }
        } else {
            builder.down().message("last " + failing + " batch attempt(s) failed and were rolled back, retrying: " + lastFailure);
        }
    }

    public void setRetryInitialMs(long retryInitialMs) {
        this.retryInitialMs = retryInitialMs;
    }

    public void setRetryMaxMs(long retryMaxMs) {
        this.retryMaxMs = retryMaxMs;
    }

    public void setProgressIntervalMs(long progressIntervalMs) {
        this.progressIntervalMs = progressIntervalMs;
    }

    /**
     * After the transaction and the offset commit: counts the batch's rows (the body) by what became of them, with
     * the number of new metrics rows store-batch wrote (variable {@code stored}).
     */
    public void batchCommitted(Exchange exchange) {
        List<?> rows = exchange.getMessage().getBody(List.class);
        Map<String, Long> rejects = rows.stream().map(r -> ((BatchRow) r).reasonCode())
                .filter(code -> code != null)
                .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
        long rejectCount = rejects.values().stream().mapToLong(Long::longValue).sum();
        long inserted = exchange.getVariable("stored", 0L, Long.class);
        registerMeters();
        batchSize.record(rows.size());
        stored.addAndGet(inserted);
        duplicates.addAndGet(rows.size() - rejectCount - inserted);
        rejects.forEach((reason, n) -> rejectedCounter(reason).addAndGet(n));
        batches.incrementAndGet();
        if (consecutiveFailures.getAndSet(0) > 0) {
            LOG.info("Ingest recovered: batches are committing again");
        }
        logProgressIfDue();
    }

    /**
     * On the poll thread, after a batch failed and was rolled back: reports it and returns the back-off, which
     * doubles with each failure in a row up to the max, before the batch is read again.
     */
    public long batchFailed(Exchange exchange) {
        registerMeters();
        failures.incrementAndGet();
        int attempt = consecutiveFailures.incrementAndGet();
        long delay = RetryBackOff.delayMs(retryInitialMs, retryMaxMs, attempt);
        Exception cause = exchange.getException() != null ? exchange.getException()
                : exchange.getProperty(Exchange.EXCEPTION_CAUGHT, Exception.class);
        String why = cause == null ? "unknown" : rootMessage(cause);
        lastFailure = why + " (next attempt in " + delay + " ms)";
        LOG.warn("Batch failed and was rolled back, nothing committed (attempt {}): {}. Its partitions pause for {} ms, then are read again from the batch's first records",
                attempt, why, delay);
        return delay;
    }

    private AtomicLong rejectedCounter(String reason) {
        return rejectedByReason.computeIfAbsent(reason, r -> {
            AtomicLong count = new AtomicLong();
            FunctionCounter.builder("sensor.metrics.records.rejected", count, AtomicLong::get)
                    .description("Records rejected as invalid and kept in rejected_events, by reason")
                    .tag("reason", r).register(meterRegistry());
            return count;
        });
    }

    /** Once, on the first batch, when Camel has bound its registry. */
    private void registerMeters() {
        if (meters != null) {
            return;
        }
        synchronized (this) {
            if (meters != null) {
                return;
            }
            MeterRegistry registry = meterRegistry();
            FunctionCounter.builder("sensor.metrics.events.stored", stored, AtomicLong::get)
                    .description("Valid events stored in metrics (processed_events is a view of it)").register(registry);
            FunctionCounter.builder("sensor.metrics.events.duplicates", duplicates, AtomicLong::get)
                    .description("Valid events skipped because their event_id was already stored").register(registry);
            FunctionCounter.builder("sensor.metrics.batches", batches, AtomicLong::get)
                    .description("Kafka batches, by outcome").tag("outcome", "committed").register(registry);
            FunctionCounter.builder("sensor.metrics.batches", failures, AtomicLong::get)
                    .description("Kafka batches, by outcome").tag("outcome", "failed").register(registry);
            batchSize = DistributionSummary.builder("sensor.metrics.batch.size").description("Records per Kafka batch committed")
                    .register(registry);
            meters = registry;
        }
    }

    private MeterRegistry meterRegistry() {
        return meterRegistry(getCamelContext());
    }

    /** The registry Camel scrapes on /observe/metrics; Micrometer's global one where metrics are off. */
    static MeterRegistry meterRegistry(CamelContext context) {
        MeterRegistry registry = context == null ? null : context.getRegistry().findSingleByType(MeterRegistry.class);
        return registry != null ? registry : Metrics.globalRegistry;
    }

    private void logProgressIfDue() {
        long now = System.nanoTime();
        long elapsedMs = TimeUnit.NANOSECONDS.toMillis(now - lastLogNanos);
        if (elapsedMs < progressIntervalMs) {
            return;
        }
        synchronized (this) {
            if (now - lastLogNanos < TimeUnit.MILLISECONDS.toNanos(progressIntervalMs)) {
                return;
            }
            long total = stored.get();
            // looked up, not injected: the YAML DSL creates every bean twice (decisions.md 10), and an injected
            // reference could be the first, discarded, instance that no route ever calls
            KafkaConsumerGroup group = getCamelContext() == null ? null
                    : getCamelContext().getRegistry().findSingleByType(KafkaConsumerGroup.class);
            long lag = group == null ? -1 : group.getTotalLag();
            LOG.info("Progress: stored {} ({} events/s), duplicates skipped {}, rejected {}, batches {}, failed batches {}, lag {}",
                    total, (total - storedAtLastLog) * 1000 / Math.max(1, elapsedMs), duplicates.get(), getRejected(),
                    batches.get(), failures.get(), lag < 0 ? "unknown" : lag);
            storedAtLastLog = total;
            lastLogNanos = now;
        }
    }

    /** The innermost cause, as "SimpleClassName: message" (what a failed batch or health check reports). */
    static String rootMessage(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return hint(String.valueOf(t.getMessage())) + t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    /** What a TLS failure's innermost message means, which it does not say in so many words. */
    private static String hint(String message) {
        if (message.contains("certification path")) {
            return "certificate not trusted: ";
        }
        boolean hostName = message.contains("subject alternative name") || message.contains("No name matching")
                || message.contains("hostname") && message.contains("could not be verified");
        return hostName ? "host name mismatch: " : "";
    }

    public long getStored() {
        return stored.get();
    }

    public long getDuplicates() {
        return duplicates.get();
    }

    public long getRejected() {
        return rejectedByReason.values().stream().mapToLong(AtomicLong::get).sum();
    }

    public long getFailures() {
        return failures.get();
    }
}
