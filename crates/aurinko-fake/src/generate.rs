//! Deterministic, varied, spec-valid calendar records.
//!
//! Real Aurinko data comes from Google, Office 365 and Exchange and is far from uniform: ids of
//! very different shapes, optional fields present or not, all-day and timed events, recurring
//! series, both spellings of `iCalUid`, and fields the spec does not list. The client has to cope
//! with all of it, so the fake produces all of it from a seeded RNG. Records are built as plain
//! JSON from the OpenAPI schema (`Event`, `EventDateTime`, `Calendar`), independently of the
//! client's own types.

use chrono::{DateTime, Duration, FixedOffset, Offset, SecondsFormat, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

/// An event as stored by the fake: the JSON record plus its interval for window filtering.
#[derive(Clone, Debug)]
pub(crate) struct GeneratedEvent {
    pub id: String,
    /// Interval in milliseconds since the Unix epoch; all-day events span whole UTC days.
    pub start_ms: i64,
    pub end_ms: i64,
    pub record: Map<String, Value>,
}

/// Time zones without daylight saving, so that the offset in `dateTime` always agrees with the
/// named `timezone`.
const ZONES: [(&str, i32); 6] = [
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("Asia/Kolkata", 330),
    ("Asia/Tokyo", 540),
    ("America/Sao_Paulo", -180),
    ("Australia/Brisbane", 600),
];

const SUBJECTS: [&str; 16] = [
    "Weekly sync",
    "1:1 Anna / Ben",
    "Quarterly planning — Q3",
    "Café ☕ with the design team",
    "Réunion d'équipe",
    "Встреча с клиентом",
    "週次ミーティング",
    "🎉 Launch party 🚀",
    "\"Quoted\" review of the \"new\" API",
    "O'Brien's farewell",
    "Backslash \\ path C:\\temp",
    "Line one\nline two",
    "Interview: <Senior Engineer> & co",
    "   padded subject   ",
    "Standup",
    "Lunch",
];

const LOCATIONS: [&str; 6] = [
    "Room 4.12",
    "Zoom",
    "Helsinki HQ, Mannerheimintie 1",
    "Microsoft Teams Meeting",
    "東京オフィス",
    "https://meet.example.com/abc-defg-hij",
];

const PEOPLE: [(&str, &str); 6] = [
    ("Anna Virtanen", "anna@example.com"),
    ("Ben O'Neil", "ben.oneil@example.org"),
    ("Zoë Ünal", "zoe@example.net"),
    ("山田太郎", "taro.yamada@example.jp"),
    ("Conference Room 4", "room4@resource.example.com"),
    ("", "no-name@example.com"),
];

/// Formats an instant the way Aurinko does for `createdTime`, `lastModifiedTime`, `timestamp`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(super) fn chars(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

pub(super) const BASE32HEX: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
pub(super) const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(super) const HEX: &[u8] = b"0123456789abcdef";

/// An event id in one of the shapes providers use.
pub(crate) fn event_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        // Google: base32hex, 26 characters.
        0 => chars(rng, BASE32HEX, 26),
        // Office 365 / Graph: long base64url-like with '-', '_' and '=' padding.
        1 => format!("AAMkAGI2{}AAA=", chars(rng, BASE64URL, 140)),
        // Exchange / iCloud style UUIDs.
        2 => format!(
            "{}-{}-{}-{}-{}",
            chars(rng, HEX, 8).to_uppercase(),
            chars(rng, HEX, 4).to_uppercase(),
            chars(rng, HEX, 4).to_uppercase(),
            chars(rng, HEX, 4).to_uppercase(),
            chars(rng, HEX, 12).to_uppercase()
        ),
        // Short opaque ids with separators.
        _ => format!("evt_{}-{}", chars(rng, BASE64URL, 10), rng.random_range(0..1000)),
    }
}

/// A new etag in one of the shapes providers use.
pub(crate) fn etag(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        0 => format!("\"{}\"", rng.random_range(3_000_000_000_000_000u64..4_000_000_000_000_000)),
        1 => format!("DwAAABYAAAB{}==", chars(rng, BASE64URL, 30)),
        _ => format!("W/\"{}\"", chars(rng, HEX, 16)),
    }
}

fn subject(rng: &mut StdRng) -> Option<String> {
    if rng.random_bool(0.07) {
        return None;
    }
    let base = pick(rng, &SUBJECTS);
    Some(if rng.random_bool(0.3) { format!("{base} #{}", rng.random_range(1..500)) } else { (*base).to_string() })
}

/// The subject after an update: always different from the old one.
pub(crate) fn updated_subject(rng: &mut StdRng, old: Option<&str>) -> String {
    let fresh = subject(rng).unwrap_or_else(|| "Untitled".to_string());
    let revision = rng.random_range(1..1_000_000);
    match old {
        Some(old) if old.len() < 200 => format!("{old} (rev {revision})"),
        _ => format!("{fresh} (rev {revision})"),
    }
}

