-- How often a run was taken back from a holder that abandoned its lease (the sweep of an
-- expired lease): a run that keeps crashing its node is failed instead of resumed forever.
ALTER TABLE run_queue ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
