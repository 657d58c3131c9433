CREATE TABLE workflows (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL,
    latest_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows(id),
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, version)
) WITHOUT ROWID;

-- `seq` orders runs (FIFO, newest-first listing, cursors); `id` is public.
-- `ready = 1` marks a run a worker may claim once `not_before` has passed.
CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    workflow_id      TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    connection_id    TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER,
    ready            INTEGER NOT NULL DEFAULT 1,
    not_before       INTEGER NOT NULL DEFAULT 0,
    lease_until      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_queue ON runs(not_before, seq) WHERE ready = 1;
CREATE INDEX runs_by_workflow ON runs(workflow_id, seq);
CREATE INDEX runs_by_status ON runs(status, seq);
CREATE INDEX runs_finished ON runs(completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE steps (
    run_seq      INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    step_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    output       TEXT,
    error        TEXT,
    warnings     TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    started_at   INTEGER,
    completed_at INTEGER,
    PRIMARY KEY (run_seq, idx)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency_keys(expires_at);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
