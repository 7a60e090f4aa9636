-- aurinko-sync store, version 8: operator resync requests, and the configured
-- day counts each provisioning was asked with. See state/README.md.

-- Bumped only by `aurinko-sync resync` and `reset`; the sync writes
-- `resync_handled`, so a pass in flight cannot undo a request.
ALTER TABLE sync_state ADD COLUMN resync_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN resync_handled INTEGER NOT NULL DEFAULT 0;
-- `past=30,future=365`, `within=30` or `all`; NULL before the first
-- provisioning recorded it.
ALTER TABLE sync_state ADD COLUMN range_days TEXT;
