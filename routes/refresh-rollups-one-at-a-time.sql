-- First in the refresh's transaction, in a statement of its own: one refresh at a time across every instance. The
-- next statement's snapshot is taken after this lock is held, so a refresh never writes counts older than the
-- ones the refresh before it wrote.
-- JIT off for this transaction's statements: compiling the recount's plan took half a second of every refresh and
-- gave less back (docs/decisions.md 25).
SELECT pg_advisory_xact_lock(hashtext('sensor_metrics_rollups')), set_config('jit', 'off', true)
