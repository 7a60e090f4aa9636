-- aurinko-sync store, version 9: date queries across calendars.
--
-- events_by_start serves one calendar's range (account, calendar_id first);
-- a range over every calendar ("this week's events") scanned the whole
-- table and sorted it. This one serves
-- WHERE start_time >= ? AND start_time < ? ORDER BY start_time.

CREATE INDEX events_by_time ON events (start_time);
