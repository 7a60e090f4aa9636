-- aurinko-sync store, version 7: how each account's discovery (the calendar,
-- task list and mail folder lists) fares, so `state` can say that an account
-- cannot reach Aurinko even before any collection exists.

ALTER TABLE accounts ADD COLUMN discovery_error TEXT;
ALTER TABLE accounts ADD COLUMN discovery_error_class TEXT;
ALTER TABLE accounts ADD COLUMN discovery_failing_since TEXT;
ALTER TABLE accounts ADD COLUMN discovery_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN discovery_success_at TEXT;
