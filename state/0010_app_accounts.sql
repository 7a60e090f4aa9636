-- aurinko-sync store, version 10: accounts the app discovers (`[app]
-- accounts = "aurinko"`, GET /v1/am/accounts) and what their listing said,
-- so `state` shows which are synced and why the others are stopped.

-- 1 for an account found in the app's list (its name is aurinko-<id>).
ALTER TABLE accounts ADD COLUMN app_listed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN service_type TEXT;
ALTER TABLE accounts ADD COLUMN email TEXT;
-- Aurinko's tokenStatus: active, invalid, dead.
ALTER TABLE accounts ADD COLUMN token_status TEXT;
-- Why the app does not sync it now ("token invalid", "inactive", "removed
-- from the app"); NULL while it is synced.
ALTER TABLE accounts ADD COLUMN app_stopped TEXT;
-- The last listing that named it.
ALTER TABLE accounts ADD COLUMN app_seen_at TEXT;
