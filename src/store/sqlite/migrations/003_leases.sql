-- Leases with fencing: a claim sets the owner and the deadline and bumps the
-- token; every write for a claimed run names the token it holds.
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
-- Claimed runs whose lease may expire (swept back into the queue), and runs
-- in flight per workflow (the concurrency cap counts them).
CREATE INDEX runs_leased ON runs(lease_until) WHERE ready = 0 AND lease_until IS NOT NULL;
CREATE INDEX runs_in_flight ON runs(workflow_id) WHERE ready = 0 AND lease_until IS NOT NULL;
-- A definition's `concurrency` cap (NULL = none).
ALTER TABLE workflows ADD COLUMN concurrency INTEGER;
-- Small facts about the store itself (the health probe writes here).
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
