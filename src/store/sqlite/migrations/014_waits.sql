-- Runs that wait for people and outside systems (`suspended`).
-- approvals: one per (run, step) that reached an `approval` step; `status` is
-- pending until a decision settles it (approved | rejected), `resolution` the
-- decision that did. approval_tokens: one per approver, only its SHA-256 is
-- kept; `sealed` (the token under the server key) lives until its mail is
-- sent, `mail_due` says when to (try to) send it. approval_decisions: one per
-- decider. callbacks: at most one per (run, step), stored even before the run
-- reaches the step. Rows go with their run (retention).
CREATE TABLE approvals (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    reason      TEXT NOT NULL,
    approvers   TEXT NOT NULL,
    required    INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    resolution  TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX approvals_by_status ON approvals(status, created_at);
CREATE TABLE approval_tokens (
    token_hash    TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    step_id       TEXT NOT NULL,
    approver      TEXT NOT NULL,
    sealed        BLOB,
    mail_due      INTEGER,
    mail_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_tokens_by_run ON approval_tokens(run_id, step_id);
CREATE INDEX approval_mails_due ON approval_tokens(mail_due) WHERE mail_due IS NOT NULL;
CREATE TABLE approval_decisions (
    run_id     TEXT NOT NULL,
    step_id    TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decision   TEXT NOT NULL,
    comment    TEXT,
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_id, decided_by)
);
CREATE TABLE callbacks (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    body        TEXT,
    headers     TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
CREATE TRIGGER runs_purge_waits AFTER DELETE ON runs BEGIN
    DELETE FROM approvals WHERE run_id = OLD.id;
    DELETE FROM approval_tokens WHERE run_id = OLD.id;
    DELETE FROM approval_decisions WHERE run_id = OLD.id;
    DELETE FROM callbacks WHERE run_id = OLD.id;
END;
