-- Dashboard sessions: the cookie's value is only stored as its SHA-256 hash.
-- A session lives while its API key is not revoked (checked on every lookup).
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_key ON ui_sessions(key_id);
CREATE INDEX ui_sessions_expiry ON ui_sessions(expires_at);
-- The dashboard searches runs by idempotency key (kept on the run after the key expires).
CREATE INDEX runs_by_idempotency_key ON runs(idempotency_key) WHERE idempotency_key IS NOT NULL;
