-- aurinko-sync store, version 15: a history of runs (see state/README.md):
-- each `run --catch-up`, and each batch of the daemon's passes, with what
-- it did per collection. Kept for `sync.runs_keep_days`.
CREATE TABLE runs (
    run_id       INTEGER PRIMARY KEY,
    mode         TEXT NOT NULL,
    instance     TEXT,
    started_at   TEXT NOT NULL,
    ended_at     TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    -- Every pass, its pages and API calls, idle ones included (a daemon's
    -- idle passes have no row in run_collections).
    passes       INTEGER NOT NULL,
    pages        INTEGER NOT NULL,
    requests     INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_by_end ON runs (ended_at);

CREATE TABLE run_collections (
    run_id         INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    account        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    collection_id  TEXT NOT NULL,
    passes         INTEGER NOT NULL,
    upserted       INTEGER NOT NULL,
    deleted        INTEGER NOT NULL,
    swept          INTEGER NOT NULL,
    pages          INTEGER NOT NULL,
    requests       INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    error          TEXT,
    PRIMARY KEY (run_id, account, kind, collection_id)
) STRICT;
