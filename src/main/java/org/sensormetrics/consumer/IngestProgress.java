package org.sensormetrics.consumer;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.camel.Exchange;
import org.apache.camel.component.sql.SqlConstants;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Counts what the ingest route stored, skipped and rejected, logs one progress line every few seconds
 * while busy, and backs off after a failed batch.
 *
 * <p>The back-off runs on the consumer's poll thread before Camel rewinds to the committed offsets, so a
 * database outage costs a retry every few seconds instead of a tight reconnect loop. It doubles from
 * {@code consumer.retry-initial-ms} up to {@code consumer.retry-max-ms} and resets after a good batch.
 */
public class IngestProgress {

    private static final Logger LOG = LoggerFactory.getLogger(IngestProgress.class);
    private static final String COUNTS = "sensorMetricsBatchCounts";

    private final AtomicLong stored = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicInteger consecutiveFailures = new AtomicInteger();
    private long retryInitialMs = 500;
    private long retryMaxMs = 30_000;
    private long progressIntervalMs = 5_000;
    private volatile long lastLogNanos = System.nanoTime();
    private volatile long storedAtLastLog;

    public void setRetryInitialMs(long retryInitialMs) {
        this.retryInitialMs = retryInitialMs;
    }

    public void setRetryMaxMs(long retryMaxMs) {
        this.retryMaxMs = retryMaxMs;
    }

    public void setProgressIntervalMs(long progressIntervalMs) {
        this.progressIntervalMs = progressIntervalMs;
    }

    /** Inside the transaction, after store-batch.sql: remember this batch's counts until it commits. */
    public void batchStored(Exchange exchange) {
        List<?> rows = exchange.getMessage().getBody(List.class);
        long rejects = rows.stream().filter(r -> ((Map<?, ?>) r).containsKey("reason")).count();
        long valid = rows.size() - rejects;
        long inserted = exchange.getMessage().getHeader(SqlConstants.SQL_UPDATE_COUNT, 0L, Long.class);
        exchange.setVariable(COUNTS, new long[] {inserted, valid - inserted, rejects});
    }

    /** After the transaction and the offset commit. */
    public void batchCommitted(Exchange exchange) {
        long[] counts = exchange.getVariable(COUNTS, long[].class);
        if (counts != null) {
            stored.addAndGet(counts[0]);
            duplicates.addAndGet(counts[1]);
            rejected.addAndGet(counts[2]);
        }
        batches.incrementAndGet();
        if (consecutiveFailures.getAndSet(0) > 0) {
            LOG.info("Ingest recovered: batches are committing again");
        }
        logProgressIfDue();
    }

    /** On the poll thread, after a batch failed and was rolled back; Camel rewinds once this returns. */
    public void batchFailed(Exchange exchange) throws InterruptedException {
        failures.incrementAndGet();
        int attempt = consecutiveFailures.incrementAndGet();
        long delay = Math.min(retryMaxMs, retryInitialMs << Math.min(attempt - 1, 20));
        Exception cause = exchange.getException() != null ? exchange.getException()
                : exchange.getProperty(Exchange.EXCEPTION_CAUGHT, Exception.class);
        LOG.warn("Batch failed and was rolled back, nothing committed (attempt {}): {}. Waiting {} ms, then re-reading from the last committed offsets",
                attempt, cause == null ? "unknown" : rootMessage(cause), delay);
        TimeUnit.MILLISECONDS.sleep(delay);
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
            LOG.info("Progress: stored {} ({} events/s), duplicates skipped {}, rejected {}, batches {}, failed batches {}",
                    total, (total - storedAtLastLog) * 1000 / Math.max(1, elapsedMs), duplicates.get(), rejected.get(),
                    batches.get(), failures.get());
            storedAtLastLog = total;
            lastLogNanos = now;
        }
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    public long getStored() {
        return stored.get();
    }

    public long getDuplicates() {
        return duplicates.get();
    }

    public long getRejected() {
        return rejected.get();
    }

    public long getFailures() {
        return failures.get();
    }
}
