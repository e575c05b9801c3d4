-- Members join by invitation: an admin invites an email with a role, and membership starts only
-- when the user holding that email accepts. The invitation is the same whether or not the email
-- has an account yet, so inviting reveals nothing about who is registered.
-- Re-runnable: every statement checks what is already there.

CREATE TABLE IF NOT EXISTS invitations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Normalized (lower case) as users' emails are compared.
    email           text        NOT NULL CHECK (email = lower(email)),
    role            text        NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    invited_by      bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    -- When it was accepted, declined or revoked, and by whom; null while pending.
    ended_at        timestamptz,
    ended_by        bigint      REFERENCES users (id) ON DELETE SET NULL,
    CHECK ((status = 'pending') = (ended_at IS NULL)),
    CHECK (expires_at > created_at)
);
-- One pending invitation per organization and email: inviting again renews it.
CREATE UNIQUE INDEX IF NOT EXISTS invitations_one_pending_key
    ON invitations (organization_id, email) WHERE status = 'pending';
-- A user's pending invitations, found by their email.
CREATE INDEX IF NOT EXISTS invitations_pending_email_idx
    ON invitations (email) WHERE status = 'pending';
