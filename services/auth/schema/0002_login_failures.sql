-- Failed-login counters, one row per attempted email (known or not, so a lockout reveals nothing
-- about which accounts exist). window_started_at is the first failure of the current window.

CREATE TABLE IF NOT EXISTS login_failures (
    email             text        PRIMARY KEY CHECK (email = lower(email)),
    failures          integer     NOT NULL CHECK (failures >= 0),
    window_started_at timestamptz NOT NULL
);
