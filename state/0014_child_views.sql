-- aurinko-sync store, version 14: what lives in lists as tables of its
-- own (see state/README.md): an event's attendees, a message's recipients,
-- a contact's addresses, read from the stored JSON (`json_each`), so a
-- pipeline's "attendees table" is one SELECT away. Entries that are not
-- objects, and lists that are not arrays, yield nothing. `->>` and
-- `lower(...)` around JSON types: DuckDB's SQLite scanner runs these views'
-- SQL itself and reads them alike.

CREATE VIEW event_attendees AS
SELECT e.account, e.calendar_id, e.event_id,
       a.value ->> '$.emailAddress.address' AS address,
       a.value ->> '$.emailAddress.name' AS name,
       a.value ->> '$.response' AS response,
       a.value ->> '$.type' AS type
FROM events AS e, json_each(e.raw, '$.meetingInfo.attendees') AS a
WHERE e.deleted_at IS NULL AND lower(json_type(e.raw, '$.meetingInfo.attendees')) = 'array' AND lower(a.type) = 'object';

CREATE VIEW message_recipients AS
SELECT m.account, m.message_id, f.field,
       r.value ->> '$.address' AS address,
       r.value ->> '$.name' AS name
FROM messages AS m,
     (SELECT 'to' AS field UNION ALL SELECT 'cc' UNION ALL SELECT 'bcc') AS f,
     json_each(m.raw, '$.' || f.field) AS r
WHERE m.deleted_at IS NULL AND lower(json_type(m.raw, '$.' || f.field)) = 'array' AND lower(r.type) = 'object';

CREATE VIEW contact_emails AS
SELECT c.account, c.contact_id,
       x.value ->> '$.address' AS address,
       x.value ->> '$.name' AS name,
       x.value ->> '$.type' AS type
FROM contacts AS c, json_each(c.raw, '$.emailAddresses') AS x
WHERE c.deleted_at IS NULL AND lower(json_type(c.raw, '$.emailAddresses')) = 'array' AND lower(x.type) = 'object';
