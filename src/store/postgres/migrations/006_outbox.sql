-- Outbound notifications (as the SQLite store's 015_outbox.sql). Events are
-- written in the transaction of the run write that causes them; deliveries
-- are claimed under a lease (FOR UPDATE SKIP LOCKED) by any node and
-- delivered per (endpoint, subject) in `sequence` order.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT,
    events          TEXT[],
    workflow_ids    TEXT[],
    secret          BYTEA NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT,
    disabled_reason TEXT,
    failing_since   BIGINT
);
CREATE TABLE outbox_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    run_seq     BIGINT,
    sequence    BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    data        TEXT NOT NULL,
    UNIQUE (subject, sequence)
);
CREATE TABLE webhook_deliveries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    endpoint_id  TEXT NOT NULL,
    event_seq    BIGINT NOT NULL,
    subject      TEXT NOT NULL,
    sequence     BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    lease_token  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint_id, subject, sequence)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, seq);
CREATE TABLE webhook_attempts (
    delivery_seq BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status_code  BIGINT,
    duration_ms  BIGINT NOT NULL,
    response     TEXT,
    error        TEXT,
    PRIMARY KEY (delivery_seq, n)
);
