-- aurinko-sync PostgreSQL store, version 3: a fleet ([fleet]), several
-- instances sharing the accounts. PostgreSQL only: SQLite refuses [fleet].

-- Each running instance: registered at start, its heartbeat renewed every
-- third of the lease, removed on a clean stop. An instance whose heartbeat
-- is older than a lease is not counted live.
CREATE TABLE fleet_instances (
    id            text PRIMARY KEY,
    -- Random per process: a second process under a live id is refused.
    session       text NOT NULL,
    host          text,
    pid           bigint,
    version       text,
    -- Its lease_secs, in milliseconds: a heartbeat older is not live.
    lease_ms      bigint NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL
);

-- One row per account any instance may sync: who holds it, until when, and
-- the epoch of the current holding (bumped at every claim). Every commit of
-- an account's data checks, in its transaction, that its instance's session
-- still holds the epoch it claimed: a paused instance that lost the lease
-- cannot write over its successor (fencing).
CREATE TABLE fleet_leases (
    account      text PRIMARY KEY,
    owner        text,
    session      text,
    epoch        bigint NOT NULL DEFAULT 0,
    expires_at   timestamptz,
    acquired_at  timestamptz,
    renewed_at   timestamptz
);
CREATE INDEX fleet_leases_by_session ON fleet_leases (session);

-- The lease epoch under which each collection's state was last committed
-- (empty outside a fleet).
ALTER TABLE sync_state ADD COLUMN lease_epoch bigint;
