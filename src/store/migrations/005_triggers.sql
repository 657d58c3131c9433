-- How each run started: api, schedule, webhook, replay or batch.
ALTER TABLE runs ADD COLUMN trigger_type TEXT NOT NULL DEFAULT 'api';
CREATE INDEX runs_by_trigger ON runs(trigger_type, seq);

-- One row per scheduled workflow while its schedule is live: the next
-- occurrence not yet handled, computed from the definition in `version`.
CREATE TABLE schedules (
    workflow_id TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Every handled occurrence, once: the primary key is what makes a schedule
-- fire exactly once across restarts and nodes. `run_id` is NULL while an
-- occurrence waits for the previous run (overlap `queue`).
CREATE TABLE schedule_fires (
    workflow_id  TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    run_id       TEXT,
    fired_at     INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, scheduled_at)
);
