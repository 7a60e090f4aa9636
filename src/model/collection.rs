//! What differs between collection kinds, in one small description: the
//! path of the sync endpoints, the start parameters, how a record becomes a
//! row, and the table it lands in. The machine, the driver and the store's
//! write path are shared by every kind.

use std::fmt;

use chrono::Timelike;

use serde_json::value::RawValue;

use super::records::{Record, Rejected, Row, contact_row, event_row, message_row, task_row};
use super::state::{RangeDays, Window};

/// The kinds of collection Aurinko offers delta sync for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One calendar's events; one collection per calendar.
    Calendar,
    /// The account's mailbox, all folders; one collection per account.
    Email,
    /// The account's address book; one collection per account.
    Contacts,
    /// One task list's tasks; one collection per task list.
    Tasks,
}

/// Where a kind's rows live. Column names are part of the public schema
/// (`state/README.md`); the store builds its SQL from this.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The column holding the collection id, for kinds with several
    /// collections per account (`calendar_id`).
    pub scope: Option<&'static str>,
    /// The record id column.
    pub id: &'static str,
    /// Whether records carry an etag; without one, a record is rewritten
    /// only when its JSON changed.
    pub etag: bool,
    /// Typed columns, in the order of [`Row::fields`].
    pub columns: &'static [&'static str],
    /// How rows lie in the range a provisioning covers; `None` when the
    /// initial pass always returns every record (contacts).
    pub range: Option<Range>,
}

/// Where a kind's rows lie against a provisioned [`Window`], so that the
/// sweep ending a reconciling pass removes only rows the new initial pass
/// could have returned. A row is inside when its `end` column is later than
/// the window's start and its `start` column earlier than the window's end
/// (both exclusive, as the spec defines `timeMin` and `timeMax`). Rows
/// without a readable value in those columns are kept: nothing says the
/// initial pass would have returned them.
#[derive(Debug)]
pub struct Range {
    pub end: &'static str,
    /// `None` when the range is open towards the future (mail: messages
    /// that arrive after the provisioning are in its updated stream too).
    pub start: Option<&'static str>,
    /// Whether a row without a value in `end` lies inside: an open task
    /// has no `completed`, and every open task is in a task list's initial
    /// pass.
    pub empty_end_inside: bool,
}

/// How far inside the window's edges a sweep stops. Email's `daysWithin` is
/// counted on Aurinko's clock, not ours, and providers may round it to days;
/// all-day events carry dates without a time zone, compared as text. A
/// record within a day of an edge is kept rather than risked: at worst a
/// row deleted upstream while the token was dead stays.
pub const SWEEP_MARGIN: chrono::TimeDelta = chrono::TimeDelta::days(1);

const EVENTS: Table = Table {
    name: "events",
    scope: Some("calendar_id"),
    id: "event_id",
    etag: true,
    columns: &[
        "subject",
        "start_time",
        "end_time",
        "all_day",
        "last_modified",
        "ical_uid",
        "recurrence_type",
        "time_zone",
        "start_local",
        "end_local",
        "master_id",
        "original_start",
    ],
    range: Some(Range { end: "end_time", start: Some("start_time"), empty_end_inside: false }),
};

const MESSAGES: Table = Table {
    name: "messages",
    scope: None,
    id: "message_id",
    etag: false,
    columns: &[
        "thread_id",
        "folder_id",
        "internet_message_id",
        "subject",
        "from_address",
        "from_name",
        "received_at",
        "sys_labels",
        "has_attachments",
    ],
    range: Some(Range { end: "received_at", start: None, empty_end_inside: false }),
};

const CONTACTS: Table = Table {
    name: "contacts",
    scope: None,
    id: "contact_id",
    etag: true,
    columns: &["display_name", "emails"],
    range: None,
};

const TASKS: Table = Table {
    name: "tasks",
    scope: Some("task_list_id"),
    id: "task_id",
    etag: true,
    columns: &["title", "status", "due", "completed", "parent_id"],
    // `skipCompletedBeforeDate` leaves out tasks completed before it: the
    // initial pass covers open tasks and those completed later.
    range: Some(Range { end: "completed", start: None, empty_end_inside: true }),
};

/// Where discovery records the collections of a listed kind: the table, its
/// id column (`calendars.calendar_id`, `task_lists.task_list_id`), and the
/// flag of the one an alias names (`primary`, webhooks' `default`).
#[derive(Debug)]
pub struct Listing {
    pub table: &'static str,
    pub id: &'static str,
    pub alias: &'static str,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Calendar, Kind::Email, Kind::Contacts, Kind::Tasks];

