//! Accounts, their collections and each collection's change log.
//!
//! A collection is one calendar's events, an account's mailbox, its address book or one task
//! list's tasks; each lives in
//! a [`Store`]. Every create, update and delete bumps the store's sequence number; live records
//! are indexed by the sequence of their last change and deletions leave tombstones in sequence
//! order. A delta is then just "records with `base < seq <= high`", which makes paging stateless
//! (the cursor is the last sequence returned) and loses nothing: a record changed during a drain
//! moves above the drain's high-water mark and so into the next delta.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ExpiredAnswer};
use super::generate::{self, GeneratedEvent};
use super::mail::{self, Bodies};
use super::tokens::{BodyType, Stream, SyncPosition, Token, TokenCodec, fnv1a};
use super::{Collection, TruthEvent, TruthRecord, contacts, tasks};

/// What a store holds; decides record shapes, the window filter and the tombstone shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Calendar,
    Email,
    Contacts,
    Tasks,
}

/// What happened to a record, as webhook notifications report it (`changeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// One record change, journaled for webhook notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub store: usize,
    pub id: String,
    pub change: ChangeType,
}

/// A connected account, as Aurinko sees it.
/// An account's `tokenStatus` (spec `TokenStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Ready for use.
    Active,
    /// Aurinko got a 401 from the provider, and still tries it: requests are answered.
    Invalid,
    /// The OAuth refresh failed for good; requests answer 401 `token.dead`.
    Dead,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Invalid => "invalid",
            TokenStatus::Dead => "dead",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Account {
    /// Shown in the request log instead of the token.
    pub name: String,
    /// Bumped by `expire_tokens`; tokens of older epochs answer 410.
    pub epoch: u32,
    /// What `GET /v1/am/accounts` says of the token; `kill_token` makes it dead (every
    /// request answers 401 `token.dead`), `set_token_status` anything.
    pub status: TokenStatus,
    /// Cleared by `disconnect_account`: gone from the app's accounts, every request 401.
    pub connected: bool,
    /// Calendar numbers in creation order (the order of `GET /calendars`).
    calendars: Vec<usize>,
    /// Task list numbers in creation order (the order of `GET /tasklists`).
    task_lists: Vec<usize>,
    /// Store numbers of the mailbox and the address book, which every account has.
    email: usize,
    contacts: usize,
}

#[derive(Debug)]
struct Item {
    seq: u64,
    /// Events: their interval; messages: `receivedAt` at both ends; contacts: 0; tasks:
    /// `completed` at both ends, or the whole range for a task that is not completed (see
    /// [`task_span`]).
    start_ms: i64,
    end_ms: i64,
    modified: DateTime<Utc>,
    record: Map<String, Value>,
    /// Messages only: the body, put into the record as the provisioning's `bodyType` asks.
    bodies: Option<Box<Bodies>>,
}

/// `DeletedRecord`, or `DeletedEmailMessage` when the two message fields are set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tombstone {
    #[serde(skip)]
    seq: u64,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    internet_message_id: Option<String>,
    timestamp: String,
}

/// One collection's records and change log.
#[derive(Debug)]
struct Store {
    kind: Kind,
    /// The calendar id for calendar stores (events carry it), empty otherwise.
    calendar_id: String,
    /// Last change sequence number handed out in this store.
    seq: u64,
    items: BTreeMap<String, Item>,
    /// Live records by the sequence number of their last change.
    by_seq: BTreeMap<u64, String>,
    /// Deleted records, in increasing `seq`.
    tombstones: Vec<Tombstone>,
    /// Ids of deleted records: never handed out again, so a tombstone can never hit a newer
    /// record of the same id.
    retired: HashSet<String>,
    /// `ready:false` answers left before the current provisioning is ready.
    not_ready_left: u32,
    /// Set by `set_sync_not_found`: the sync endpoints answer 404.
    sync_not_found: bool,
    /// Set by `set_delta_refused`: `/sync/updated` and `/sync/deleted` answer 400.
    delta_refused: bool,
    /// Seeded from (seed, account name, collection), so a collection's generated records do not
    /// depend on what else was set up before it.
    rng: StdRng,
}

