-- aurinko-sync store, version 12: `sync.keep_deleted` (see state/README.md).
-- With it, a record deleted upstream (or swept by a reconciling pass, or
-- gone with its calendar or task list) stays, marked with the time the
-- store learned it; without it (the default) it is removed and this stays
-- empty. A record that comes back is unmarked. The views leave marked rows
-- out.
ALTER TABLE events ADD COLUMN deleted_at TEXT;
ALTER TABLE messages ADD COLUMN deleted_at TEXT;
ALTER TABLE contacts ADD COLUMN deleted_at TEXT;
ALTER TABLE tasks ADD COLUMN deleted_at TEXT;
