-- aurinko-sync PostgreSQL store, version 5: recurring events as the
-- instances people read (see state/README.md, "event_instances"); the
-- same tables and view as SQLite's 0013_event_instances.sql.
ALTER TABLE events ADD COLUMN time_zone text;
ALTER TABLE events ADD COLUMN start_local text;
ALTER TABLE events ADD COLUMN end_local text;
ALTER TABLE events ADD COLUMN master_id text;
ALTER TABLE events ADD COLUMN original_start text;

CREATE INDEX events_by_master ON events (account, calendar_id, master_id) WHERE master_id IS NOT NULL;

CREATE TABLE event_occurrences (
    account         text NOT NULL,
    calendar_id     text NOT NULL,
    master_id       text NOT NULL,
    original_start  text NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL,
    start_local     text NOT NULL,
    end_local       text NOT NULL,
    time_zone       text,
    all_day         boolean NOT NULL,
    PRIMARY KEY (account, calendar_id, master_id, original_start)
);
CREATE INDEX event_occurrences_by_time ON event_occurrences (start_time);

CREATE VIEW event_instances AS
SELECT account, calendar_id, event_id, NULL::text AS master_id, start_time, end_time, start_local, end_local,
       time_zone, all_day, false AS modified, NULL::text AS original_start, subject
FROM events
WHERE deleted_at IS NULL AND master_id IS NULL AND coalesce(recurrence_type, '') <> 'master'
UNION ALL
SELECT account, calendar_id, event_id, master_id, start_time, end_time, start_local, end_local,
       time_zone, all_day,
       coalesce(raw -> 'occurrenceInfo' ->> 'type', '') <> 'regular' AS modified,
       original_start, subject
FROM events
WHERE deleted_at IS NULL AND master_id IS NOT NULL
  AND coalesce(raw -> 'occurrenceInfo' ->> 'type', '') <> 'deleted'
  AND coalesce(raw -> 'meetingInfo' ->> 'canceled', 'false') <> 'true'
UNION ALL
SELECT o.account, o.calendar_id, o.master_id AS event_id, o.master_id, o.start_time, o.end_time, o.start_local,
       o.end_local, o.time_zone, o.all_day, false AS modified, o.original_start, m.subject
FROM event_occurrences AS o
JOIN events AS m ON m.account = o.account AND m.calendar_id = o.calendar_id AND m.event_id = o.master_id
WHERE m.deleted_at IS NULL;
