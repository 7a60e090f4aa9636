//! The benchmark's data: realistic `Event` records (about 1 KB each), built
//! once and encoded into the exact page bodies the double serves.
//!
//! Tokens per calendar `c`:
//!
//! - provisioning answers `u0.c` (updated) and `d0.c` (deleted);
//! - `u0.c` is the first page of the full pass, `p.c.N` the following ones,
//!   the last one ends with `nextDeltaToken = u1.c`;
//! - `u1.c` holds the changed events of the incremental pass (`i.c.N` if it
//!   needs more pages) and ends with `u2.c`; without changes it is empty;
//! - `u2.c` is empty and points to itself: the idle daemon's polls;
//! - `d0.c` is empty and ends with `d1.c`, which is empty and points to
//!   itself.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, DurationRound, FixedOffset, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Records per page of every stream and of the calendar list. Aurinko's
/// sync pages are of this order; the project's fake uses 100 by default.
pub const PAGE_SIZE: usize = 100;

/// Share of events changed for the incremental pass: 1 in 100.
const CHANGED_ONE_IN: usize = 100;

pub struct Dataset {
    pub calendars: Vec<String>,
    pub events: usize,
    /// Events with a new etag in the incremental pass (`u1` pages).
    pub changed: usize,
    /// Bytes of the records of the full pass.
    pub record_bytes: usize,
    /// Calendar list pages: index 0 without a token, then `pageToken = N`.
    pub calendar_pages: Vec<Bytes>,
    /// `/sync/updated` and `/sync/deleted` bodies by the token they answer.
    pub updated: HashMap<String, Bytes>,
    pub deleted: HashMap<String, Bytes>,
    /// The full pass's `/sync/updated` tokens in order, calendar by calendar,
    /// with the calendar's index: what the floor replays.
    pub full_pages: Vec<(usize, String)>,
    /// `/sync/updated` pages of the incremental pass (all calendars).
    pub incremental_pages: usize,
}

impl Dataset {
    /// `events` spread evenly over `calendars`; with `incremental`, 1% of
    /// each calendar's events (at least one) change for the `u1` pass.
    pub fn build(events: usize, calendars: usize, incremental: bool) -> Dataset {
        let anchor = Utc::now().duration_trunc(Duration::hours(1)).unwrap_or_else(|_| Utc::now());
        let ids: Vec<String> = (0..calendars).map(|c| format!("cal-{c:04}")).collect();
        let mut data = Dataset {
            calendars: ids.clone(),
            events,
            changed: 0,
            record_bytes: 0,
            calendar_pages: calendar_pages(&ids),
            updated: HashMap::new(),
            deleted: HashMap::new(),
            full_pages: Vec::new(),
            incremental_pages: 0,
        };
        for (c, cal) in ids.iter().enumerate() {
            let count = events / calendars + usize::from(c < events % calendars);
            let records: Vec<String> = (0..count).map(|i| event(cal, c, i, 1, anchor)).collect();
            data.record_bytes += records.iter().map(String::len).sum::<usize>();
            let tokens = data.add_stream(&records, format!("u0.{cal}"), &format!("p.{cal}"), &format!("u1.{cal}"));
            data.full_pages.extend(tokens.into_iter().map(|t| (c, t)));
            let changed: Vec<String> = if incremental {
                let n = count.div_ceil(CHANGED_ONE_IN);
                (0..n).map(|k| event(cal, c, k * CHANGED_ONE_IN, 2, anchor)).collect()
            } else {
                Vec::new()
            };
            data.changed += changed.len();
            data.incremental_pages +=
                data.add_stream(&changed, format!("u1.{cal}"), &format!("i.{cal}"), &format!("u2.{cal}")).len();
            data.updated.insert(format!("u2.{cal}"), page(&[], None, Some(&format!("u2.{cal}"))));
            data.deleted.insert(format!("d0.{cal}"), page(&[], None, Some(&format!("d1.{cal}"))));
            data.deleted.insert(format!("d1.{cal}"), page(&[], None, Some(&format!("d1.{cal}"))));
        }
        data
    }

