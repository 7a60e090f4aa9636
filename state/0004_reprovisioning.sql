-- aurinko-sync store, version 4: re-provisioning after permanent failures, and why a
-- collection was last provisioned again.

ALTER TABLE sync_state ADD COLUMN permanent_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN reprovisioned_after_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN reprovision_reason TEXT;
ALTER TABLE sync_state ADD COLUMN reprovisioned_at TEXT;
