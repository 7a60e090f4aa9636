//! The floor: the same rows upserted straight into SQLite by the simplest
//! loop, in this process. Same schema (the store opens the file and applies
//! its migrations), same pragmas (WAL, synchronous = NORMAL, the store's
//! page cache size), a prepared
//! `INSERT ... ON CONFLICT DO UPDATE` of the same columns, pages of 100
//! rows committed `pages_per_transaction` at a time. The records are parsed
//! into their column values beforehand, so only SQLite is timed.
//!
//! The product commits up to 10,000 rows per transaction, so a floor of one
//! page per transaction flatters it: the benchmark runs several batch sizes
//! and compares with the fastest.

use std::path::Path;
use std::time::{Duration, Instant};

use aurinko_sync::model::{Kind, PageRecord, Row, parse_event};
use aurinko_sync::store::{PAGE_CACHE_KIB, Store, WRITER_FRAMES};
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::data::Dataset;

pub struct Page {
    pub calendar: String,
    pub rows: Vec<Row>,
}

pub struct Prepared {
    /// Calendar by calendar, as `Dataset::full_pages`.
    pub pages: Vec<Page>,
    pub rows: usize,
    /// Time to decode the page bodies and parse every record into its row
    /// (`parse_event`, the sync's own), for reference.
    pub parse: Duration,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

pub fn prepare(data: &Dataset) -> Prepared {
    let started = Instant::now();
    let mut pages = Vec::with_capacity(data.full_pages.len());
    let mut rows = 0;
    for (c, token) in &data.full_pages {
        let body = &data.updated[token];
        let envelope: Envelope<'_> = serde_json::from_slice(body).expect("pages are JSON");
        let parsed: Vec<Row> =
            envelope.records.iter().map(|r| parse_event(r).expect("generated events have ids")).collect();
        rows += parsed.len();
        pages.push(Page { calendar: data.calendars[*c].clone(), rows: parsed });
    }
    Prepared { pages, rows, parse: started.elapsed() }
}

/// A page as the sync decodes it: each record split into its fields in
/// the page's one pass.
#[derive(Deserialize)]
struct SplitEnvelope<'a> {
    #[serde(borrow)]
    records: Vec<PageRecord<'a>>,
}

/// The CPU time to decode every page and parse its records as the sync
/// does, each page's rows dropped before the next (`BENCH_ONLY_PARSE`).
pub fn parse_only(data: &Dataset) -> Duration {
    let cpu = crate::process::thread_cpu();
    for (_, token) in &data.full_pages {
        let body = &data.updated[token];
        let envelope: SplitEnvelope<'_> = serde_json::from_slice(body).expect("pages are JSON");
        let text = std::str::from_utf8(body).expect("pages are text");
        let rows: Vec<Row> = envelope
            .records
            .into_iter()
            .map(|r| Kind::Calendar.row_of(r.in_body(text).expect("placed").expect("an object")).expect("an id"))
            .collect();
        std::hint::black_box(rows);
    }
    crate::process::thread_cpu().saturating_sub(cpu)
}

impl Prepared {
    /// The pages in their calendar-by-calendar order.
    pub fn in_order(&self) -> Vec<usize> {
        (0..self.pages.len()).collect()
    }

    /// The pages in the order a sync with `concurrency` calendars at a
    /// time writes them: the first `concurrency` calendars' pages in turn,
    /// then the next ones'. Not a floor (the simplest loop writes one
    /// calendar at a time); it shows what interleaving costs SQLite alone.
    pub fn interleaved(&self, concurrency: usize) -> Vec<usize> {
        let mut calendars: Vec<Vec<usize>> = Vec::new();
        for (i, page) in self.pages.iter().enumerate() {
            match calendars.last_mut() {
                Some(pages) if self.pages[pages[0]].calendar == page.calendar => pages.push(i),
                _ => calendars.push(vec![i]),
            }
        }
        let mut order = Vec::with_capacity(self.pages.len());
        for group in calendars.chunks(concurrency.max(1)) {
            let longest = group.iter().map(Vec::len).max().unwrap_or(0);
            order.extend((0..longest).flat_map(|n| group.iter().filter_map(move |pages| pages.get(n).copied())));
        }
        order
    }
}

pub struct FloorResult {
    pub rows: usize,
    pub wall: Duration,
    /// CPU time of the loop (this thread): unlike wall time, it hardly
    /// depends on what else the machine runs.
    pub cpu: Duration,
}

const UPSERT: &str = "INSERT INTO events (account, calendar_id, event_id, etag, subject, start_time, end_time, all_day,
                                    last_modified, ical_uid, recurrence_type, time_zone, start_local, end_local,
                                    master_id, original_start, raw, generation, synced_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
     ON CONFLICT (account, calendar_id, event_id) DO UPDATE SET
        etag = excluded.etag, subject = excluded.subject, start_time = excluded.start_time,
        end_time = excluded.end_time, all_day = excluded.all_day, last_modified = excluded.last_modified,
        ical_uid = excluded.ical_uid, recurrence_type = excluded.recurrence_type, time_zone = excluded.time_zone,
        start_local = excluded.start_local, end_local = excluded.end_local, master_id = excluded.master_id,
        original_start = excluded.original_start, raw = excluded.raw,
        generation = excluded.generation, synced_at = excluded.synced_at";

