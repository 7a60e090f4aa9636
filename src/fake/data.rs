//! Accounts, calendars, events and each calendar's change log.
//!
//! Every create, update and delete bumps the calendar's sequence number; live events are indexed
//! by the sequence of their last change and deletions leave tombstones in sequence order. A
//! delta is then just "records with `base < seq <= high`", which makes paging stateless (the
//! cursor is the last sequence returned) and loses nothing: an event changed during a drain moves
//! above the drain's high-water mark and so into the next delta.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use super::TruthEvent;
use super::error::ApiError;
use super::generate::{self, GeneratedEvent};
use super::tokens::{Stream, SyncPosition, Token, TokenCodec, fnv1a};

/// A connected account, as Aurinko sees it.
#[derive(Debug)]
pub(crate) struct Account {
    /// Shown in the request log instead of the token.
    pub name: String,
    /// Bumped by `expire_tokens`; tokens of older epochs answer 410.
    pub epoch: u32,
    /// Set by `kill_token`: every request answers 401 `token.dead`.
    pub dead: bool,
    /// Calendar numbers in creation order (the order of `GET /calendars`).
    calendars: Vec<usize>,
}

#[derive(Debug)]
struct StoredEvent {
    seq: u64,
    start_ms: i64,
    end_ms: i64,
    modified: DateTime<Utc>,
    record: Value,
}

#[derive(Debug, Serialize)]
struct Tombstone {
    #[serde(skip)]
    seq: u64,
    id: String,
    timestamp: String,
}

#[derive(Debug)]
struct CalendarData {
    id: String,
    name: String,
    primary: bool,
    removed: bool,
    color: String,
    access_role: &'static str,
    description: Option<String>,
    /// Last change sequence number handed out in this calendar.
    seq: u64,
    events: BTreeMap<String, StoredEvent>,
    /// Live events by the sequence number of their last change.
    by_seq: BTreeMap<u64, String>,
    /// Deleted events, in increasing `seq`.
    tombstones: Vec<Tombstone>,
    /// Ids of deleted events: never handed out again, so a tombstone can never hit a newer
    /// event of the same id.
    retired: HashSet<String>,
    /// `ready:false` answers left before the current provisioning is ready.
    not_ready_left: u32,
    /// Seeded from (seed, account name, calendar id), so a calendar's generated events do not
    /// depend on what else was set up before it.
    rng: StdRng,
}

/// One page of `/sync/updated` or `/sync/deleted`, already serialised.
#[derive(Debug)]
pub(crate) struct SyncPage {
    pub body: Vec<u8>,
    pub records: usize,
    pub next_page_token: Option<String>,
    pub next_delta_token: Option<String>,
}

/// One page of `GET /calendars`, already serialised.
#[derive(Debug)]
pub(crate) struct CalendarsPage {
    pub body: Vec<u8>,
    pub records: usize,
    pub next_page_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageBody<'a, T: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_delta_token: Option<&'a str>,
    length: usize,
    records: Vec<T>,
}

/// Everything the fake Aurinko knows.
pub(crate) struct Data {
    pub codec: TokenCodec,
    seed: u64,
    /// "Now" for generated data, fixed at creation so one seed gives one data set per hour.
    anchor: DateTime<Utc>,
    rng: StdRng,
    accounts: Vec<Account>,
    by_token: HashMap<String, usize>,
    calendars: Vec<CalendarData>,
    /// Given to each new provisioning.
    not_ready_polls: u32,
}

