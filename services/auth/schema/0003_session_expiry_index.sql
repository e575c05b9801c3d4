-- The periodic purge of ended sessions looks them up by when they expired.
CREATE INDEX IF NOT EXISTS sessions_expires_idx ON sessions (expires_at);
