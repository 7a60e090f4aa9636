-- aurinko-sync store, version 13: recurring events as the instances people
-- read (see state/README.md, "event_instances").
--
-- Each event's zone and local wall-clock times, and for an occurrence of a
-- series (an exception: moved, changed or cancelled) its master and the
-- slot it takes. Rows stored before this version get them when they next
-- change or with `aurinko-sync resync`.
ALTER TABLE events ADD COLUMN time_zone TEXT;
ALTER TABLE events ADD COLUMN start_local TEXT;
ALTER TABLE events ADD COLUMN end_local TEXT;
ALTER TABLE events ADD COLUMN master_id TEXT;
ALTER TABLE events ADD COLUMN original_start TEXT;

-- A series' exceptions, found when its master is expanded. Partial: single
-- events (nearly all of them) never touch it.
CREATE INDEX events_by_master ON events (account, calendar_id, master_id) WHERE master_id IS NOT NULL;

-- The slots each series master's rule generates over its calendar's sync
-- window, less those its exceptions take. Kept in step at commit time by
-- the store, in the same transaction as the master and its exceptions.
CREATE TABLE event_occurrences (
    account         TEXT NOT NULL,
    calendar_id     TEXT NOT NULL,
    master_id       TEXT NOT NULL,
    original_start  TEXT NOT NULL,
    start_time      TEXT NOT NULL,
    end_time        TEXT NOT NULL,
    start_local     TEXT NOT NULL,
    end_local       TEXT NOT NULL,
    time_zone       TEXT,
    all_day         INTEGER NOT NULL,
    PRIMARY KEY (account, calendar_id, master_id, original_start)
) STRICT;
CREATE INDEX event_occurrences_by_time ON event_occurrences (start_time);

-- Every event once, every series as its instances: single events, the
-- series' generated slots, and their exceptions in the slots they took
-- (cancelled ones left out). A master itself is not an instance.
--
-- Written so that DuckDB's SQLite scanner, which runs a view's SQL itself,
-- reads it alike: `->>` (text in both), `lower(...)` around JSON types.
CREATE VIEW event_instances AS
SELECT account, calendar_id, event_id, NULL AS master_id, start_time, end_time, start_local, end_local,
       time_zone, all_day, 0 AS modified, NULL AS original_start, subject
FROM events
WHERE deleted_at IS NULL AND master_id IS NULL AND coalesce(recurrence_type, '') <> 'master'
UNION ALL
SELECT account, calendar_id, event_id, master_id, start_time, end_time, start_local, end_local,
       time_zone, all_day,
       CASE coalesce(raw ->> '$.occurrenceInfo.type', '') WHEN 'regular' THEN 0 ELSE 1 END AS modified,
       original_start, subject
FROM events
WHERE deleted_at IS NULL AND master_id IS NOT NULL
  AND coalesce(raw ->> '$.occurrenceInfo.type', '') <> 'deleted'
  AND lower(CAST(coalesce(raw ->> '$.meetingInfo.canceled', 'false') AS TEXT)) NOT IN ('1', 'true')
UNION ALL
SELECT o.account, o.calendar_id, o.master_id AS event_id, o.master_id, o.start_time, o.end_time, o.start_local,
       o.end_local, o.time_zone, o.all_day, 0 AS modified, o.original_start, m.subject
FROM event_occurrences AS o
JOIN events AS m ON m.account = o.account AND m.calendar_id = o.calendar_id AND m.event_id = o.master_id
WHERE m.deleted_at IS NULL;
