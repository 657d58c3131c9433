-- Child runs (`workflow` steps): a run's place in its tree, created once per
-- (parent, step, key). `parent_waits`: the child's finish is recorded on the
-- parent's waiting step and queues the parent in the same transaction.
-- `deadline_at`: the parent's deadline, which the child may not outlive.
-- A suspended parent keeps its queue row, unleased and due at
-- 9223372036854775807 (never), until a child's finish makes it due.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN parent_step_id TEXT;
ALTER TABLE runs ADD COLUMN root_run_id TEXT;
ALTER TABLE runs ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN child_key TEXT;
ALTER TABLE runs ADD COLUMN parent_waits BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE runs ADD COLUMN deadline_at BIGINT;
ALTER TABLE runs ADD COLUMN redrive_count BIGINT NOT NULL DEFAULT 0;
-- Also the index of `?parentRunId=` and of the cascades (its leading column).
CREATE UNIQUE INDEX runs_child_once ON runs(parent_run_id, parent_step_id, child_key)
    WHERE parent_run_id IS NOT NULL;
