-- aurinko-sync store, version 1. See state/README.md for what each column means.

CREATE TABLE accounts (
    name            TEXT PRIMARY KEY,
    auth_error      TEXT,
    auth_error_at   TEXT,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TABLE calendars (
    account         TEXT NOT NULL,
    calendar_id     TEXT NOT NULL,
    name            TEXT,
    is_primary      INTEGER NOT NULL DEFAULT 0,
    access_role     TEXT,
    raw             TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    removed_at      TEXT,
    PRIMARY KEY (account, calendar_id)
) STRICT;

CREATE TABLE sync_state (
    account              TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    collection_id        TEXT NOT NULL,
    phase                TEXT NOT NULL,
    window_min           TEXT,
    window_max           TEXT,
    generation           INTEGER NOT NULL DEFAULT 0,
    reconciling          INTEGER NOT NULL DEFAULT 0,
    updated_delta_token  TEXT,
    updated_page_token   TEXT,
    deleted_delta_token  TEXT,
    deleted_page_token   TEXT,
    last_attempt_at      TEXT,
    last_success_at      TEXT,
    last_error           TEXT,
    last_error_class     TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TEXT,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (account, kind, collection_id)
) STRICT;

CREATE TABLE events (
    account          TEXT NOT NULL,
    calendar_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    etag             TEXT,
    subject          TEXT,
    start_time       TEXT,
    end_time         TEXT,
    all_day          INTEGER NOT NULL DEFAULT 0,
    last_modified    TEXT,
    ical_uid         TEXT,
    recurrence_type  TEXT,
    raw              TEXT NOT NULL,
    generation       INTEGER NOT NULL,
    synced_at        TEXT NOT NULL,
    PRIMARY KEY (account, calendar_id, event_id)
) STRICT;

CREATE INDEX events_by_start ON events (account, calendar_id, start_time);
