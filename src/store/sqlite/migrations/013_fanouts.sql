-- `loop` and `parallel` blocks: one row per started block with its window
-- (`next_idx`, `running`, at most `max_concurrency` unfinished children), its
-- counters and what its body sees of the parent (`scope`); one row per item or
-- branch with the child's key and input. Children are created from these rows,
-- lazily, in the commits that finish their predecessors.
CREATE TABLE fanouts (
    parent_run_id    TEXT NOT NULL,
    step_id          TEXT NOT NULL,
    trigger_type     TEXT NOT NULL,
    workflow_id      TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    connection_id    TEXT,
    root_run_id      TEXT NOT NULL,
    depth            INTEGER NOT NULL,
    deadline_at      INTEGER,
    total            INTEGER NOT NULL,
    next_idx         INTEGER NOT NULL DEFAULT 0,
    max_concurrency  INTEGER NOT NULL,
    stop_on_failure  INTEGER NOT NULL,
    stopped          INTEGER NOT NULL DEFAULT 0,
    running          INTEGER NOT NULL DEFAULT 0,
    completed        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    scope            TEXT NOT NULL,
    PRIMARY KEY (parent_run_id, step_id)
) WITHOUT ROWID;
CREATE TABLE fanout_items (
    parent_run_id TEXT NOT NULL,
    step_id       TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    key           TEXT NOT NULL,
    input         TEXT NOT NULL,
    PRIMARY KEY (parent_run_id, step_id, idx)
) WITHOUT ROWID;