    /// Encodes `records` as pages answering `first`, then `{prefix}.N`; the
    /// last page carries `next_delta`. Returns the tokens, in order.
    fn add_stream(&mut self, records: &[String], first: String, prefix: &str, next_delta: &str) -> Vec<String> {
        let chunks: Vec<&[String]> = if records.is_empty() { vec![&[]] } else { records.chunks(PAGE_SIZE).collect() };
        let mut tokens = vec![first];
        for (n, chunk) in chunks.iter().enumerate() {
            let body = if n + 1 < chunks.len() {
                let next = format!("{prefix}.{}", n + 1);
                tokens.push(next.clone());
                page(chunk, Some(&next), None)
            } else {
                page(chunk, None, Some(next_delta))
            };
            self.updated.insert(tokens[n].clone(), body);
        }
        tokens
    }

    /// Whether `token` belongs to calendar `id` (tokens embed it).
    pub fn token_matches(token: &str, id: &str) -> bool {
        token.split('.').nth(1) == Some(id)
    }
}

/// `{"length":N,"records":[...],"nextPageToken"|"nextDeltaToken":...}`
fn page(records: &[String], next_page: Option<&str>, next_delta: Option<&str>) -> Bytes {
    let mut body = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 96);
    body.push_str(&format!("{{\"length\":{},\"records\":[", records.len()));
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r);
    }
    body.push(']');
    if let Some(t) = next_page {
        body.push_str(&format!(",\"nextPageToken\":\"{t}\""));
    }
    if let Some(t) = next_delta {
        body.push_str(&format!(",\"nextDeltaToken\":\"{t}\""));
    }
    body.push('}');
    Bytes::from(body)
}

fn calendar_pages(ids: &[String]) -> Vec<Bytes> {
    let chunks: Vec<&[String]> = if ids.is_empty() { vec![&[]] } else { ids.chunks(PAGE_SIZE).collect() };
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(n, chunk)| {
            let records: Vec<Value> = chunk
                .iter()
                .map(|id| {
                    json!({
                        "id": id, "name": format!("Calendar {id}"), "primary": id == "cal-0000",
                        "accessRole": "owner", "timeZone": "Europe/Helsinki", "color": "#9fe1e7",
                    })
                })
                .collect();
            let mut page = json!({ "records": records });
            if n + 1 < count {
                page["nextPageToken"] = json!((n + 1).to_string());
            }
            Bytes::from(page.to_string())
        })
        .collect()
}

/// A small deterministic generator (splitmix64): the same data every run.
struct Rng(u64);

impl Rng {
    fn new(a: usize, b: usize) -> Rng {
        Rng(((a as u64) << 32) ^ (b as u64) ^ 0x005e_ed0f_b3c4)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }
}

const BASE32HEX: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const SUBJECTS: [&str; 10] = [
    "Weekly sync",
    "1:1 Anna / Ben",
    "Quarterly planning — Q3",
    "Café ☕ with the design team",
    "Réunion d'équipe",
    "Встреча с клиентом",
    "週次ミーティング",
    "Interview: <Senior Engineer> & co",
    "Standup",
    "Customer call: renewal",
];

const PEOPLE: [(&str, &str); 8] = [
    ("Anna Virtanen", "anna.virtanen@example.com"),
    ("Ben O'Neil", "ben.oneil@example.org"),
    ("Zoë Ünal", "zoe.unal@example.net"),
    ("山田太郎", "taro.yamada@example.jp"),
    ("Conference Room 4", "room4@resource.example.com"),
    ("Carlos Mendes", "carlos.mendes@example.com.br"),
    ("Priya Raman", "priya.raman@example.in"),
    ("Dana Whitfield", "dana.whitfield@example.co.uk"),
];

const ZONES: [(&str, i32); 5] =
    [("UTC", 0), ("Asia/Kolkata", 330), ("Asia/Tokyo", 540), ("America/Sao_Paulo", -180), ("Europe/Helsinki", 120)];