pub(super) fn email(name: &str, address: &str) -> Value {
    let mut map = Map::new();
    if !name.is_empty() {
        map.insert("name".into(), json!(name));
    }
    map.insert("address".into(), json!(address));
    Value::Object(map)
}

fn timed(rng: &mut StdRng, at: DateTime<Utc>) -> Value {
    let (zone, minutes) = *pick(rng, &ZONES);
    let offset = FixedOffset::east_opt(minutes * 60).unwrap_or(Utc.fix());
    let format = if rng.random_bool(0.3) { SecondsFormat::Millis } else { SecondsFormat::Secs };
    let date_time = at.with_timezone(&offset).to_rfc3339_opts(format, true);
    if rng.random_bool(0.1) {
        json!({ "dateTime": date_time })
    } else {
        json!({ "dateTime": date_time, "timezone": zone })
    }
}

fn date_only(at: DateTime<Utc>) -> Value {
    json!({ "dateOnly": at.format("%Y-%m-%d").to_string() })
}

/// Start of a timed event: a quarter hour between `anchor - 20 d` and `anchor + 20 d + span`.
fn start_between(rng: &mut StdRng, anchor: DateTime<Utc>, from_days: i64, to_days: i64) -> DateTime<Utc> {
    let quarters = rng.random_range(from_days * 96..to_days * 96);
    anchor + Duration::minutes(quarters * 15)
}

struct Shape {
    start: Value,
    end: Value,
    start_ms: i64,
    end_ms: i64,
}

fn timed_shape(rng: &mut StdRng, start: DateTime<Utc>) -> Shape {
    let end = start + Duration::minutes(15 * rng.random_range(1..=16));
    Shape {
        start: timed(rng, start),
        end: timed(rng, end),
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
    }
}

fn all_day_shape(rng: &mut StdRng, anchor: DateTime<Utc>) -> Shape {
    let day = anchor.date_naive() + Duration::days(rng.random_range(-19..170));
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + Duration::days(rng.random_range(1..=3));
    Shape {
        start: date_only(start),
        end: date_only(end),
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
    }
}

/// Fields every kind of event shares; times, ids and recurrence are filled in by the caller.
fn common(rng: &mut StdRng, anchor: DateTime<Utc>, calendar_id: &str, ical_uid: &str) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("etag".into(), json!(etag(rng)));
    r.insert("calendarId".into(), json!(calendar_id));
    let created = anchor - Duration::minutes(rng.random_range(21 * 1440..400 * 1440));
    let modified = created + Duration::minutes(rng.random_range(0..(anchor - created).num_minutes().max(1)));
    r.insert("createdTime".into(), json!(timestamp(created)));
    r.insert("lastModifiedTime".into(), json!(timestamp(modified)));
    if let Some(subject) = subject(rng) {
        r.insert("subject".into(), json!(subject));
    }
    if rng.random_bool(0.4) {
        let text = if rng.random_bool(0.3) {
            "<html><body><p>Agenda:</p><ul><li>Status</li><li>Risks &amp; issues</li></ul></body></html>".to_string()
        } else {
            format!("Notes #{}\nBring the \"numbers\". Ünïcödé ✓", rng.random_range(1..100))
        };
        r.insert("description".into(), json!(text));
    }
    if rng.random_bool(0.4) {
        r.insert("location".into(), json!(pick(rng, &LOCATIONS)));
    }
    let (name, address) = *pick(rng, &PEOPLE);
    let mut organizer = Map::new();
    if rng.random_bool(0.5) {
        organizer.insert("id".into(), json!(format!("org-{}", chars(rng, HEX, 8))));
    }
    organizer.insert("emailAddress".into(), email(name, address));
    r.insert("organizer".into(), Value::Object(organizer));
    if rng.random_bool(0.5) {
        let attendees: Vec<Value> = (0..rng.random_range(1..5))
            .map(|_| {
                let (name, address) = *pick(rng, &PEOPLE);
                let mut a = Map::new();
                a.insert("emailAddress".into(), email(name, address));
                a.insert("type".into(), json!(pick(rng, &["required", "optional", "resource"])));
                if rng.random_bool(0.7) {
                    a.insert("response".into(), json!(pick(rng, &["accepted", "tentitive", "declined"])));
                }
                Value::Object(a)
            })
            .collect();
        let mut meeting = Map::new();
        meeting.insert("attendees".into(), Value::Array(attendees));
        meeting.insert("response".into(), json!(pick(rng, &["noResponse", "declined", "tentative", "accepted"])));
        if rng.random_bool(0.3) {
            meeting.insert("onlineMeetingProvider".into(), json!("teamsForBusiness"));
            meeting.insert(
                "onlineMeetingDetails".into(),
                json!({ "url": format!("https://teams.example.com/l/{}", chars(rng, HEX, 12)) }),
            );
        }
        if rng.random_bool(0.05) {
            meeting.insert("canceled".into(), json!(true));
        }
        r.insert("meetingInfo".into(), Value::Object(meeting));
    }
    let uid_key = if rng.random_bool(0.5) { "iCalUid" } else { "iCalUId" };
    r.insert(uid_key.into(), json!(ical_uid));
    r.insert("showAs".into(), json!(pick(rng, &["free", "busy", "busy", "tentative", "outOfOffice", "unknown"])));
    r.insert("sensitivity".into(), json!(pick(rng, &["normal", "normal", "private", "personal", "confidential"])));
    if rng.random_bool(0.3) {
        r.insert("reminder".into(), json!({ "useDefault": false, "overrides": [{ "minutes": 10 }] }));
    }
    if rng.random_bool(0.2) {
        r.insert("categories".into(), json!(["Blue category", "Work"]));
    }
    if rng.random_bool(0.3) {
        r.insert(
            "htmlLink".into(),
            json!(format!("https://calendar.example.com/event?eid={}", chars(rng, BASE64URL, 20))),
        );
    }
    if rng.random_bool(0.3) {
        r.insert("hasAttachments".into(), json!(false));
    }
    if rng.random_bool(0.1) {
        r.insert("omitted".into(), json!(["attachments"]));
    }
    if rng.random_bool(0.1) {
        // Fields beyond the spec appear in real responses; clients must ignore them.
        r.insert("x-extra".into(), json!({ "source": "fake", "flags": [1, 2, 3], "nested": { "ok": true } }));
    }
    r
}

