-- Credentials database: accounts, tenants, their marketplace credentials, sessions and sync logs.
-- Every statement is idempotent so re-applying the file (psql -f) changes nothing.

CREATE TABLE IF NOT EXISTS users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Addresses differ only by case belong to the same person.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));

CREATE TABLE IF NOT EXISTS organizations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS organization_members (
    organization_id bigint      NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text        NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
-- A user's organizations, oldest membership first (login picks the first).
CREATE INDEX IF NOT EXISTS organization_members_user_idx
    ON organization_members (user_id, created_at, organization_id);

-- Secrets are AES-GCM sealed by the auth service; key_id names the key that sealed the row.
CREATE TABLE IF NOT EXISTS api_credentials (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    marketplace     text        NOT NULL CHECK (marketplace IN ('amazon', 'walmart')),
    key_id          text        NOT NULL CHECK (length(key_id) BETWEEN 1 AND 32),
    nonce           bytea       NOT NULL CHECK (length(nonce) = 12),
    ciphertext      bytea       NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, marketplace)
);

CREATE TABLE IF NOT EXISTS sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id bigint      NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS sync_logs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    marketplace     text        NOT NULL CHECK (marketplace IN ('amazon', 'walmart')),
    status          text        NOT NULL DEFAULT 'running'
                                CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
    items_fetched   integer     NOT NULL DEFAULT 0 CHECK (items_fetched >= 0),
    items_written   integer     NOT NULL DEFAULT 0 CHECK (items_written >= 0),
    items_unchanged integer     NOT NULL DEFAULT 0 CHECK (items_unchanged >= 0),
    items_failed    integer     NOT NULL DEFAULT 0 CHECK (items_failed >= 0),
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    duration_ms     bigint      CHECK (duration_ms >= 0),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    trigger         text        NOT NULL CHECK (trigger IN ('manual', 'scheduled')),
    started_by      bigint      REFERENCES users (id) ON DELETE SET NULL,
    -- A finished log has its end and duration; a running one has neither.
    CHECK ((status = 'running') = (finished_at IS NULL)),
    CHECK ((status = 'running') = (duration_ms IS NULL))
);
-- At most one running sync per organization and marketplace.
CREATE UNIQUE INDEX IF NOT EXISTS sync_logs_one_running_key
    ON sync_logs (organization_id, marketplace) WHERE status = 'running';
-- Newest-first listing per organization (keyset on id).
CREATE INDEX IF NOT EXISTS sync_logs_organization_idx ON sync_logs (organization_id, id DESC);
-- The scheduler's "last start per organization and marketplace".
CREATE INDEX IF NOT EXISTS sync_logs_last_start_idx
    ON sync_logs (organization_id, marketplace, started_at DESC);