/// Pages per transaction the benchmark tries; the floor is the fastest.
pub const PAGES_PER_TRANSACTION: [usize; 3] = [1, 10, 100];

/// Where the loop's checkpoints (copying the WAL into the database file)
/// run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// SQLite's default: inside the commit that takes the WAL past 1,000
    /// pages. The floor.
    InTheCommit,
    /// On a second thread with a connection of its own, nudged after each
    /// commit, the loop's connection checkpointing itself only past the
    /// store's [`WRITER_FRAMES`]: the sync's store since 2026-12-02. Not
    /// a floor: it shows what that arrangement alone gains SQLite.
    OnASecondThread,
}

/// Upserts every prepared row into a fresh store under `dir`, page by page
/// in `order` (indexes into `prepared.pages`), committing every
/// `pages_per_transaction` pages.
pub fn run(
    dir: &Path,
    prepared: &Prepared,
    order: &[usize],
    pages_per_transaction: usize,
    checkpoints: Checkpoints,
) -> FloorResult {
    let path = dir.join(format!("floor-{pages_per_transaction}.db"));
    drop(Store::open(&path).expect("the store creates the schema"));
    let mut conn = Connection::open(&path).expect("floor database opens");
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("WAL");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
    conn.execute_batch(&format!("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{PAGE_CACHE_KIB}")).expect("pragma");
    let synced_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (started, cpu) = (Instant::now(), crate::process::thread_cpu());
    let mut checkpointer = None;
    if checkpoints == Checkpoints::OnASecondThread {
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {WRITER_FRAMES}")).expect("pragma");
        let (nudge, nudges) = std::sync::mpsc::sync_channel::<()>(1);
        let other = Connection::open(&path).expect("floor database opens");
        let thread = std::thread::spawn(move || {
            while nudges.recv().is_ok() {
                other.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).expect("checkpoint");
            }
        });
        checkpointer = Some((nudge, thread));
    }
    for pages in order.chunks(pages_per_transaction) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
        {
            let mut upsert = tx.prepare_cached(UPSERT).expect("prepare");
            let pages = pages.iter().map(|i| &prepared.pages[*i]);
            for (page, row) in pages.flat_map(|p| p.rows.iter().map(move |r| (p, r))) {
                upsert
                    .execute(params![
                        "bench",
                        page.calendar,
                        row.id,
                        row.etag,
                        row.text(0),
                        row.text(1),
                        row.text(2),
                        row.flag(3).unwrap_or(false),
                        row.text(4),
                        row.text(5),
                        row.text(6),
                        row.text(7),
                        row.text(8),
                        row.text(9),
                        row.text(10),
                        row.text(11),
                        row.raw,
                        1i64,
                        synced_at,
                    ])
                    .expect("upsert");
            }
        }
        tx.commit().expect("commit");
        if let Some((nudge, _)) = &checkpointer {
            let _ = nudge.try_send(());
        }
    }
    if let Some((nudge, thread)) = checkpointer {
        // Timed: the last checkpoint is part of the work.
        drop(nudge);
        thread.join().expect("the checkpoint thread ends");
    }
    let (wall, cpu) = (started.elapsed(), crate::process::thread_cpu().saturating_sub(cpu));
    let rows: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count");
    FloorResult { rows: rows as usize, wall, cpu }
}

/// Calendars the benchmark's sync works on at a time (its `concurrency`).
pub const CONCURRENCY: usize = 4;

/// Pages per transaction of the reference run in the sync's order
/// ([`Prepared::interleaved`]): as many as the sync's batches hold.
pub const INTERLEAVED_PAGES: usize = 100;

/// The floor's runs, by [`PAGES_PER_TRANSACTION`] variant, in order, and
/// the reference run in the sync's order.
pub struct Floors {
    pub rows: usize,
    pub walls: Vec<Vec<Duration>>,
    pub cpu: Vec<Vec<Duration>>,
    pub interleaved_walls: Vec<Duration>,
    pub interleaved_cpu: Vec<Duration>,
    /// The strongest variant with [`Checkpoints::OnASecondThread`].
    pub second_thread_walls: Vec<Duration>,
    pub second_thread_cpu: Vec<Duration>,
}

impl Floors {
    pub fn new(rows: usize) -> Floors {
        Floors {
            rows,
            walls: vec![Vec::new(); PAGES_PER_TRANSACTION.len()],
            cpu: vec![Vec::new(); PAGES_PER_TRANSACTION.len()],
            interleaved_walls: Vec::new(),
            interleaved_cpu: Vec::new(),
            second_thread_walls: Vec::new(),
            second_thread_cpu: Vec::new(),
        }
    }

    pub fn rate(&self, wall: Duration) -> f64 {
        self.rows as f64 / wall.as_secs_f64()
    }

    /// The variant with the highest median rate: the floor.
    pub fn strongest(&self) -> usize {
        (0..self.walls.len()).min_by_key(|v| crate::median(&self.walls[*v])).unwrap_or(0)
    }
}
