-- Password checks under way, one row per check, so logins count only failures yet a parallel
-- burst still gets no more passwords checked than the limit: a check may start only while the
-- email's failures in its window plus the checks under way stay under the limit (five), which
-- also caps the checks at once per email. A check's row goes when the check ends; a row whose
-- replica died stops counting after a minute (started_at) and housekeeping deletes it.
-- Re-runnable: every statement checks what is already there.

CREATE TABLE IF NOT EXISTS login_checks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL CHECK (email = lower(email)),
    started_at timestamptz NOT NULL DEFAULT now()
);
-- The checks under way for one email, and housekeeping's stale rows.
CREATE INDEX IF NOT EXISTS login_checks_email_idx ON login_checks (email, started_at);
CREATE INDEX IF NOT EXISTS login_checks_started_idx ON login_checks (started_at);