    /// Kinds with several collections per account, found by listing them.
    pub const LISTED: [Kind; 2] = [Kind::Calendar, Kind::Tasks];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Calendar => "calendar",
            Kind::Email => "email",
            Kind::Contacts => "contacts",
            Kind::Tasks => "tasks",
        }
    }

    /// What one collection of a listed kind is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Calendar => "calendar",
            Kind::Email => "mailbox",
            Kind::Contacts => "address book",
            Kind::Tasks => "task list",
        }
    }

    /// For listed kinds, where discovery records what it saw.
    pub fn listing(self) -> Option<Listing> {
        match self {
            Kind::Calendar => Some(Listing { table: "calendars", id: "calendar_id", alias: "is_primary" }),
            Kind::Tasks => Some(Listing { table: "task_lists", id: "task_list_id", alias: "is_default" }),
            Kind::Email | Kind::Contacts => None,
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn table(self) -> &'static Table {
        match self {
            Kind::Calendar => &EVENTS,
            Kind::Email => &MESSAGES,
            Kind::Contacts => &CONTACTS,
            Kind::Tasks => &TASKS,
        }
    }

    /// Whether a collection of this kind can be deleted upstream, so that a
    /// 404 may mean it is gone (confirmed with `GET {root}`): a calendar or
    /// a task list can; a mailbox or an address book cannot, so there a 404
    /// is refused access and nothing is removed.
    pub fn can_vanish(self) -> bool {
        match self {
            Kind::Calendar | Kind::Tasks => true,
            Kind::Email | Kind::Contacts => false,
        }
    }

    /// Reads one record of the `/sync/updated` stream.
    pub fn parse_record(self, raw: &RawValue) -> Result<Row, Rejected> {
        self.row_of(Record::parse(raw)?)
    }

    /// [`parse_record`](Kind::parse_record) of a record already split.
    pub fn row_of(self, record: Record<'_>) -> Result<Row, Rejected> {
        match self {
            Kind::Calendar => event_row(record),
            Kind::Email => message_row(record),
            Kind::Contacts => contact_row(record),
            Kind::Tasks => task_row(record),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which collection a state or a row belongs to. Account-wide kinds (email,
/// contacts) use the kind's name as their id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionKey {
    pub account: String,
    pub kind: Kind,
    pub id: String,
}

impl CollectionKey {
    pub fn calendar(account: &str, calendar_id: &str) -> CollectionKey {
        CollectionKey::listed(account, Kind::Calendar, calendar_id)
    }

    /// A collection of a listed kind (a calendar, a task list) by its id.
    pub fn listed(account: &str, kind: Kind, id: &str) -> CollectionKey {
        CollectionKey { account: account.to_string(), kind, id: id.to_string() }
    }

    pub fn account_wide(account: &str, kind: Kind) -> CollectionKey {
        CollectionKey { account: account.to_string(), kind, id: kind.as_str().to_string() }
    }

    /// The resource a webhook subscription for this collection names.
    pub fn webhook_resource(&self) -> String {
        match self.kind {
            Kind::Calendar => format!("/calendars/{}/events", self.id),
            Kind::Email => "/email/messages".to_string(),
            Kind::Contacts => "/contacts".to_string(),
            Kind::Tasks => format!("/tasklists/{}/tasks", self.id),
        }
    }
}

impl fmt::Display for CollectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id comes from the server: shown inert in logs and summaries.
        write!(f, "{}/{}", self.account, super::text::inert(&self.id))
    }
}

/// The body format asked for when email sync starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Text,
    Html,
}

/// How a collection is provisioned: its kind's start parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Calendars: events ending after `timeMin` (now minus `past_days`)
    /// and starting before `timeMax` (now plus `future_days`).
    Calendar { past_days: u32, future_days: u32 },
    /// Email: messages received within `days_within` days, bodies as asked.
    Email { days_within: Option<u32>, body: Option<BodyType> },
    /// Contacts take no parameters.
    Contacts,
    /// Tasks: with `completed_within_days`, completed tasks whose
    /// `completed` lies before `now - days` are skipped by the first load
    /// (`skipCompletedBeforeDate`); without it, every task.
    Tasks { completed_within_days: Option<u32> },
}

/// Everything the driver needs to sync one collection.
#[derive(Debug, Clone)]
pub struct Collection {
    pub key: CollectionKey,
    /// A display name (the calendar's name), when known.
    pub name: Option<String>,
    pub start: Start,
}

impl Collection {
    /// Path segments of the collection's sync root.
    pub fn root(&self) -> Vec<&str> {
        match self.key.kind {
            Kind::Calendar => vec!["calendars", self.key.id.as_str()],
            Kind::Email => vec!["email"],
            Kind::Contacts => vec!["contacts"],
            Kind::Tasks => vec!["tasklists", self.key.id.as_str()],
        }
    }

