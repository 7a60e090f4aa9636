-- aurinko-sync PostgreSQL store, version 6: the child views of SQLite's
-- 0014_child_views.sql, over jsonb.

CREATE VIEW event_attendees AS
SELECT e.account, e.calendar_id, e.event_id,
       a -> 'emailAddress' ->> 'address' AS address,
       a -> 'emailAddress' ->> 'name' AS name,
       a ->> 'response' AS response,
       a ->> 'type' AS type
FROM events AS e
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(e.raw -> 'meetingInfo' -> 'attendees') = 'array'
         THEN e.raw -> 'meetingInfo' -> 'attendees' ELSE '[]'::jsonb END) AS a
WHERE e.deleted_at IS NULL AND jsonb_typeof(a) = 'object';

CREATE VIEW message_recipients AS
SELECT m.account, m.message_id, f.field,
       r ->> 'address' AS address,
       r ->> 'name' AS name
FROM messages AS m
CROSS JOIN (VALUES ('to'), ('cc'), ('bcc')) AS f(field)
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(m.raw -> f.field) = 'array' THEN m.raw -> f.field ELSE '[]'::jsonb END) AS r
WHERE m.deleted_at IS NULL AND jsonb_typeof(r) = 'object';

CREATE VIEW contact_emails AS
SELECT c.account, c.contact_id,
       x ->> 'address' AS address,
       x ->> 'name' AS name,
       x ->> 'type' AS type
FROM contacts AS c
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(c.raw -> 'emailAddresses') = 'array' THEN c.raw -> 'emailAddresses' ELSE '[]'::jsonb END) AS x
WHERE c.deleted_at IS NULL AND jsonb_typeof(x) = 'object';
