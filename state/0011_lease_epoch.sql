-- aurinko-sync store, version 11: sync_state.lease_epoch, as PostgreSQL's
-- store has it (a fleet's lease epoch at each commit); always empty here,
-- since a fleet needs PostgreSQL.

ALTER TABLE sync_state ADD COLUMN lease_epoch INTEGER;
