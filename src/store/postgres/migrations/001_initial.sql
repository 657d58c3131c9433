-- flowctl on PostgreSQL. Times are milliseconds since the epoch (BIGINT), as
-- in the SQLite store; every time decision shared by nodes reads the
-- database clock through flowctl_now_ms().
CREATE FUNCTION flowctl_now_ms() RETURNS BIGINT LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workflows (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    concurrency    INTEGER
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows(id),
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- Run history: state and results. `seq` orders runs; `id` is public.
CREATE TABLE runs (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    workflow_id      TEXT NOT NULL,
    workflow_version BIGINT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    connection_id    TEXT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX runs_by_workflow ON runs(workflow_id, seq);
CREATE INDEX runs_by_status ON runs(status, seq);
CREATE INDEX runs_finished ON runs(completed_at) WHERE completed_at IS NOT NULL;

-- The hot queue: one small row per unfinished run, deleted when it ends.
-- Queued: lease_until IS NULL (due at not_before). Claimed: lease_owner,
-- lease_until and lease_token set; every write of the holder names the token.
CREATE TABLE run_queue (
    seq              BIGINT PRIMARY KEY REFERENCES runs(seq) ON DELETE CASCADE,
    workflow_id      TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    lease_token      BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);
CREATE INDEX run_queue_due ON run_queue(not_before, seq) WHERE lease_until IS NULL;
CREATE INDEX run_queue_leased ON run_queue(lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX run_queue_in_flight ON run_queue(workflow_id) WHERE lease_until IS NOT NULL;

CREATE TABLE steps (
    run_seq      BIGINT NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    step_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    output       TEXT,
    error        TEXT,
    warnings     TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    started_at   BIGINT,
    completed_at BIGINT,
    PRIMARY KEY (run_seq, idx)
);

CREATE TABLE idempotency_keys (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX idempotency_expiry ON idempotency_keys(expires_at);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Stored credentials per provider; `secret` is AEAD ciphertext.
CREATE TABLE connections (
    id         TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    config     TEXT NOT NULL,
    secret     BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX connections_by_provider ON connections(provider, status);

-- Rate limits shared by all nodes: GCRA's theoretical arrival time per API
-- key and category. Unlogged: a crash only resets the buckets.
CREATE UNLOGGED TABLE rate_tat (
    key_id   TEXT NOT NULL,
    category TEXT NOT NULL,
    tat_ms   BIGINT NOT NULL,
    PRIMARY KEY (key_id, category)
) WITH (fillfactor = 50);
