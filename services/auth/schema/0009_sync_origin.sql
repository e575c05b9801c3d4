-- The request that queued a sync (empty for scheduled ones): its W3C traceparent, which the
-- run's trace continues, and its request id, which the run's log lines carry. Re-runnable.
ALTER TABLE sync_logs
    ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS request_id text NOT NULL DEFAULT '';