const DESCRIPTIONS: [&str; 3] = [
    "Agenda:\n1. Status of the open items from last week\n2. Risks & issues (see the tracker)\n3. Next steps and owners\n\nPlease read the notes beforehand. Dial-in details are below; the room has a camera.",
    "<html><body><p>Hi all,</p><p>Let's go through the numbers for the quarter and agree on the plan.</p><ul><li>Revenue</li><li>Hiring</li><li>Roadmap</li></ul><p>Thanks!</p></body></html>",
    "Join Microsoft Teams Meeting\nhttps://teams.example.com/l/meetup-join/19%3ameeting_abcdef\n+358 9 1234 5678 Finland, Helsinki (Toll)\nConference ID: 123 456 789#\nLearn more about Teams | Meeting options",
];

/// One `Event` record as JSON text. `revision` 2 is the changed version of
/// revision 1: same id, new etag, subject and modification time.
fn event(cal: &str, c: usize, i: usize, revision: u32, anchor: DateTime<Utc>) -> String {
    let mut rng = Rng::new(c, i);
    let id = if rng.percent(25) {
        format!("AAMkAGI2{}{c:04}{i:07}AAA=", rng.chars(BASE64URL, 120))
    } else {
        format!("{}{c:03x}{i:06x}", rng.chars(BASE32HEX, 17))
    };
    let mut etag = format!("\"{}\"", 3_000_000_000_000_000u64 + rng.below(1_000_000_000_000_000));
    let mut subject = rng.pick(&SUBJECTS).to_string();
    let created = anchor - Duration::minutes(rng.below(400 * 1440) as i64 + 21 * 1440);
    let mut modified = created + Duration::minutes(rng.below(20 * 1440) as i64);
    if revision > 1 {
        etag = format!("\"v{revision}-{}\"", Rng::new(c, !i).below(1_000_000_000_000));
        subject.push_str(&format!(" (rev {revision})"));
        modified = anchor;
    }
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let (start, end) = if rng.percent(5) {
        let day = anchor.date_naive() + Duration::days(rng.below(330) as i64 - 30);
        let next = day + Duration::days(1);
        (
            json!({ "dateOnly": day.format("%Y-%m-%d").to_string() }),
            json!({ "dateOnly": next.format("%Y-%m-%d").to_string() }),
        )
    } else {
        let start = anchor + Duration::minutes(15 * (rng.below(330 * 96) as i64 - 30 * 96));
        let end = start + Duration::minutes(15 * (1 + rng.below(8) as i64));
        let (zone, minutes) = *rng.pick(&ZONES);
        let offset = FixedOffset::east_opt(minutes * 60).expect("valid offset");
        let at = |t: DateTime<Utc>| t.with_timezone(&offset).to_rfc3339_opts(SecondsFormat::Secs, true);
        (json!({ "dateTime": at(start), "timezone": zone }), json!({ "dateTime": at(end), "timezone": zone }))
    };
    let person = |rng: &mut Rng| {
        let (name, address) = *rng.pick(&PEOPLE);
        json!({ "name": name, "address": address })
    };
    let organizer = person(&mut rng);
    let attendees: Vec<Value> = (0..2 + rng.below(3))
        .map(|_| {
            json!({
                "emailAddress": person(&mut rng),
                "type": *rng.pick(&["required", "optional"]),
                "response": *rng.pick(&["accepted", "tentative", "declined", "noResponse"]),
            })
        })
        .collect();
    json!({
        "id": id,
        "etag": etag,
        "calendarId": cal,
        "createdTime": stamp(created),
        "lastModifiedTime": stamp(modified),
        "subject": subject,
        "description": *rng.pick(&DESCRIPTIONS),
        "location": *rng.pick(&["Room 4.12", "Helsinki HQ, Mannerheimintie 1", "Microsoft Teams Meeting"]),
        "start": start,
        "end": end,
        "organizer": { "emailAddress": organizer },
        "meetingInfo": { "attendees": attendees, "response": "accepted" },
        "iCalUid": format!("{}@google.com", rng.chars(BASE32HEX, 26)),
        "showAs": *rng.pick(&["busy", "busy", "free", "tentative"]),
        "sensitivity": "normal",
        "visibility": "default",
        "recurrenceType": "single",
        "reminders": { "useDefault": true },
    })
    .to_string()
}