impl Store {
    fn new(kind: Kind, calendar_id: &str, not_ready_left: u32, rng: StdRng) -> Self {
        Self {
            kind,
            calendar_id: calendar_id.to_string(),
            seq: 0,
            items: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            tombstones: Vec::new(),
            retired: HashSet::new(),
            not_ready_left,
            sync_not_found: false,
            delta_refused: false,
            rng,
        }
    }

    fn fresh_id(&mut self) -> String {
        loop {
            let id = match self.kind {
                Kind::Calendar => generate::event_id(&mut self.rng),
                Kind::Email => mail::message_id(&mut self.rng),
                Kind::Contacts => contacts::contact_id(&mut self.rng),
                Kind::Tasks => tasks::task_id(&mut self.rng),
            };
            if !self.items.contains_key(&id) && !self.retired.contains(&id) {
                return id;
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Adds a record; with `stamp`, its `createdTime` and `lastModifiedTime` become `stamp`.
    fn insert(
        &mut self,
        id: String,
        (start_ms, end_ms): (i64, i64),
        mut record: Map<String, Value>,
        bodies: Option<Bodies>,
        stamp: Option<DateTime<Utc>>,
        anchor: DateTime<Utc>,
    ) {
        let seq = self.next_seq();
        let modified = match stamp {
            Some(at) => {
                let text = json!(generate::timestamp(at));
                // `Task` has no `createdTime`.
                if self.kind != Kind::Tasks {
                    record.insert("createdTime".into(), text.clone());
                }
                record.insert("lastModifiedTime".into(), text);
                at
            }
            None => record
                .get("lastModifiedTime")
                .and_then(Value::as_str)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.to_utc())
                .unwrap_or(anchor),
        };
        self.by_seq.insert(seq, id.clone());
        self.items.insert(id, Item { seq, start_ms, end_ms, modified, record, bodies: bodies.map(Box::new) });
    }

    /// Moves a live record to a new sequence number and a strictly later `modified` time, and
    /// returns it for the caller to change.
    fn touch(&mut self, id: &str) -> Option<(&mut Item, &mut StdRng)> {
        if !self.items.contains_key(id) {
            return None;
        }
        let seq = self.next_seq();
        let item = self.items.get_mut(id)?;
        self.by_seq.remove(&item.seq);
        self.by_seq.insert(seq, id.to_string());
        item.seq = seq;
        // lastModifiedTime strictly increases even when two updates share a millisecond.
        item.modified = now_millis().max(item.modified + Duration::milliseconds(1));
        Some((item, &mut self.rng))
    }

    fn remove(&mut self, id: &str) -> bool {
        if !self.items.contains_key(id) {
            return false;
        }
        let seq = self.next_seq();
        let Some(item) = self.items.remove(id) else {
            return false;
        };
        self.by_seq.remove(&item.seq);
        self.retired.insert(id.to_string());
        let (folder_id, internet_message_id) = match self.kind {
            Kind::Email => (
                Some(text_field(&item.record, "folderId").unwrap_or_default()),
                Some(text_field(&item.record, "internetMessageId").unwrap_or_default()),
            ),
            _ => (None, None),
        };
        self.tombstones.push(Tombstone {
            seq,
            id: id.to_string(),
            folder_id,
            internet_message_id,
            timestamp: generate::timestamp(now_millis()),
        });
        true
    }

    /// The record as served to a provisioning with `body`.
    fn render<'a>(&self, item: &'a Item, body: BodyType) -> Cow<'a, Map<String, Value>> {
        match &item.bodies {
            Some(bodies) => Cow::Owned(mail::render(&item.record, bodies, body)),
            None => Cow::Borrowed(&item.record),
        }
    }
}

#[derive(Debug)]
struct CalendarData {
    id: String,
    name: String,
    primary: bool,
    removed: bool,
    /// Shared with the user: listed only with `withShared=true`.
    shared: bool,
    color: String,
    access_role: &'static str,
    description: Option<String>,
    /// The store of the calendar's events.
    store: usize,
}

#[derive(Debug)]
struct TaskListData {
    id: String,
    title: String,
    default: bool,
    removed: bool,
    etag: String,
    modified: DateTime<Utc>,
    /// The store of the list's tasks.
    store: usize,
}

/// A task's interval for the provisioning filter (`end > time_min && start < time_max`): a
/// completed task sits at its completion time, so `skipCompletedBeforeDate` (sent as
/// `time_min`) leaves out those completed before it; an open task spans everything.
fn task_span(completed: Option<DateTime<Utc>>) -> (i64, i64) {
    match completed {
        Some(at) => (at.timestamp_millis(), at.timestamp_millis()),
        None => (i64::MIN, i64::MAX),
    }
}

