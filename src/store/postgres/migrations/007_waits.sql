-- Runs that wait for people and outside systems (`suspended`), as in the
-- SQLite store: approvals (one per run and step), one hashed token per
-- approver (`sealed` until its mail is sent), one decision per decider,
-- callbacks (stored even before the run reaches its step). Rows go with
-- their run.
CREATE TABLE approvals (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    reason      TEXT NOT NULL,
    approvers   TEXT NOT NULL,
    required    BIGINT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    resolution  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX approvals_by_status ON approvals(status, created_at);
CREATE TABLE approval_tokens (
    token_hash    TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id       TEXT NOT NULL,
    approver      TEXT NOT NULL,
    sealed        BYTEA,
    mail_due      BIGINT,
    mail_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approval_tokens_by_run ON approval_tokens(run_id, step_id);
CREATE INDEX approval_mails_due ON approval_tokens(mail_due) WHERE mail_due IS NOT NULL;
CREATE TABLE approval_decisions (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id    TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decision   TEXT NOT NULL,
    comment    TEXT,
    decided_at BIGINT NOT NULL,
    n          BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_id, step_id, decided_by)
);
CREATE TABLE callbacks (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     TEXT NOT NULL,
    body        TEXT,
    headers     TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