    /// Query parameters of `POST {root}/sync`, for a provisioning at `now`.
    pub fn start_params(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<(&'static str, String)> {
        let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self.start {
            Start::Calendar { .. } => match self.window(now) {
                Some(w) => vec![("timeMin", rfc3339(w.time_min)), ("timeMax", rfc3339(w.time_max))],
                None => Vec::new(),
            },
            Start::Email { days_within, body } => {
                let mut params = Vec::new();
                if let Some(days) = days_within {
                    params.push(("daysWithin", days.to_string()));
                }
                match body {
                    Some(BodyType::Text) => params.push(("bodyType", "text".to_string())),
                    Some(BodyType::Html) => params.push(("bodyType", "html".to_string())),
                    None => {}
                }
                params
            }
            Start::Contacts => Vec::new(),
            Start::Tasks { completed_within_days: None } => Vec::new(),
            Start::Tasks { .. } => match self.window(now) {
                Some(w) => vec![("skipCompletedBeforeDate", rfc3339(w.time_min))],
                None => Vec::new(),
            },
        }
    }

    /// The configured day counts of the range a provisioning asks for:
    /// what decides whether a configuration change calls for a new one.
    /// `None` for contacts, which have no range.
    pub fn range_days(&self) -> Option<RangeDays> {
        match self.start {
            Start::Calendar { past_days, future_days } => {
                Some(RangeDays::Around { past: past_days, future: future_days })
            }
            Start::Email { days_within: days, .. } | Start::Tasks { completed_within_days: days } => {
                Some(days.map_or(RangeDays::All, RangeDays::Within))
            }
            Start::Contacts => None,
        }
    }

    /// Whether the provisioned range follows time (calendars only).
    pub fn rolls(&self) -> bool {
        matches!(self.start, Start::Calendar { .. })
    }

    /// The range recorded with a provisioning, shown by `state`.
    pub fn window(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Window> {
        match self.start {
            Start::Calendar { past_days, future_days } => Some(Window::around(now, past_days, future_days)),
            Start::Email { days_within: Some(days), .. } | Start::Tasks { completed_within_days: Some(days) } => {
                // Whole seconds, as sent: the window is exactly what Aurinko was asked for.
                let now = now.with_nanosecond(0).unwrap_or(now);
                Some(Window { time_min: now - chrono::Duration::days(days.into()), time_max: now })
            }
            Start::Email { days_within: None, .. } | Start::Contacts | Start::Tasks { completed_within_days: None } => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn each_kind_has_its_root_and_start_parameters() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let calendar = Collection {
            key: CollectionKey::calendar("work", "a/b"),
            name: None,
            start: Start::Calendar { past_days: 1, future_days: 2 },
        };
        assert_eq!(calendar.root(), vec!["calendars", "a/b"]);
        assert_eq!(
            calendar.start_params(now),
            vec![("timeMin", "2026-11-26T12:00:00Z".to_string()), ("timeMax", "2026-11-29T12:00:00Z".to_string())]
        );
        let email = Collection {
            key: CollectionKey::account_wide("work", Kind::Email),
            name: None,
            start: Start::Email { days_within: Some(30), body: Some(BodyType::Html) },
        };
        assert_eq!(email.root(), vec!["email"]);
        assert_eq!(email.start_params(now), vec![("daysWithin", "30".into()), ("bodyType", "html".into())]);
        assert_eq!(email.window(now).unwrap().time_max, now);
        let contacts =
            Collection { key: CollectionKey::account_wide("work", Kind::Contacts), name: None, start: Start::Contacts };
        assert_eq!(contacts.root(), vec!["contacts"]);
        assert!(contacts.start_params(now).is_empty());
        assert_eq!(contacts.window(now), None);
        let tasks = Collection {
            key: CollectionKey::listed("work", Kind::Tasks, "AAMkAD=/x"),
            name: None,
            start: Start::Tasks { completed_within_days: Some(10) },
        };
        assert_eq!(tasks.root(), vec!["tasklists", "AAMkAD=/x"]);
        let later = now + chrono::Duration::milliseconds(1500);
        assert_eq!(tasks.start_params(later), vec![("skipCompletedBeforeDate", "2026-11-17T12:00:01Z".to_string())]);
        assert_eq!(tasks.window(later).unwrap().time_min.to_rfc3339(), "2026-11-17T12:00:01+00:00");
        assert_eq!(tasks.key.webhook_resource(), "/tasklists/AAMkAD=/x/tasks");
        let all_tasks = Collection { start: Start::Tasks { completed_within_days: None }, ..tasks };
        assert!(all_tasks.start_params(now).is_empty());
        assert_eq!(all_tasks.window(now), None);
    }

    #[test]
    fn every_table_names_as_many_columns_as_its_rows_carry() {
        let samples = [
            (Kind::Calendar, r#"{"id":"e"}"#),
            (Kind::Email, r#"{"id":"m"}"#),
            (Kind::Contacts, r#"{"id":"c"}"#),
            (Kind::Tasks, r#"{"id":"t"}"#),
        ];
        for (kind, json) in samples {
            let raw = RawValue::from_string(json.to_string()).unwrap();
            let row = kind.parse_record(&raw).unwrap();
            assert_eq!(row.fields.len(), kind.table().columns.len(), "{kind}");
        }
    }
}