impl Data {
    pub fn new(seed: u64, not_ready_polls: u32) -> Self {
        let now = Utc::now();
        let anchor = now.date_naive().and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc()).unwrap_or(now);
        Self {
            codec: TokenCodec::new(seed),
            seed,
            anchor,
            rng: StdRng::seed_from_u64(seed),
            accounts: Vec::new(),
            by_token: HashMap::new(),
            calendars: Vec::new(),
            not_ready_polls,
        }
    }

    pub fn set_not_ready_polls(&mut self, n: u32) {
        self.not_ready_polls = n;
        for calendar in &mut self.calendars {
            calendar.not_ready_left = n;
        }
    }

    pub fn add_account(&mut self, name: &str, token: &str) {
        match self.by_token.get(token) {
            Some(&index) => self.accounts[index].name = name.to_string(),
            None => {
                self.by_token.insert(token.to_string(), self.accounts.len());
                self.accounts.push(Account { name: name.to_string(), epoch: 0, dead: false, calendars: Vec::new() });
            }
        }
    }

    pub fn account_by_token(&self, token: &str) -> Option<usize> {
        self.by_token.get(token).copied()
    }

    pub fn account(&self, index: usize) -> &Account {
        &self.accounts[index]
    }

    fn account_mut(&mut self, token: &str) -> Option<&mut Account> {
        let index = self.account_by_token(token)?;
        self.accounts.get_mut(index)
    }

    pub fn expire_tokens(&mut self, token: &str) {
        if let Some(account) = self.account_mut(token) {
            account.epoch = account.epoch.saturating_add(1);
        }
    }

    pub fn kill_token(&mut self, token: &str) {
        if let Some(account) = self.account_mut(token) {
            account.dead = true;
        }
    }

    /// Adds a calendar, or revives and renames an existing one with the same id.
    pub fn add_calendar(&mut self, token: &str, calendar_id: &str, name: &str, primary: bool) {
        let Some(account) = self.account_by_token(token) else {
            return;
        };
        let index = match self.find_calendar(account, calendar_id) {
            Some(index) => index,
            None => {
                let index = self.calendars.len();
                let key = format!("{}\n{calendar_id}", self.accounts[account].name);
                let mut rng = StdRng::seed_from_u64(fnv1a(self.seed, key.as_bytes()));
                let color = ["#9fe1e7", "#f83a22", "#7bd148", "#ffad46", "#a47ae2"][rng.random_range(0..5)];
                let access_role = if primary { "owner" } else { ["owner", "writer", "reader"][rng.random_range(0..3)] };
                let description = rng.random_bool(0.5).then(|| format!("Calendar «{name}»"));
                self.calendars.push(CalendarData {
                    id: calendar_id.to_string(),
                    name: String::new(),
                    primary: false,
                    removed: false,
                    color: color.to_string(),
                    access_role,
                    description,
                    seq: 0,
                    events: BTreeMap::new(),
                    by_seq: BTreeMap::new(),
                    tombstones: Vec::new(),
                    retired: HashSet::new(),
                    not_ready_left: self.not_ready_polls,
                    rng,
                });
                self.accounts[account].calendars.push(index);
                index
            }
        };
        if primary {
            for &other in &self.accounts[account].calendars {
                self.calendars[other].primary = false;
            }
        }
        let calendar = &mut self.calendars[index];
        calendar.name = name.to_string();
        calendar.primary = primary;
        calendar.removed = false;
    }

    pub fn remove_calendar(&mut self, token: &str, calendar_id: &str) {
        if let Some(index) = self.live_calendar_by_token(token, calendar_id) {
            self.calendars[index].removed = true;
        }
    }

    fn find_calendar(&self, account: usize, calendar_id: &str) -> Option<usize> {
        self.accounts[account].calendars.iter().copied().find(|&index| self.calendars[index].id == calendar_id)
    }

    /// A live calendar of the account by id or by the alias `primary`.
    pub fn resolve_calendar(&self, account: usize, calendar_id: &str) -> Option<usize> {
        let mut live = self.accounts[account].calendars.iter().copied().filter(|&index| !self.calendars[index].removed);
        if calendar_id == "primary" {
            live.find(|&index| self.calendars[index].primary)
        } else {
            live.find(|&index| self.calendars[index].id == calendar_id)
        }
    }

    fn live_calendar_by_token(&self, token: &str, calendar_id: &str) -> Option<usize> {
        let account = self.account_by_token(token)?;
        self.resolve_calendar(account, calendar_id)
    }

    pub fn calendar_id(&self, index: usize) -> &str {
        &self.calendars[index].id
    }

    pub fn calendar_ids(&self, token: &str) -> Vec<String> {
        let Some(account) = self.account_by_token(token) else {
            return Vec::new();
        };
        self.accounts[account]
            .calendars
            .iter()
            .map(|&index| &self.calendars[index])
            .filter(|calendar| !calendar.removed)
            .map(|calendar| calendar.id.clone())
            .collect()
    }

    fn calendar_record(&self, index: usize) -> Value {
        let c = &self.calendars[index];
        generate::calendar_record(&c.id, &c.name, c.primary, &c.color, c.access_role, c.description.as_deref())
    }

    pub fn calendar_json(&self, index: usize) -> Vec<u8> {
        serde_json::to_vec(&self.calendar_record(index)).unwrap_or_default()
    }

    // ----- events -------------------------------------------------------------------------

    fn next_seq(&mut self, index: usize) -> u64 {
        let calendar = &mut self.calendars[index];
        calendar.seq += 1;
        calendar.seq
    }

    fn fresh_event_id(&mut self, index: usize) -> String {
        loop {
            let id = generate::event_id(&mut self.calendars[index].rng);
            let calendar = &self.calendars[index];
            if !calendar.events.contains_key(&id) && !calendar.retired.contains(&id) {
                return id;
            }
        }
    }

    fn insert(&mut self, index: usize, event: GeneratedEvent, modified: Option<DateTime<Utc>>) {
        let seq = self.next_seq(index);
        let mut record = event.record;
        let modified = match modified {
            Some(at) => {
                let stamp = json!(generate::timestamp(at));
                record.insert("createdTime".into(), stamp.clone());
                record.insert("lastModifiedTime".into(), stamp);
                at
            }
            None => record
                .get("lastModifiedTime")
                .and_then(Value::as_str)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.to_utc())
                .unwrap_or(self.anchor),
        };
        let calendar = &mut self.calendars[index];
        calendar.by_seq.insert(seq, event.id.clone());
        calendar.events.insert(
            event.id,
            StoredEvent {
                seq,
                start_ms: event.start_ms,
                end_ms: event.end_ms,
                modified,
                record: Value::Object(record),
            },
        );
    }

    /// Adds `count` generated events: mostly singles, some series (master + occurrences).
    pub fn generate_events(&mut self, token: &str, calendar_id: &str, count: usize) {
        let Some(index) = self.live_calendar_by_token(token, calendar_id) else {
            return;
        };
        let anchor = self.anchor;
        let calendar_id = self.calendars[index].id.clone();
        let mut made = 0;
        while made < count {
            let id = self.fresh_event_id(index);
            let rng = &mut self.calendars[index].rng;
            let batch = if count - made >= 2 && rng.random_bool(0.08) {
                generate::series(rng, anchor, &calendar_id, id, count - made)
            } else {
                vec![generate::single(rng, anchor, &calendar_id, id)]
            };
            made += batch.len();
            for event in batch {
                self.insert(index, event, None);
            }
        }
    }

    pub fn create_event(&mut self, token: &str, calendar_id: &str) -> Option<String> {
        let index = self.live_calendar_by_token(token, calendar_id)?;
        Some(self.create_in(index))
    }

    fn create_in(&mut self, index: usize) -> String {
        let id = self.fresh_event_id(index);
        let calendar_id = self.calendars[index].id.clone();
        let rng = &mut self.calendars[index].rng;
        let event = generate::single(rng, self.anchor, &calendar_id, id.clone());
        self.insert(index, event, Some(now_millis()));
        id
    }

    pub fn update_event(&mut self, token: &str, calendar_id: &str, event_id: &str) -> bool {
        match self.live_calendar_by_token(token, calendar_id) {
            Some(index) => self.update_in(index, event_id),
            None => false,
        }
    }

    fn update_in(&mut self, index: usize, event_id: &str) -> bool {
        if !self.calendars[index].events.contains_key(event_id) {
            return false;
        }
        let seq = self.next_seq(index);
        let calendar = &mut self.calendars[index];
        let Some(event) = calendar.events.get_mut(event_id) else {
            return false;
        };
        let etag = generate::etag(&mut calendar.rng);
        let old_subject = event.record.get("subject").and_then(Value::as_str);
        let subject = generate::updated_subject(&mut calendar.rng, old_subject);
        calendar.by_seq.remove(&event.seq);
        calendar.by_seq.insert(seq, event_id.to_string());
        event.seq = seq;
        // lastModifiedTime strictly increases even when two updates share a millisecond.
        event.modified = now_millis().max(event.modified + Duration::milliseconds(1));
        if let Value::Object(record) = &mut event.record {
            record.insert("etag".into(), json!(etag));
            record.insert("subject".into(), json!(subject));
            record.insert("lastModifiedTime".into(), json!(generate::timestamp(event.modified)));
        }
        true
    }

    pub fn delete_event(&mut self, token: &str, calendar_id: &str, event_id: &str) -> bool {
        match self.live_calendar_by_token(token, calendar_id) {
            Some(index) => self.delete_in(index, event_id),
            None => false,
        }
    }

    fn delete_in(&mut self, index: usize, event_id: &str) -> bool {
        if !self.calendars[index].events.contains_key(event_id) {
            return false;
        }
        let seq = self.next_seq(index);
        let calendar = &mut self.calendars[index];
        let Some(event) = calendar.events.remove(event_id) else {
            return false;
        };
        calendar.by_seq.remove(&event.seq);
        calendar.retired.insert(event_id.to_string());
        calendar.tombstones.push(Tombstone {
            seq,
            id: event_id.to_string(),
            timestamp: generate::timestamp(now_millis()),
        });
        true
    }

    /// `count` random changes over the account's live calendars: about 40 % creates, 40 %
    /// updates, 20 % deletes (creates when a calendar is empty).
    pub fn mutate_random(&mut self, token: &str, count: usize) {
        let Some(account) = self.account_by_token(token) else {
            return;
        };
        let live: Vec<usize> =
            self.accounts[account].calendars.iter().copied().filter(|&index| !self.calendars[index].removed).collect();
        if live.is_empty() {
            return;
        }
        for _ in 0..count {
            let index = live[self.rng.random_range(0..live.len())];
            let size = self.calendars[index].events.len();
            let roll = self.rng.random_range(0..10);
            if size == 0 || roll < 4 {
                self.create_in(index);
                continue;
            }
            let nth = self.rng.random_range(0..size);
            let Some(id) = self.calendars[index].events.keys().nth(nth).cloned() else {
                continue;
            };
            if roll < 8 {
                self.update_in(index, &id);
            } else {
                self.delete_in(index, &id);
            }
        }
    }

    pub fn truth(&self, token: &str) -> Vec<TruthEvent> {
        let Some(account) = self.account_by_token(token) else {
            return Vec::new();
        };
        let mut out: Vec<TruthEvent> = self.accounts[account]
            .calendars
            .iter()
            .map(|&index| &self.calendars[index])
            .filter(|calendar| !calendar.removed)
            .flat_map(|calendar| {
                calendar.events.iter().map(|(id, event)| TruthEvent {
                    calendar_id: calendar.id.clone(),
                    id: id.clone(),
                    etag: text_field(&event.record, "etag").unwrap_or_default(),
                    subject: text_field(&event.record, "subject"),
                })
            })
            .collect();
        out.sort();
        out
    }

    // ----- protocol ----------------------------------------------------------------------

    /// `GET /calendars` from `offset`.
    pub fn calendars_page(
        &self,
        account: usize,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<CalendarsPage, ApiError> {
        let offset = match page_token.filter(|text| !text.is_empty()) {
            None => 0,
            Some(text) => match self.codec.decode(text) {
                Some(Token::Calendars { account: owner, offset }) if owner as usize == account => offset as usize,
                _ => return Err(ApiError::token_not_valid("Page token is invalid")),
            },
        };
        let live: Vec<usize> =
            self.accounts[account].calendars.iter().copied().filter(|&index| !self.calendars[index].removed).collect();
        let records: Vec<Value> =
            live.iter().skip(offset).take(page_size).map(|&index| self.calendar_record(index)).collect();
        let count = records.len();
        let end = offset + count;
        let next_page_token = (end < live.len())
            .then(|| self.codec.encode(&Token::Calendars { account: account as u32, offset: end as u32 }));
        let body = serde_json::to_vec(&PageBody {
            next_page_token: next_page_token.as_deref(),
            next_delta_token: None,
            length: count,
            records,
        })
        .unwrap_or_default();
        Ok(CalendarsPage { body, records: count, next_page_token })
    }

    /// `POST /sync`: `None` while not ready, else the two delta tokens of a new provisioning.
    pub fn provision(
        &mut self,
        account: usize,
        index: usize,
        time_min_ms: i64,
        time_max_ms: i64,
    ) -> Option<(String, String)> {
        let not_ready_polls = self.not_ready_polls;
        let calendar = &mut self.calendars[index];
        if calendar.not_ready_left > 0 {
            calendar.not_ready_left -= 1;
            return None;
        }
        // The next POST starts a new provisioning, which again takes `not_ready_polls` polls.
        calendar.not_ready_left = not_ready_polls;
        let start = calendar.seq;
        let position = |stream, base| SyncPosition {
            stream,
            account: account as u32,
            calendar: index as u32,
            epoch: self.accounts[account].epoch,
            time_min_ms,
            time_max_ms,
            base,
        };
        let updated = self.codec.encode(&Token::Delta(position(Stream::Updated, 0)));
        let deleted = self.codec.encode(&Token::Delta(position(Stream::Deleted, start)));
        Some((updated, deleted))
    }

    /// One page of `/sync/updated` or `/sync/deleted`; exactly one of the tokens must be given.
    pub fn sync_page(
        &self,
        account: usize,
        index: usize,
        stream: Stream,
        delta_token: Option<&str>,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<SyncPage, ApiError> {
        let (position, high, after) = match (delta_token, page_token) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("Only one of deltaToken and pageToken may be given"));
            }
            (None, None) => {
                return Err(ApiError::bad_request("One of deltaToken and pageToken is required"));
            }
            (Some(text), None) => match self.codec.decode(text) {
                Some(Token::Delta(position)) => {
                    let high = self.calendars[index].seq;
                    let after = position.base;
                    (position, high, after)
                }
                _ => return Err(ApiError::token_not_valid("Delta token is invalid")),
            },
            (None, Some(text)) => match self.codec.decode(text) {
                Some(Token::Page { position, high, after }) => (position, high, after),
                _ => return Err(ApiError::token_not_valid("Page token is invalid")),
            },
        };
        if position.account as usize != account || position.calendar as usize != index || position.stream != stream {
            return Err(ApiError::token_not_valid("Token belongs to another calendar or stream"));
        }
        let epoch = self.accounts[account].epoch;
        if position.epoch < epoch {
            return Err(ApiError::sync_token_expired());
        }
        if position.epoch > epoch {
            return Err(ApiError::token_not_valid("Token is invalid"));
        }
        let page_size = page_size.max(1);
        let calendar = &self.calendars[index];
        let (records, body, last_seq, more) = match stream {
            Stream::Updated => {
                let mut matching = calendar
                    .by_seq
                    .range((Bound::Excluded(after), Bound::Included(high.max(after))))
                    .filter_map(|(&seq, id)| calendar.events.get(id).map(|event| (seq, event)))
                    .filter(|(_, event)| event.end_ms > position.time_min_ms && event.start_ms < position.time_max_ms);
                let page: Vec<(u64, &StoredEvent)> = matching.by_ref().take(page_size).collect();
                let more = matching.next().is_some();
                let last = page.last().map(|(seq, _)| *seq);
                let records: Vec<&Value> = page.iter().map(|(_, event)| &event.record).collect();
                (page.len(), Body::Events(records), last, more)
            }
            Stream::Deleted => {
                let start = calendar.tombstones.partition_point(|t| t.seq <= after);
                let mut matching = calendar.tombstones[start..].iter().take_while(|t| t.seq <= high);
                let page: Vec<&Tombstone> = matching.by_ref().take(page_size).collect();
                let more = matching.next().is_some();
                let last = page.last().map(|t| t.seq);
                (page.len(), Body::Deleted(page), last, more)
            }
        };
        let (next_page_token, next_delta_token) = match last_seq {
            Some(last) if more => {
                let token = Token::Page { position, high, after: last };
                (Some(self.codec.encode(&token)), None)
            }
            _ => {
                let token = Token::Delta(SyncPosition { base: high.max(after), ..position });
                (None, Some(self.codec.encode(&token)))
            }
        };
        let body = match body {
            Body::Events(records) => serde_json::to_vec(&PageBody {
                next_page_token: next_page_token.as_deref(),
                next_delta_token: next_delta_token.as_deref(),
                length: records.len(),
                records,
            }),
            Body::Deleted(records) => serde_json::to_vec(&PageBody {
                next_page_token: next_page_token.as_deref(),
                next_delta_token: next_delta_token.as_deref(),
                length: records.len(),
                records,
            }),
        }
        .unwrap_or_default();
        Ok(SyncPage { body, records, next_page_token, next_delta_token })
    }
}

enum Body<'a> {
    Events(Vec<&'a Value>),
    Deleted(Vec<&'a Tombstone>),
}

fn text_field(record: &Value, key: &str) -> Option<String> {
    record.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Now, at the millisecond precision the records carry.
fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
