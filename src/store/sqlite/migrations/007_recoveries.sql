-- How often a run was taken back from a holder that abandoned its lease (start-up recovery
-- or the sweep of an expired lease): a run that keeps crashing the server is failed instead
-- of resumed forever.
ALTER TABLE runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