fn ical_uid(rng: &mut StdRng) -> String {
    if rng.random_bool(0.5) {
        format!("{}@google.com", chars(rng, BASE32HEX, 26))
    } else {
        format!("040000008200E00074C5B7101A82E008{}", chars(rng, HEX, 40).to_uppercase())
    }
}

fn finish(mut record: Map<String, Value>, id: String, shape: Shape, recurrence_type: &str) -> GeneratedEvent {
    record.insert("id".into(), json!(id));
    record.insert("start".into(), shape.start);
    record.insert("end".into(), shape.end);
    record.insert("recurrenceType".into(), json!(recurrence_type));
    GeneratedEvent { id, start_ms: shape.start_ms, end_ms: shape.end_ms, record }
}

/// One single (non-recurring) event: about 10 % all-day, the rest timed.
pub(crate) fn single(rng: &mut StdRng, anchor: DateTime<Utc>, calendar_id: &str, id: String) -> GeneratedEvent {
    let uid = ical_uid(rng);
    let record = common(rng, anchor, calendar_id, &uid);
    let shape = if rng.random_bool(0.1) {
        all_day_shape(rng, anchor)
    } else {
        let start = start_between(rng, anchor, -20, 179);
        timed_shape(rng, start)
    };
    finish(record, id, shape, "single")
}

/// A weekly series master and up to `max - 1` modified occurrences (`occurrenceInfo` set).
pub(crate) fn series(
    rng: &mut StdRng,
    anchor: DateTime<Utc>,
    calendar_id: &str,
    master_id: String,
    max: usize,
) -> Vec<GeneratedEvent> {
    let uid = ical_uid(rng);
    let start = start_between(rng, anchor, -20, 150);
    let weeks = rng.random_range(3..=10);
    let mut master = common(rng, anchor, calendar_id, &uid);
    master.insert(
        "recurrence".into(),
        json!({ "original": "ical", "ical": { "rules": [format!("RRULE:FREQ=WEEKLY;COUNT={weeks}")] } }),
    );
    let master_shape = timed_shape(rng, start);
    let duration = Duration::milliseconds(master_shape.end_ms - master_shape.start_ms);
    let mut out = vec![finish(master, master_id.clone(), master_shape, "master")];
    let occurrences = rng.random_range(1..=2).min(max.saturating_sub(1));
    for week in 1..=occurrences {
        let original = start + Duration::weeks(week as i64);
        let moved = original + Duration::minutes(30 * rng.random_range(0..4));
        let id = format!("{master_id}_{}", original.format("%Y%m%dT%H%M%SZ"));
        let mut record = common(rng, anchor, calendar_id, &uid);
        let shape = Shape {
            start: timed(rng, moved),
            end: timed(rng, moved + duration),
            start_ms: moved.timestamp_millis(),
            end_ms: (moved + duration).timestamp_millis(),
        };
        record.insert(
            "occurrenceInfo".into(),
            json!({
                "id": id,
                "type": "modified",
                "originalStart": timed(rng, original),
                "start": shape.start.clone(),
                "masterId": master_id,
            }),
        );
        out.push(finish(record, id, shape, "occurrence"));
    }
    out
}

/// A calendar record per the `Calendar` schema.
pub(crate) fn calendar_record(
    id: &str,
    name: &str,
    primary: bool,
    color: &str,
    access_role: &str,
    description: Option<&str>,
) -> Value {
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("name".into(), json!(name));
    r.insert("color".into(), json!(color));
    if let Some(description) = description {
        r.insert("description".into(), json!(description));
    }
    r.insert("accessRole".into(), json!(access_role));
    r.insert("primary".into(), json!(primary));
    r.insert("multipleRemindersSupported".into(), json!(true));
    r.insert("defaultReminders".into(), json!([{ "minutes": 10 }]));
    Value::Object(r)
}
