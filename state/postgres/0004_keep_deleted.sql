-- aurinko-sync PostgreSQL store, version 4: `sync.keep_deleted`, as
-- SQLite's 0012_keep_deleted.sql.
ALTER TABLE events ADD COLUMN deleted_at timestamptz;
ALTER TABLE messages ADD COLUMN deleted_at timestamptz;
ALTER TABLE contacts ADD COLUMN deleted_at timestamptz;
ALTER TABLE tasks ADD COLUMN deleted_at timestamptz;
