-- Stored credentials per provider; `secret` is AEAD ciphertext (never plain text).
CREATE TABLE connections (
    id         TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    config     TEXT NOT NULL,
    secret     BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX connections_by_provider ON connections(provider, status);