/// One page of `/sync/updated` or `/sync/deleted`, already serialised.
#[derive(Debug)]
pub(crate) struct SyncPage {
    pub body: Vec<u8>,
    pub records: usize,
    pub next_page_token: Option<String>,
    pub next_delta_token: Option<String>,
}

/// Which listing a page belongs to.
#[derive(Clone, Copy)]
enum Listing {
    Calendars,
    TaskLists,
}

/// One page of `GET /calendars` or `GET /tasklists`, already serialised.
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
    task_lists: Vec<TaskListData>,
    stores: Vec<Store>,
    /// Given to each new provisioning.
    not_ready_polls: u32,
    /// How tokens of an older epoch are refused.
    pub expired_answer: ExpiredAnswer,
    /// The last page of a drain carries no `nextDeltaToken` (nor a page token).
    pub omit_next_delta_token: bool,
    /// Record changes since the last [`Data::take_changes`], in order.
    journal: Vec<Change>,
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
            task_lists: Vec::new(),
            stores: Vec::new(),
            not_ready_polls,
            expired_answer: ExpiredAnswer::default(),
            omit_next_delta_token: false,
            journal: Vec::new(),
        }
    }

    /// The record changes made since the last call, in order.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.journal)
    }

    fn journal(&mut self, store: usize, id: String, change: ChangeType) {
        self.journal.push(Change { store, id, change });
    }

    /// "Now" for generated data: today's midnight (UTC) when the fake was created.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.anchor
    }

    pub fn set_not_ready_polls(&mut self, n: u32) {
        self.not_ready_polls = n;
        for store in &mut self.stores {
            store.not_ready_left = n;
        }
    }

    fn add_store(&mut self, kind: Kind, calendar_id: &str, rng: StdRng) -> usize {
        self.stores.push(Store::new(kind, calendar_id, self.not_ready_polls, rng));
        self.stores.len() - 1
    }

    fn store_rng(&self, account_name: &str, collection: &str) -> StdRng {
        let key = format!("{account_name}\n{collection}");
        StdRng::seed_from_u64(fnv1a(self.seed, key.as_bytes()))
    }

    pub fn add_account(&mut self, name: &str, token: &str) {
        match self.by_token.get(token) {
            Some(&index) => self.accounts[index].name = name.to_string(),
            None => {
                // NUL cannot start a calendar id in a path, so these keys never meet a calendar's.
                let email = self.add_store(Kind::Email, "", self.store_rng(name, "\0email"));
                let contacts = self.add_store(Kind::Contacts, "", self.store_rng(name, "\0contacts"));
                self.by_token.insert(token.to_string(), self.accounts.len());
                self.accounts.push(Account {
                    name: name.to_string(),
                    epoch: 0,
                    status: TokenStatus::Active,
                    connected: true,
                    calendars: Vec::new(),
                    task_lists: Vec::new(),
                    email,
                    contacts,
                });
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
        self.set_token_status(token, TokenStatus::Dead);
    }

    pub fn set_token_status(&mut self, token: &str, status: TokenStatus) {
        if let Some(account) = self.account_mut(token) {
            account.status = status;
        }
    }

    pub fn disconnect(&mut self, token: &str) {
        if let Some(account) = self.account_mut(token) {
            account.connected = false;
        }
    }

    /// Every account, in the order they were added (which is the order of their ids).
    pub fn account_count(&self) -> usize {
        self.accounts.len()
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
                let mut rng = self.store_rng(&self.accounts[account].name, calendar_id);
                let color = ["#9fe1e7", "#f83a22", "#7bd148", "#ffad46", "#a47ae2"][rng.random_range(0..5)];
                let access_role = if primary { "owner" } else { ["owner", "writer", "reader"][rng.random_range(0..3)] };
                let description = rng.random_bool(0.5).then(|| format!("Calendar «{name}»"));
                let store = self.add_store(Kind::Calendar, calendar_id, rng);
                self.calendars.push(CalendarData {
                    id: calendar_id.to_string(),
                    name: String::new(),
                    primary: false,
                    removed: false,
                    shared: false,
                    color: color.to_string(),
                    access_role,
                    description,
                    store,
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

    /// Adds a task list, or revives and renames an existing one with the same id. Marking it the
    /// default unmarks the previous one.
    pub fn add_task_list(&mut self, token: &str, task_list_id: &str, title: &str, default: bool) {
        let Some(account) = self.account_by_token(token) else {
            return;
        };
        let existing =
            self.accounts[account].task_lists.iter().copied().find(|&index| self.task_lists[index].id == task_list_id);
        let index = match existing {
            Some(index) => index,
            None => {
                let index = self.task_lists.len();
                let rng = self.store_rng(&self.accounts[account].name, &format!("\0tasks\0{task_list_id}"));
                let store = self.add_store(Kind::Tasks, "", rng);
                self.task_lists.push(TaskListData {
                    id: task_list_id.to_string(),
                    title: String::new(),
                    default: false,
                    removed: false,
                    etag: String::new(),
                    modified: self.anchor,
                    store,
                });
                self.accounts[account].task_lists.push(index);
                index
            }
        };
        if default {
            for &other in &self.accounts[account].task_lists {
                self.task_lists[other].default = false;
            }
        }
        let etag = generate::etag(&mut self.rng);
        let list = &mut self.task_lists[index];
        list.title = title.to_string();
        list.default = default;
        list.removed = false;
        list.etag = etag;
        list.modified = now_millis();
    }

    /// The task list disappears from `GET /tasklists` and its endpoints answer 404.
    pub fn remove_task_list(&mut self, token: &str, task_list_id: &str) {
        let Some(account) = self.account_by_token(token) else {
            return;
        };
        if let Some(index) = self.resolve_task_list(account, task_list_id) {
            self.task_lists[index].removed = true;
        }
    }

    /// A live task list of the account by id, or by the alias `default` (which webhook
    /// resources use).
    pub fn resolve_task_list(&self, account: usize, task_list_id: &str) -> Option<usize> {
        let mut live =
            self.accounts[account].task_lists.iter().copied().filter(|&index| !self.task_lists[index].removed);
        if task_list_id == "default" {
            live.find(|&index| self.task_lists[index].default)
        } else {
            live.find(|&index| self.task_lists[index].id == task_list_id)
        }
    }

    pub fn task_list_id(&self, index: usize) -> &str {
        &self.task_lists[index].id
    }

    pub fn task_list_store(&self, index: usize) -> usize {
        self.task_lists[index].store
    }

    fn task_list_record(&self, index: usize) -> Value {
        let t = &self.task_lists[index];
        tasks::task_list_record(&t.id, &t.title, t.default, &t.etag, t.modified)
    }

    pub fn task_list_json(&self, index: usize) -> Vec<u8> {
        serde_json::to_vec(&self.task_list_record(index)).unwrap_or_default()
    }

    /// Ids of the account's live task lists, in `GET /tasklists` order.
    pub fn task_list_ids(&self, token: &str) -> Vec<String> {
        let Some(account) = self.account_by_token(token) else {
            return Vec::new();
        };
        let lists = &self.accounts[account].task_lists;
        lists.iter().map(|&index| &self.task_lists[index]).filter(|t| !t.removed).map(|t| t.id.clone()).collect()
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

    pub fn calendar_store(&self, index: usize) -> usize {
        self.calendars[index].store
    }

    pub fn email_store(&self, account: usize) -> usize {
        self.accounts[account].email
    }

    pub fn contacts_store(&self, account: usize) -> usize {
        self.accounts[account].contacts
    }

    pub fn store_kind(&self, store: usize) -> Kind {
        self.stores[store].kind
    }

    pub fn set_sync_not_found(&mut self, store: usize, on: bool) {
        self.stores[store].sync_not_found = on;
    }

    pub fn sync_not_found(&self, store: usize) -> bool {
        self.stores[store].sync_not_found
    }

    pub fn set_delta_refused(&mut self, store: usize, on: bool) {
        self.stores[store].delta_refused = on;
    }

    pub fn delta_refused(&self, store: usize) -> bool {
        self.stores[store].delta_refused
    }

    /// The store behind a collection of the account of `token`; calendars by id or `primary`,
    /// live ones only.
    pub fn store_of(&self, token: &str, collection: &Collection) -> Option<usize> {
        let account = self.account_by_token(token)?;
        match collection {
            Collection::Calendar(id) => self.resolve_calendar(account, id).map(|index| self.calendars[index].store),
            Collection::Email => Some(self.accounts[account].email),
            Collection::Contacts => Some(self.accounts[account].contacts),
            Collection::Tasks(id) => self.resolve_task_list(account, id).map(|index| self.task_lists[index].store),
        }
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

    // ----- records ------------------------------------------------------------------------

    fn insert_event(&mut self, store: usize, event: GeneratedEvent, stamp: Option<DateTime<Utc>>) {
        let anchor = self.anchor;
        self.stores[store].insert(event.id, (event.start_ms, event.end_ms), event.record, None, stamp, anchor);
    }

    /// Adds `count` generated records to a store. Calendars get mostly single events and some
    /// series (master + occurrences); mailboxes messages received over the last two months;
    /// address books contacts.
    pub fn generate(&mut self, store: usize, count: usize) {
        let anchor = self.anchor;
        match self.stores[store].kind {
            Kind::Calendar => {
                let calendar_id = self.stores[store].calendar_id.clone();
                let mut made = 0;
                while made < count {
                    let id = self.stores[store].fresh_id();
                    let rng = &mut self.stores[store].rng;
                    let batch = if count - made >= 2 && rng.random_bool(0.08) {
                        generate::series(rng, anchor, &calendar_id, id, count - made)
                    } else {
                        vec![generate::single(rng, anchor, &calendar_id, id)]
                    };
                    made += batch.len();
                    for event in batch {
                        let id = event.id.clone();
                        self.insert_event(store, event, None);
                        self.journal(store, id, ChangeType::Created);
                    }
                }
            }
            Kind::Email => {
                for _ in 0..count {
                    let s = &mut self.stores[store];
                    let id = s.fresh_id();
                    let m = mail::message(&mut s.rng, anchor, id.clone(), None);
                    let received = m.received.timestamp_millis();
                    s.insert(m.id, (received, received), m.record, Some(m.bodies), None, anchor);
                    self.journal(store, id, ChangeType::Created);
                }
            }
            Kind::Contacts => {
                for _ in 0..count {
                    let s = &mut self.stores[store];
                    let id = s.fresh_id();
                    let record = contacts::contact(&mut s.rng, anchor, id.clone(), None);
                    s.insert(id.clone(), (0, 0), record, None, None, anchor);
                    self.journal(store, id, ChangeType::Created);
                }
            }
            Kind::Tasks => {
                for _ in 0..count {
                    let id = self.stores[store].fresh_id();
                    self.insert_task(store, id.clone(), None);
                    self.journal(store, id, ChangeType::Created);
                }
            }
        }
    }

    /// Makes task `id` (now with `stamp`, else somewhere in the past); about a quarter are subtasks
    /// of a live top-level task of the same list.
    fn insert_task(&mut self, store: usize, id: String, stamp: Option<DateTime<Utc>>) {
        let anchor = self.anchor;
        let s = &mut self.stores[store];
        let parent = if s.rng.random_bool(0.25) {
            let top: Vec<&String> =
                s.items.iter().filter(|(_, item)| !item.record.contains_key("parentId")).map(|(id, _)| id).collect();
            (!top.is_empty()).then(|| top[s.rng.random_range(0..top.len())].clone())
        } else {
            None
        };
        let record = tasks::task(&mut s.rng, anchor, id.clone(), stamp, parent.as_deref());
        let span = task_span(tasks::completed_at(&record));
        s.insert(id, span, record, None, stamp, anchor);
    }

    /// Creates one record "now" and returns its id: a single event, a message just arrived in
    /// the inbox (unread), a new contact.
    pub fn create(&mut self, store: usize) -> String {
        let anchor = self.anchor;
        let now = now_millis();
        let s = &mut self.stores[store];
        let id = s.fresh_id();
        match s.kind {
            Kind::Calendar => {
                let event = generate::single(&mut s.rng, anchor, &s.calendar_id, id.clone());
                self.insert_event(store, event, Some(now));
            }
            Kind::Email => {
                let m = mail::message(&mut s.rng, anchor, id.clone(), Some(now));
                let received = m.received.timestamp_millis();
                s.insert(m.id, (received, received), m.record, Some(m.bodies), Some(now), anchor);
            }
            Kind::Contacts => {
                let record = contacts::contact(&mut s.rng, anchor, id.clone(), Some(now));
                s.insert(id.clone(), (0, 0), record, None, Some(now), anchor);
            }
            Kind::Tasks => self.insert_task(store, id.clone(), Some(now)),
        }
        self.journal(store, id.clone(), ChangeType::Created);
        id
    }

    /// Creates a timed event from `start` to `end` now, in a calendar store, and returns its id;
    /// `None` for another kind of store.
    pub fn create_event_at(&mut self, store: usize, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<String> {
        let anchor = self.anchor;
        let s = &mut self.stores[store];
        if s.kind != Kind::Calendar {
            return None;
        }
        let id = s.fresh_id();
        let mut event = generate::single(&mut s.rng, anchor, &s.calendar_id, id.clone());
        let at = |t: DateTime<Utc>| json!({ "dateTime": generate::timestamp(t), "timezone": "UTC" });
        event.record.insert("start".into(), at(start));
        event.record.insert("end".into(), at(end));
        (event.start_ms, event.end_ms) = (start.timestamp_millis(), end.timestamp_millis());
        self.insert_event(store, event, Some(now_millis()));
        self.journal(store, id.clone(), ChangeType::Created);
        Some(id)
    }

    /// Changes a live record (later `lastModifiedTime`; new etag for events and contacts; other
    /// content); false when there is no such record.
    pub fn update(&mut self, store: usize, id: &str) -> bool {
        let kind = self.stores[store].kind;
        let Some((item, rng)) = self.stores[store].touch(id) else {
            return false;
        };
        match kind {
            Kind::Calendar => {
                let etag = generate::etag(rng);
                let old_subject = item.record.get("subject").and_then(Value::as_str);
                let subject = generate::updated_subject(rng, old_subject);
                item.record.insert("etag".into(), json!(etag));
                item.record.insert("subject".into(), json!(subject));
                item.record.insert("lastModifiedTime".into(), json!(generate::timestamp(item.modified)));
            }
            Kind::Email => mail::update(rng, &mut item.record, item.modified),
            Kind::Contacts => contacts::update(rng, &mut item.record, item.modified),
            Kind::Tasks => {
                let completed = tasks::update(rng, &mut item.record, item.modified);
                (item.start_ms, item.end_ms) = task_span(completed);
            }
        }
        self.journal(store, id.to_string(), ChangeType::Updated);
        true
    }

    /// Changes an event's subject, a contact's notes or a task's title but keeps its etag and
    /// `lastModifiedTime`, as a provider may; the change is reported by the next delta. False
    /// when there is no such record or the store holds messages (which have no etag).
    pub fn update_keeping_etag(&mut self, store: usize, id: &str) -> bool {
        let field = match self.stores[store].kind {
            Kind::Calendar => "subject",
            Kind::Contacts => "notes",
            Kind::Tasks => "title",
            Kind::Email => return false,
        };
        let Some((item, rng)) = self.stores[store].touch(id) else {
            return false;
        };
        let revision = rng.random_range(1..1_000_000);
        let old = item.record.get(field).and_then(Value::as_str).unwrap_or_default().to_string();
        item.record.insert(field.into(), json!(format!("{old} (same etag, rev {revision})")));
        self.journal(store, id.to_string(), ChangeType::Updated);
        true
    }

    /// Deletes a live record, leaving a tombstone for `/sync/deleted`.
    pub fn delete(&mut self, store: usize, id: &str) -> bool {
        let removed = self.stores[store].remove(id);
        if removed {
            self.journal(store, id.to_string(), ChangeType::Deleted);
        }
        removed
    }

    /// `count` random changes in one store: about 40 % creates, 40 % updates, 20 % deletes
    /// (creates when it is empty).
    pub fn mutate_random_in(&mut self, store: usize, count: usize) {
        for _ in 0..count {
            self.mutate_once(store);
        }
    }

    fn mutate_once(&mut self, store: usize) {
        let size = self.stores[store].items.len();
        let roll = self.rng.random_range(0..10);
        if size == 0 || roll < 4 {
            self.create(store);
            return;
        }
        let nth = self.rng.random_range(0..size);
        let Some(id) = self.stores[store].items.keys().nth(nth).cloned() else {
            return;
        };
        if roll < 8 {
            self.update(store, &id);
        } else {
            self.delete(store, &id);
        }
    }

    /// `count` random changes over the account's live calendars: about 40 % creates, 40 %
    /// updates, 20 % deletes (creates when a calendar is empty).
    pub fn mutate_random(&mut self, token: &str, count: usize) {
        let Some(account) = self.account_by_token(token) else {
            return;
        };
        let live: Vec<usize> = self.accounts[account]
            .calendars
            .iter()
            .map(|&index| &self.calendars[index])
            .filter(|calendar| !calendar.removed)
            .map(|calendar| calendar.store)
            .collect();
        if live.is_empty() {
            return;
        }
        for _ in 0..count {
            let store = live[self.rng.random_range(0..live.len())];
            self.mutate_once(store);
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
                self.stores[calendar.store].items.iter().map(|(id, event)| TruthEvent {
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

    /// Live records of a store, sorted by id, that a provisioning with `time_min_ms` and
    /// `time_max_ms` would report (see [`Data::provision`]).
    pub fn truth_records(&self, store: usize, (time_min_ms, time_max_ms): (i64, i64)) -> Vec<TruthRecord> {
        let store = &self.stores[store];
        store
            .items
            .iter()
            .filter(|(_, item)| item.end_ms > time_min_ms && item.start_ms < time_max_ms)
            .map(|(id, item)| {
                let (version, received_at) = match store.kind {
                    Kind::Email => (
                        text_field(&item.record, "lastModifiedTime").unwrap_or_default(),
                        text_field(&item.record, "receivedAt"),
                    ),
                    _ => (text_field(&item.record, "etag").unwrap_or_default(), None),
                };
                TruthRecord { id: id.clone(), version, received_at }
            })
            .collect()
    }

    /// Live records of a store, sorted by id, as they would be served now.
    pub fn truth_json(&self, store: usize, body: BodyType) -> Vec<Value> {
        let store = &self.stores[store];
        store.items.values().map(|item| Value::Object(store.render(item, body).into_owned())).collect()
    }

    // ----- protocol ----------------------------------------------------------------------

    /// Marks a calendar of the account as shared with the user (or not); false when there is
    /// no such calendar.
    pub fn set_calendar_shared(&mut self, token: &str, calendar_id: &str, shared: bool) -> bool {
        let calendar = self.account_by_token(token).and_then(|account| self.find_calendar(account, calendar_id));
        calendar.map(|index| self.calendars[index].shared = shared).is_some()
    }

    /// `GET /calendars` from `offset`; shared calendars only `with_shared`.
    pub fn calendars_page(
        &self,
        account: usize,
        page_token: Option<&str>,
        page_size: usize,
        with_shared: bool,
    ) -> Result<CalendarsPage, ApiError> {
        let listed = |index: usize| !self.calendars[index].removed && (with_shared || !self.calendars[index].shared);
        let live: Vec<usize> =
            self.accounts[account].calendars.iter().copied().filter(|&index| listed(index)).collect();
        self.listing_page(account, Listing::Calendars, &live, page_token, page_size, |index| {
            self.calendar_record(index)
        })
    }

    /// `GET /tasklists` from the offset in `page_token`.
    pub fn task_lists_page(
        &self,
        account: usize,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<CalendarsPage, ApiError> {
        let live: Vec<usize> = self.accounts[account]
            .task_lists
            .iter()
            .copied()
            .filter(|&index| !self.task_lists[index].removed)
            .collect();
        self.listing_page(account, Listing::TaskLists, &live, page_token, page_size, |index| {
            self.task_list_record(index)
        })
    }

    /// One page of a listing of `live` items, from the offset in `page_token` (a token of the
    /// same listing and account, else `token.notValid`).
    fn listing_page(
        &self,
        account: usize,
        listing: Listing,
        live: &[usize],
        page_token: Option<&str>,
        page_size: usize,
        record: impl Fn(usize) -> Value,
    ) -> Result<CalendarsPage, ApiError> {
        let token = |offset: usize| {
            let (account, offset) = (account as u32, offset as u32);
            match listing {
                Listing::Calendars => Token::Calendars { account, offset },
                Listing::TaskLists => Token::TaskLists { account, offset },
            }
        };
        let offset = match page_token.filter(|text| !text.is_empty()) {
            None => 0,
            Some(text) => match self.codec.decode(text) {
                // Only a token of this listing and account: it encodes to the same token.
                Some(decoded @ (Token::Calendars { offset, .. } | Token::TaskLists { offset, .. }))
                    if decoded == token(offset as usize) =>
                {
                    offset as usize
                }
                _ => return Err(ApiError::token_not_valid("Page token is invalid")),
            },
        };
        let records: Vec<Value> = live.iter().skip(offset).take(page_size).map(|&index| record(index)).collect();
        let count = records.len();
        let end = offset + count;
        let next_page_token = (end < live.len()).then(|| self.codec.encode(&token(end)));
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
    /// The initial updated pass reports live records with `end > time_min && start < time_max`
    /// (for messages both ends are `receivedAt`).
    pub fn provision(
        &mut self,
        account: usize,
        store: usize,
        time_min_ms: i64,
        time_max_ms: i64,
        body: BodyType,
    ) -> Option<(String, String)> {
        let not_ready_polls = self.not_ready_polls;
        let s = &mut self.stores[store];
        if s.not_ready_left > 0 {
            s.not_ready_left -= 1;
            return None;
        }
        // The next POST starts a new provisioning, which again takes `not_ready_polls` polls.
        s.not_ready_left = not_ready_polls;
        let start = s.seq;
        let position = |stream, base| SyncPosition {
            stream,
            account: account as u32,
            store: store as u32,
            epoch: self.accounts[account].epoch,
            time_min_ms,
            time_max_ms,
            body,
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
        store: usize,
        stream: Stream,
        delta_token: Option<&str>,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<SyncPage, ApiError> {
        let s = &self.stores[store];
        let (position, high, after) = match (delta_token, page_token) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("Only one of deltaToken and pageToken may be given"));
            }
            (None, None) => {
                return Err(ApiError::bad_request("One of deltaToken and pageToken is required"));
            }
            (Some(text), None) => match self.codec.decode(text) {
                Some(Token::Delta(position)) => {
                    let after = position.base;
                    (position, s.seq, after)
                }
                _ => return Err(ApiError::token_not_valid("Delta token is invalid")),
            },
            (None, Some(text)) => match self.codec.decode(text) {
                Some(Token::Page { position, high, after }) => (position, high, after),
                _ => return Err(ApiError::token_not_valid("Page token is invalid")),
            },
        };
        if position.account as usize != account || position.store as usize != store || position.stream != stream {
            return Err(ApiError::token_not_valid("Token belongs to another collection or stream"));
        }
        let epoch = self.accounts[account].epoch;
        if position.epoch < epoch {
            return Err(ApiError::expired(self.expired_answer));
        }
        if position.epoch > epoch {
            return Err(ApiError::token_not_valid("Token is invalid"));
        }
        let page_size = page_size.max(1);
        let (records, body, last_seq, more) = match stream {
            Stream::Updated => {
                let mut matching = s
                    .by_seq
                    .range((Bound::Excluded(after), Bound::Included(high.max(after))))
                    .filter_map(|(&seq, id)| s.items.get(id).map(|item| (seq, item)))
                    .filter(|(_, item)| item.end_ms > position.time_min_ms && item.start_ms < position.time_max_ms);
                let page: Vec<(u64, &Item)> = matching.by_ref().take(page_size).collect();
                let more = matching.next().is_some();
                let last = page.last().map(|(seq, _)| *seq);
                let records: Vec<Cow<'_, Map<String, Value>>> =
                    page.iter().map(|(_, item)| s.render(item, position.body)).collect();
                (page.len(), Body::Records(records), last, more)
            }
            Stream::Deleted => {
                let start = s.tombstones.partition_point(|t| t.seq <= after);
                let mut matching = s.tombstones[start..].iter().take_while(|t| t.seq <= high);
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
                let mut next = SyncPosition { base: high.max(after), ..position };
                if s.kind != Kind::Calendar {
                    // `daysWithin` limits the initial scan only: later deltas report every change.
                    next.time_min_ms = i64::MIN;
                    next.time_max_ms = i64::MAX;
                }
                (None, (!self.omit_next_delta_token).then(|| self.codec.encode(&Token::Delta(next))))
            }
        };
        let body = match body {
            Body::Records(records) => serde_json::to_vec(&PageBody {
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
    Records(Vec<Cow<'a, Map<String, Value>>>),
    Deleted(Vec<&'a Tombstone>),
}

fn text_field(record: &Map<String, Value>, key: &str) -> Option<String> {
    record.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Now, at the millisecond precision the records carry.
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
