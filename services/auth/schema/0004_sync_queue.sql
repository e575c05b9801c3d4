-- Syncs are durable work. A start queues a log; sync replicas claim queued logs, oldest first,
-- and run each under a lease (a claim id plus heartbeats). A run whose replica died or failed
-- in a way that may pass goes back to the queue after a backoff, up to a few attempts.
-- Re-runnable: every step checks what is already there.

ALTER TABLE sync_logs
    ADD COLUMN IF NOT EXISTS queued_at timestamptz,
    -- Runs started so far: 0 while waiting for its first run.
    ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 0,
    -- A queued log is not claimed before this (the backoff after a failed attempt).
    ADD COLUMN IF NOT EXISTS run_after timestamptz NOT NULL DEFAULT now(),
    -- The current run's lease: heartbeats and the outcome must present it. Null unless running.
    ADD COLUMN IF NOT EXISTS claim uuid,
    -- Which sync replica holds the claim, for operators.
    ADD COLUMN IF NOT EXISTS replica text,
    ALTER COLUMN status SET DEFAULT 'queued',
    ALTER COLUMN started_at DROP NOT NULL,
    ALTER COLUMN started_at DROP DEFAULT,
    DROP CONSTRAINT IF EXISTS sync_logs_status_check,
    DROP CONSTRAINT IF EXISTS sync_logs_check,
    DROP CONSTRAINT IF EXISTS sync_logs_check1,
    DROP CONSTRAINT IF EXISTS sync_logs_status_known,
    DROP CONSTRAINT IF EXISTS sync_logs_ended_has_end,
    DROP CONSTRAINT IF EXISTS sync_logs_ended_has_duration,
    DROP CONSTRAINT IF EXISTS sync_logs_running_has_claim,
    DROP CONSTRAINT IF EXISTS sync_logs_run_has_start,
    DROP CONSTRAINT IF EXISTS sync_logs_attempt_range;

-- Logs from before the queue ran once, when they started.
UPDATE sync_logs SET queued_at = started_at, attempt = 1 WHERE queued_at IS NULL;
-- Runs under way during the upgrade get a lease: if their worker is gone it runs out.
UPDATE sync_logs SET claim = gen_random_uuid() WHERE status = 'running' AND claim IS NULL;

ALTER TABLE sync_logs
    ALTER COLUMN queued_at SET NOT NULL,
    ALTER COLUMN queued_at SET DEFAULT now(),
    ADD CONSTRAINT sync_logs_status_known
        CHECK (status IN ('queued', 'running', 'succeeded', 'partial', 'failed')),
    -- An ended log has its end and duration; a queued or running one has neither.
    ADD CONSTRAINT sync_logs_ended_has_end
        CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL)),
    ADD CONSTRAINT sync_logs_ended_has_duration
        CHECK ((status IN ('queued', 'running')) = (duration_ms IS NULL)),
    ADD CONSTRAINT sync_logs_running_has_claim CHECK ((status = 'running') = (claim IS NOT NULL)),
    ADD CONSTRAINT sync_logs_run_has_start CHECK (status = 'queued' OR started_at IS NOT NULL),
    ADD CONSTRAINT sync_logs_attempt_range CHECK (attempt >= 0);

-- At most one queued or running sync per organization and marketplace.
DROP INDEX IF EXISTS sync_logs_one_running_key;
CREATE UNIQUE INDEX IF NOT EXISTS sync_logs_one_active_key
    ON sync_logs (organization_id, marketplace) WHERE status IN ('queued', 'running');
-- Claiming: the queued logs in the order they may run.
CREATE INDEX IF NOT EXISTS sync_logs_queue_idx ON sync_logs (run_after, id) WHERE status = 'queued';
-- Finding runs whose lease ran out.
CREATE INDEX IF NOT EXISTS sync_logs_lease_idx ON sync_logs (heartbeat_at) WHERE status = 'running';
-- The scheduler's "last queued per organization and marketplace".
DROP INDEX IF EXISTS sync_logs_last_start_idx;
CREATE INDEX IF NOT EXISTS sync_logs_last_queued_idx
    ON sync_logs (organization_id, marketplace, queued_at DESC);
