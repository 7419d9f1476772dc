package org.sensormetrics.consumer;

import org.apache.camel.Exchange;
import org.apache.camel.Processor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Before each retry of the startup route (prepare-database-then-start-ingest), one line that names what failed,
 * without a stack trace. The root cause (a wrong password, an untrusted certificate, a host name the certificate
 * does not name) is what an operator must read; the exceptions that wrap it only say that no connection could be
 * had, and Camel's own retry line shows the outermost one.
 */
public final class StartupRetryLog implements Processor {

    private static final Logger LOG = LoggerFactory.getLogger(StartupRetryLog.class);

    @Override
    public void process(Exchange exchange) {
        Exception failure = exchange.getProperty(Exchange.EXCEPTION_CAUGHT, Exception.class);
        if (failure == null) {
            failure = exchange.getException();
        }
        LOG.warn("Not ingesting yet, attempt {} failed; retrying with back-off: {}",
                exchange.getIn().getHeader(Exchange.REDELIVERY_COUNTER, Integer.class),
                failure == null ? "no exception recorded" : IngestProgress.rootMessage(failure));
    }
}
