-- aurinko-sync PostgreSQL store, version 2: accounts the app discovers
-- (SQLite's version 10; see state/0010_app_accounts.sql).

ALTER TABLE accounts ADD COLUMN app_listed boolean NOT NULL DEFAULT false;
ALTER TABLE accounts ADD COLUMN service_type text;
ALTER TABLE accounts ADD COLUMN email text;
ALTER TABLE accounts ADD COLUMN token_status text;
ALTER TABLE accounts ADD COLUMN app_stopped text;
ALTER TABLE accounts ADD COLUMN app_seen_at timestamptz;
