-- Outbound notifications. `outbox_events` are written in the same commit
-- as the run write that causes them; `webhook_deliveries` (one per event and
-- endpoint that wants it) are claimed under a lease like runs and delivered
-- per (endpoint, subject) in `sequence` order; every attempt is kept.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT,
    events TEXT,            -- JSON array of event types; NULL: all
    workflow_ids TEXT,      -- JSON array of workflow ids; NULL: all
    secret BLOB NOT NULL,   -- sealed by the secret key, like connection secrets
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER,
    disabled_reason TEXT,
    failing_since INTEGER
);
CREATE TABLE outbox_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,  -- the run id, or `endpoint:<id>` for system events
    run_seq INTEGER,
    sequence INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX outbox_events_subject ON outbox_events(subject, sequence);
CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    endpoint_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    subject TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    lease_token INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint_id, subject, sequence)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, seq);
CREATE TABLE webhook_attempts (
    delivery_seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    response TEXT,
    error TEXT,
    PRIMARY KEY (delivery_seq, n)
);
