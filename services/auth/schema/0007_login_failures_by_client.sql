-- Failed logins are counted per email and client address, so one client's wrong passwords lock
-- only that client out of the email: with a per-email lockout anyone could keep a known email
-- locked. The email's failures across all addresses stay in login_failures (0002), now a much
-- higher cap that bounds guessing spread over many addresses.
-- client is the address key auth's throttle derives (Envoy's x-envoy-external-address, else the
-- gRPC peer; an IPv6 client's /64). Unknown emails are counted alike, so a lockout reveals
-- nothing about which accounts exist.
-- Re-runnable: every statement checks what is already there.

CREATE TABLE IF NOT EXISTS login_client_failures (
    email             text        NOT NULL CHECK (email = lower(email)),
    client            text        NOT NULL,
    failures          integer     NOT NULL CHECK (failures >= 0),
    -- The first failure of the current window.
    window_started_at timestamptz NOT NULL,
    PRIMARY KEY (email, client)
);
-- Housekeeping deletes counters whose window has passed.
CREATE INDEX IF NOT EXISTS login_client_failures_window_idx
    ON login_client_failures (window_started_at);

-- The client a password check under way is for, so its client's failures plus its checks can be
-- capped like the email's. Nullable: rows of replicas that predate this file have none, and they
-- still count towards the email's checks at once.
ALTER TABLE login_checks ADD COLUMN IF NOT EXISTS client text;
