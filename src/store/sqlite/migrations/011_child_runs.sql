-- Child runs (`workflow` steps): a run's place in its tree, created once per
-- (parent, step, key). `parent_waits = 1`: the child's finish is recorded on
-- the parent's step and queues the parent in the same commit.
-- `deadline_at`: the parent's deadline, which the child may not outlive.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN parent_step_id TEXT;
ALTER TABLE runs ADD COLUMN root_run_id TEXT;
ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN child_key TEXT;
ALTER TABLE runs ADD COLUMN parent_waits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deadline_at INTEGER;
ALTER TABLE runs ADD COLUMN redrive_count INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX runs_child_once ON runs(parent_run_id, parent_step_id, child_key)
    WHERE parent_run_id IS NOT NULL;
