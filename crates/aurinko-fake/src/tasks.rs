//! Deterministic, varied, spec-valid tasks (`Task`) and task lists (`TaskList`).
//!
//! Task lists hold a little of everything: open tasks with and without a due date, tasks in
//! progress, waiting or deferred, and completed ones, some completed years ago (so that
//! `skipCompletedBeforeDate` leaves them out of a first load), subtasks naming their parent in
//! `parentId`, notes, links and categories now and then, and notes left out (`omitted: ["notes"]`)
//! as large notes are. Only the fields of the spec's `Task` schema appear. An update changes
//! `etag`, `lastModifiedTime`, and moves the status on (completing a task stamps `completed`,
//! reopening it removes it).

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::generate::{BASE64URL, chars, etag, pick, timestamp};

/// How far back completed tasks go: with `completed_within_days` of 30 or 90, some are left out.
pub(crate) const COMPLETED_SPREAD_DAYS: i64 = 720;

const TITLES: [&str; 14] = [
    "Buy milk",
    "File taxes",
    "Ünïcödé façade — résumé",
    "\"Quoted\" task with 'single' quotes",
    "来週の資料を準備する",
    "Позвонить клиенту",
    "🎉 Plan the launch 🚀",
    "Backslash \\ path C:\\temp",
    "<b>not bold</b> & friends",
    "   padded title   ",
    "Line one\nline two",
    "مراجعة التقرير",
    "Renew passport",
    "",
];

const NOTES: [&str; 4] = [
    "Remember the receipts.",
    "Ünïcödé notes: café, 東京, 😀",
    "Multi\nline\r\nnotes with \"quotes\" and \\ backslashes",
    "See https://example.com/ticket/42",
];

const CATEGORIES: [&[&str]; 4] = [&["Work"], &["Personal", "Ünïcode"], &[], &["Red category"]];

const OWNERS: [&str; 3] = ["anna@example.com", "Anna Virtanen", "ben.oneil@example.org"];

/// A task id in one of the shapes providers use.
pub(crate) fn task_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..2) {
        // Google Tasks: base64url-like, about 22 characters.
        0 => chars(rng, BASE64URL, 22),
        // Graph: long base64-like with padding.
        _ => format!("AAMkADk0ZjU{}AAA=", chars(rng, BASE64URL, 100)),
    }
}

/// `TaskStatus`, with `completed` twice: about a third of generated tasks are done.
const STATUSES: [&str; 6] = ["notStarted", "inProgress", "completed", "completed", "waitingOnOthers", "deferred"];

/// One task. Generated tasks were made up to two years before `anchor`; about a third are
/// completed, at times spread over [`COMPLETED_SPREAD_DAYS`]. A created one (`created: Some(now)`) is new
/// and not started. `parent` makes it a subtask.
pub(crate) fn task(
    rng: &mut StdRng,
    anchor: DateTime<Utc>,
    id: String,
    created: Option<DateTime<Utc>>,
    parent: Option<&str>,
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("etag".into(), json!(etag(rng)));
    let title = *pick(rng, &TITLES);
    if !title.is_empty() || rng.random_bool(0.5) {
        r.insert("title".into(), json!(title));
    }
    let (modified, status, completed) = match created {
        Some(at) => (at, "notStarted", None),
        None => match *pick(rng, &STATUSES) {
            "completed" => {
                let done = anchor - Duration::minutes(rng.random_range(1..COMPLETED_SPREAD_DAYS * 1440));
                (done, "completed", Some(done))
            }
            open => (anchor - Duration::minutes(rng.random_range(1..730 * 1440)), open, None),
        },
    };
    r.insert("lastModifiedTime".into(), json!(timestamp(modified)));
    if let Some(parent) = parent {
        r.insert("parentId".into(), json!(parent));
    }
    r.insert("position".into(), json!(format!("{:020}", rng.random_range(0..u64::MAX / 2))));
    if rng.random_bool(0.3) {
        if rng.random_bool(0.2) {
            r.insert("omitted".into(), json!(["notes"]));
        } else {
            r.insert("notes".into(), json!(pick(rng, &NOTES)));
        }
    }
    r.insert("status".into(), json!(status));
    if rng.random_bool(0.6) {
        r.insert("importance".into(), json!(pick(rng, &["low", "normal", "normal", "high"])));
    }
    if rng.random_bool(0.5) {
        // Google keeps due dates at midnight UTC; Graph has times.
        let days = rng.random_range(-120..240);
        let due = if rng.random_bool(0.5) {
            (anchor + Duration::days(days)).date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(anchor)
        } else {
            anchor + Duration::minutes(days * 1440 + rng.random_range(0..1440))
        };
        r.insert("due".into(), json!(spelled(rng, due)));
    }
    if let Some(done) = completed {
        r.insert("completed".into(), json!(spelled(rng, done)));
    }
    if rng.random_bool(0.1) {
        r.insert(
            "links".into(),
            json!([{ "source": "email", "description": "Related mail", "link": "https://mail.example.com/m/1" }]),
        );
    }
    if rng.random_bool(0.2) {
        r.insert("startDateTime".into(), json!(timestamp(modified - Duration::days(rng.random_range(0..30)))));
    }
    if rng.random_bool(0.3) {
        r.insert("categories".into(), json!(pick(rng, &CATEGORIES)));
    }
    if rng.random_bool(0.5) {
        r.insert("owner".into(), json!(pick(rng, &OWNERS)));
    }
    r
}

/// An instant as providers spell them: UTC with milliseconds, whole seconds, or an offset.
fn spelled(rng: &mut StdRng, at: DateTime<Utc>) -> String {
    match rng.random_range(0..4) {
        0 => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        1 => at.with_timezone(&FixedOffset::east_opt(2 * 3600).expect("a valid offset")).to_rfc3339(),
        _ => timestamp(at),
    }
}

/// New etag and `lastModifiedTime`; the status moves on: an open task is completed (stamped
/// `modified`) or changes state, a completed one is reopened. Returns when the task is now
/// completed, if it is.
pub(crate) fn update(
    rng: &mut StdRng,
    record: &mut Map<String, Value>,
    modified: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    record.insert("etag".into(), json!(etag(rng)));
    record.insert("lastModifiedTime".into(), json!(timestamp(modified)));
    let was_completed = record.get("status").and_then(Value::as_str) == Some("completed");
    let status = if was_completed {
        *pick(rng, &["notStarted", "inProgress"])
    } else if rng.random_bool(0.5) {
        "completed"
    } else {
        *pick(rng, &["notStarted", "inProgress", "waitingOnOthers", "deferred"])
    };
    record.insert("status".into(), json!(status));
    if status == "completed" {
        record.insert("completed".into(), json!(timestamp(modified)));
        Some(modified)
    } else {
        record.remove("completed");
        None
    }
}

/// When a task was completed, from its record.
pub(crate) fn completed_at(record: &Map<String, Value>) -> Option<DateTime<Utc>> {
    let text = record.get("completed").and_then(Value::as_str)?;
    DateTime::parse_from_rfc3339(text).ok().map(|at| at.to_utc())
}

/// A task list record per the `TaskList` schema.
pub(crate) fn task_list_record(id: &str, title: &str, default: bool, etag: &str, modified: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "etag": etag,
        "title": title,
        "owner": true,
        "shared": false,
        "defaultList": default,
        "emailsList": false,
        "lastModifiedTime": timestamp(modified),
    })
}
