//! The single writer, and the only write path: one thread owns the store's
//! write side. Passes send it their pages (with the state that follows
//! each), the engine and the daemon their bookkeeping ([`Change`]) and the
//! reads that must not block a runtime thread, all through one bounded
//! channel, applied in the order sent.
//!
//! Why a thread of its own: SQLite takes one writer at a time anyway, and a
//! long-lived thread costs one wake-up per job where the blocking pool cost
//! a thread hand-off per call.
//!
//! Why group commit: the fixed cost of a commit (the WAL frames of every
//! page the transaction dirtied, index pages above all; the checkpoint runs
//! on a thread of its own, see `store::checkpoint`) dwarfs a row's, so the writer keeps one transaction open and applies
//! each write as it comes, while the passes fetch and parse their next
//! pages; it commits at [`BATCH_RECORDS`], or once the queue is empty and
//! no pass with a write in the transaction is about to send another (each
//! pass's [`Chain`] says whether it is preparing one or waiting for an
//! answer), waiting at most [`GATHER`] for one. A write is answered only
//! once committed. Each write stays atomic: if one fails, the transaction
//! is rolled back and its writes applied again one transaction each (see
//! `Batch::fall_back`), so one bad write fails alone.
//!
//! Measured on the benchmark (issue 13): committing whenever the queue ran
//! dry gave transactions of a few pages and 55% of the floor; applying as
//! writes come, waiting for working passes, 32 writes in flight per pass
//! and a 16 MiB page cache give 100-page transactions and 74-76%; moving
//! the checkpoints to a thread of their own, 95% (2026-12-02).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::{Backend, Change, CommitStats, StoreError, Transaction, Write, WriteError};
use crate::model::{CollectionKey, ErrorClass, SyncState};

/// Jobs waiting for the writer. Each pass has a few writes in flight (see
/// `driver`), so this bounds memory only when many passes run at once; they
/// then wait here rather than pile parsed pages up.
const QUEUE: usize = 32;

/// A batch closes at this many records or writes (or when the queue is
/// empty), so one transaction stays short enough that the next pages do not
/// wait long. Larger transactions are cheaper per row (each commit writes
/// every page it dirtied to the WAL, and the same index pages take rows in
/// every transaction), up to what the queue can hold anyway.
const BATCH_RECORDS: usize = 10_000;
const BATCH_WRITES: usize = 1_000;

/// How long the writer waits for a write a working pass is about to send
/// before it commits what it has: a page takes a few milliseconds to fetch
/// and parse here; over a real network longer, and then the batch is
/// committed without it.
const GATHER: Duration = Duration::from_millis(20);

/// How long a write nobody waits for (an idle pass's outcome) may wait for
/// others to share its transaction: an idle daemon commits about once a
/// second instead of once per pass.
const LINGER: Duration = Duration::from_secs(1);

/// The answer to a write, with the write itself: freeing a page's rows is
/// left to the side that made them, off the writer's thread.
type Reply = oneshot::Sender<(Result<CommitStats, WriteError>, Write)>;

enum Job {
    Write(Box<Write>, Reply, Chain),
    /// Writes nobody waits for were left in `held`: linger, then commit.
    Linger,
    Load(CollectionKey, oneshot::Sender<Result<Option<SyncState>, WriteError>>),
    /// The count of operator resync requests for a collection.
    Requested(CollectionKey, oneshot::Sender<Result<i64, WriteError>>),
    /// A bookkeeping write, applied after everything sent before it.
    Change(Box<Change>, oneshot::Sender<Result<bool, WriteError>>),
    /// A read after everything sent before it is committed; the closure
    /// answers itself.
    Read(ReadJob),
    /// Finish what was queued before, then end the thread.
    Close,
    /// Wakes the writer after [`Writer::abandon`], to see it was abandoned.
    Abandon,
    /// A pass stopped to wait for an answer: the writer may be waiting for
    /// it in vain (see [`GATHER`]).
    Waiting,
}

/// A read to run on the writer's thread; it answers itself.
type ReadJob = Box<dyn FnOnce(&dyn Backend) + Send>;

/// A handle on the writer thread; clones share it. The thread ends when the
/// last handle is dropped, after the jobs already sent.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Writes nobody waits for, in the order they came; the writer takes
    /// them with its next transaction. Only the first of a run wakes it.
    held: Arc<Mutex<Vec<Write>>>,
    stats: Arc<BatchStats>,
    /// Set by [`Writer::abandon`]: the thread drops what it has not begun.
    abandoned: Arc<AtomicBool>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// How many transactions the writer committed and how many writes they
/// held, for the benchmark and `/metrics`.
#[derive(Default)]
pub struct BatchStats {
    pub transactions: AtomicU64,
    pub writes: AtomicU64,
}

/// Writes that build on each other, such as a pass's pages: each carries a
/// token that presumes the pages before it are stored. Once one of them
/// fails, the writer refuses the rest, so several can be in flight without
/// a token ever being stored past a page that was not. Clones share it.
#[derive(Clone, Default)]
pub struct Chain(Arc<ChainState>);

#[derive(Default)]
struct ChainState {
    broken: AtomicBool,
    /// The sender is preparing its next write (not waiting for an answer,
    /// not done): worth a short wait before committing.
    working: AtomicBool,
}

impl Chain {
    fn broken(&self) -> bool {
        self.0.broken.load(Ordering::SeqCst)
    }

    fn break_off(&self) {
        self.0.broken.store(true, Ordering::SeqCst);
    }

    fn working(&self) -> bool {
        self.0.working.load(Ordering::SeqCst)
    }

    /// Says the sender goes on to prepare its next write.
    pub fn working_on_next(&self) {
        self.0.working.store(true, Ordering::SeqCst);
    }

    /// Says the sender stops to wait for an answer (or is done), and wakes
    /// the writer if it may be waiting for this chain.
    pub fn waiting(&self, writer: &Writer) {
        if self.0.working.swap(false, Ordering::SeqCst) {
            // A full queue wakes the writer anyway.
            let _ = writer.jobs.try_send(Job::Waiting);
        }
    }
}

/// The answer to a write refused because an earlier one of its chain
/// failed: the pass reports that one, whose class says whether to retry.
fn after_a_failure() -> WriteError {
    WriteError { class: ErrorClass::Transient, message: "not written: an earlier write of this pass failed".into() }
}

impl Writer {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<dyn Backend>) -> Writer {
        Writer::start_gathering(store, Gathering { wait: GATHER, at_most: LINGER })
    }

    fn start_gathering(store: Arc<dyn Backend>, gathering: Gathering) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        let held = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicBool::new(false));
        let (counted, taken, killed) = (stats.clone(), held.clone(), abandoned.clone());
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || serve(store.as_ref(), queue, &taken, &counted, &killed, gathering))
            .expect("the store writer thread starts");
        Writer { jobs, held, stats, abandoned, thread: Arc::new(Mutex::new(Some(thread))) }
    }

    /// Ends the writer after the writes already queued and waits for its
    /// thread, which lets the store go: the last connection to close
    /// checkpoints the WAL into the database file. Later writes fail.
    pub async fn close(&self) {
        let _ = self.jobs.send(Job::Close).await;
        self.join().await;
    }

    /// Stops the writer as a SIGKILL stops the process, for crash-safety
    /// tests that run the engine in-process (a dropped engine's thread would
    /// otherwise commit everything still queued, which a killed process
    /// never does). From the call on, nothing more is written: a transaction
    /// under way commits or not as it would, and the writes queued or held
    /// are dropped unanswered. The returned future ends with the thread.
    /// The product never calls it: a graceful end is [`Writer::close`].
    pub fn abandon(&self) -> impl Future<Output = ()> + use<> {
        self.abandoned.store(true, Ordering::SeqCst);
        lock(&self.held).clear();
        // A full queue wakes the thread anyway, and it then sees the flag.
        let _ = self.jobs.try_send(Job::Abandon);
        self.join()
    }

    /// Waits for the thread to end (once: later calls end at once).
    fn join(&self) -> impl Future<Output = ()> + use<> {
        let thread = lock(&self.thread).take();
        async move {
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }

    /// Stores `write` (in a batch with others) and says what it changed.
    pub async fn write(&self, write: Write) -> Result<CommitStats, WriteError> {
        self.submit(write, &Chain::default()).await?.await
    }

    /// Queues `write` and returns at once with the answer to come, so the
    /// caller can fetch its next page meanwhile. Writes are applied in the
    /// order they are queued; a write whose `chain` saw a failure is
    /// refused.
    pub async fn submit(&self, write: Write, chain: &Chain) -> Result<Answer, WriteError> {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Write(Box::new(write), answer, chain.clone())).await?;
        Ok(Answer(answered))
    }

    /// Queues `write` without waiting for it: it is committed within
    /// about a second, with whatever else comes meanwhile. A failure is
    /// logged. For bookkeeping that nothing waits on (a pass's outcome in
    /// the daemon); `close` commits what is still held.
    pub fn write_later(&self, write: Write) {
        let first = {
            let mut held = lock(&self.held);
            held.push(write);
            held.len() == 1
        };
        // A full queue means the writer is busy: it takes the held writes
        // with its next transaction anyway.
        if first && let Err(mpsc::error::TrySendError::Closed(_)) = self.jobs.try_send(Job::Linger) {
            tracing::error!("store: {}", WriteError::stopped());
        }
    }

    /// Applies a bookkeeping write after every write sent before it, and
    /// says whether it found what it changes (see [`Backend::apply_change`]).
    pub async fn change(&self, change: Change) -> Result<bool, WriteError> {
        self.ask(|answer| Job::Change(Box::new(change), answer)).await
    }

    /// Runs a read of the store on the writer's thread, after every write
    /// sent before it is committed: the async side never blocks on the
    /// store's connection, which the writer may hold for a transaction.
    /// For reads that are rare (an actor starting, discovery); a pass's
    /// state is [`Writer::load`].
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WriteError> {
        self.ask(|answer| {
            Job::Read(Box::new(move |store: &dyn Backend| {
                let _ = answer.send(read(store).map_err(WriteError::from));
            }))
        })
        .await
    }

    /// A collection's stored state, read by the writer's connection so it
    /// sees every write acknowledged before.
    pub async fn load(&self, key: CollectionKey) -> Result<Option<SyncState>, WriteError> {
        self.ask(|answer| Job::Load(key, answer)).await
    }

    /// The store's count of resync requests for a collection, read once a
    /// pass: only the `resync` and `reset` commands write it, so writes held
    /// here need not land first.
    pub async fn resync_requested(&self, key: CollectionKey) -> Result<i64, WriteError> {
        self.ask(|answer| Job::Requested(key, answer)).await
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Sends the job `job` makes with the sender of its answer, and waits
    /// for that answer.
    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T, WriteError>>) -> Job) -> Result<T, WriteError> {
        let (answer, answered) = oneshot::channel();
        self.send(job(answer)).await?;
        answered.await.map_err(|_| WriteError::stopped())?
    }

    async fn send(&self, job: Job) -> Result<(), WriteError> {
        self.jobs.send(job).await.map_err(|_| WriteError::stopped())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a queued write changed, once it is committed.
pub struct Answer(oneshot::Receiver<(Result<CommitStats, WriteError>, Write)>);

impl Future for Answer {
    type Output = Result<CommitStats, WriteError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.map_or_else(|_| Err(WriteError::stopped()), |(result, _)| result))
    }
}

/// How long a batch waits for a pass still preparing its next write: up to
/// `wait` after the last arrival, `at_most` after it began to wait.
#[derive(Clone, Copy)]
struct Gathering {
    wait: Duration,
    at_most: Duration,
}

fn serve(
    store: &dyn Backend,
    mut queue: mpsc::Receiver<Job>,
    held: &Mutex<Vec<Write>>,
    stats: &BatchStats,
    abandoned: &AtomicBool,
    gathering: Gathering,
) {
    // Only for waiting on the queue with a deadline.
    let timer = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a timer for the writer");
    let mut batch = Batch {
        store,
        stats,
        held,
        open: None,
        entries: Vec::new(),
        records: 0,
        since: None,
        gather: None,
        gathering_since: None,
    };
    loop {
        let job = match batch.deadline() {
            None => queue.blocking_recv(),
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                match timer.block_on(async { tokio::time::timeout_at(deadline, queue.recv()).await }) {
                    Ok(job) => job,
                    Err(_) if abandoned.load(Ordering::SeqCst) => return,
                    Err(_) => {
                        batch.commit();
                        continue;
                    }
                }
            }
        };
        let Some(job) = job else { break };
        // Take what is queued now, up to a batch, applying each write as it
        // comes. Loads are answered at once, after the writes before them
        // are committed; writes someone waits for are committed when the
        // queue is empty and no pass of theirs is about to send more (or
        // after `GATHER`); held ones may linger.
        let mut next = Some(job);
        while let Some(job) = next.take() {
            if abandoned.load(Ordering::SeqCst) {
                // Killed: the open transaction is rolled back, the queued
                // and held writes are dropped.
                return;
            }
            match job {
                Job::Load(key, answer) => {
                    // A collection's writes are committed before its state
                    // is read; other collections' need not be, so a pass
                    // starting does not cut the batch short.
                    if batch.touches(&key) {
                        batch.commit();
                    }
                    let state = match &batch.open {
                        Some(open) => open.load_state(&key),
                        None => store.load_state(&key),
                    };
                    let _ = answer.send(state.map_err(WriteError::from));
                }
                Job::Requested(key, answer) => {
                    let requested = match &batch.open {
                        Some(open) => open.resync_requested(&key),
                        None => store.resync_requested(&key),
                    };
                    let _ = answer.send(requested.map_err(WriteError::from));
                }
                Job::Read(read) => {
                    batch.commit();
                    read(store);
                }
                Job::Change(change, answer) => {
                    // Rare (discovery, subscriptions): the batch before it
                    // is committed first, and the change applied alone.
                    batch.commit();
                    let _ = answer.send(store.apply_change(&change, Utc::now()).map_err(WriteError::from));
                }
                Job::Write(write, answer, chain) if chain.broken() => {
                    let _ = answer.send((Err(after_a_failure()), *write));
                }
                Job::Write(write, answer, chain) => batch.push(*write, Some((answer, chain))),
                Job::Linger => {
                    batch.since.get_or_insert_with(Instant::now);
                }
                Job::Close => queue.close(),
                // Seen through the flag above.
                Job::Abandon => {}
                // Only wakes the writer to decide again.
                Job::Waiting => {}
            }
            if !batch.full() {
                next = queue.try_recv().ok();
            }
        }
        if batch.full() || batch.awaited() && !batch.more_coming() {
            batch.commit();
        } else if batch.awaited() {
            // Wait for the pass still working, a while from now, but not
            // long after this batch began to wait.
            let now = Instant::now();
            let first = *batch.gathering_since.get_or_insert(now);
            batch.gather = Some((now + gathering.wait).min(first + gathering.at_most));
        }
    }
    batch.commit();
}

/// A write applied in the open transaction (or waiting to be applied
/// alone after a failure), with whom to answer once it is committed: none
/// for a held write.
struct Entry {
    write: Write,
    answer: Option<(Reply, Chain)>,
    stats: CommitStats,
}

/// The writes of the transaction under way, in the order they came.
struct Batch<'a> {
    store: &'a dyn Backend,
    stats: &'a BatchStats,
    held: &'a Mutex<Vec<Write>>,
    /// The open transaction, from the first write applied to the commit.
    open: Option<Box<dyn Transaction + 'a>>,
    entries: Vec<Entry>,
    records: usize,
    /// Since when writes nobody waits for have been held.
    since: Option<Instant>,
    /// Until when the writes someone waits for may wait for more (set when
    /// the queue ran dry while a pass was preparing its next write).
    gather: Option<Instant>,
    gathering_since: Option<Instant>,
}

impl Batch<'_> {
    /// Applies the held writes, then `write`, in the open transaction (begun
    /// if need be). Held writes go first: each was sent after every earlier
    /// write of its collection was answered, so it is older than anything
    /// that comes now.
    fn push(&mut self, write: Write, answer: Option<(Reply, Chain)>) {
        self.apply_held();
        self.apply(Entry { write, answer, stats: CommitStats::default() });
    }

    fn apply_held(&mut self) {
        let held = std::mem::take(&mut *lock(self.held));
        for write in held {
            self.apply(Entry { write, answer: None, stats: CommitStats::default() });
        }
    }

    fn apply(&mut self, mut entry: Entry) {
        self.records += entry.write.records.len();
        let open = match self.open.take() {
            Some(open) => Ok(open),
            None => self.store.begin(Utc::now()),
        };
        let applied = open.and_then(|open| {
            let open = self.open.insert(open);
            open.apply(&entry.write)
        });
        match applied {
            Ok(stats) => {
                entry.stats = stats;
                self.entries.push(entry);
            }
            Err(e) => {
                tracing::debug!("store: a write failed in a batch: {e}");
                self.entries.push(entry);
                self.fall_back();
            }
        }
    }

    fn full(&self) -> bool {
        self.records >= BATCH_RECORDS || self.entries.len() >= BATCH_WRITES
    }

    /// Whether a write of `key` is in this batch or held.
    fn touches(&self, key: &CollectionKey) -> bool {
        self.entries.iter().any(|e| e.write.key == *key) || lock(self.held).iter().any(|w| w.key == *key)
    }

    /// Whether someone waits for a write of this batch.
    fn awaited(&self) -> bool {
        self.entries.iter().any(|e| e.answer.is_some())
    }

    /// Whether a pass with a write in this batch is preparing another.
    fn more_coming(&self) -> bool {
        self.entries.iter().any(|e| e.answer.as_ref().is_some_and(|(_, chain)| chain.working()))
    }

    /// When to commit if nothing more comes.
    fn deadline(&self) -> Option<Instant> {
        match (self.gather, self.since) {
            (Some(gather), _) => Some(gather),
            (None, since) => since.map(|since| since + LINGER),
        }
    }

    /// Commits the open transaction (with the writes still held) and
    /// answers its writes.
    fn commit(&mut self) {
        self.apply_held();
        let Some(open) = self.open.take() else {
            return self.reset();
        };
        match open.commit() {
            Ok(()) => {
                let results = self.entries.iter().map(|e| Ok(e.stats)).collect();
                self.answer(results);
            }
            Err(e) => {
                tracing::debug!("store: a batch failed to commit: {e}");
                self.fall_back();
            }
        }
    }

    /// One write of the batch failed (or its commit did): the transaction
    /// is rolled back and each write applied again in one of its own, so
    /// one bad write fails alone.
    fn fall_back(&mut self) {
        drop(self.open.take());
        let writes: Vec<&Write> = self.entries.iter().map(|e| &e.write).collect();
        let results = self.store.write_each(&writes, Utc::now());
        self.answer(results);
    }

    fn answer(&mut self, results: Vec<Result<CommitStats, StoreError>>) {
        let entries = std::mem::take(&mut self.entries);
        if !entries.is_empty() {
            self.stats.transactions.fetch_add(1, Ordering::Relaxed);
            self.stats.writes.fetch_add(entries.len() as u64, Ordering::Relaxed);
            metrics::counter!("aurinko_sync_store_transactions_total").increment(1);
            metrics::counter!("aurinko_sync_store_writes_total").increment(entries.len() as u64);
        }
        for (entry, result) in entries.into_iter().zip(results) {
            let Some((answer, chain)) = entry.answer else {
                if let Err(e) = result {
                    tracing::error!(collection = %entry.write.key, "store: {e}");
                }
                continue;
            };
            // Broken before the answer goes, so the chain's next write,
            // whether queued already or sent once this one's answer is
            // seen, is refused.
            if result.is_err() {
                chain.break_off();
            }
            let _ = answer.send((result.map_err(WriteError::from), entry.write));
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.since = None;
        self.gather = None;
        self.gathering_since = None;
        self.records = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Commit, Cursor, Kind, Phase, Row};
    use crate::store::{Outcome, PageRecords, Store};
    use serde_json::value::RawValue;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
        (dir, store)
    }

    fn state(delta: &str) -> SyncState {
        SyncState {
            phase: Phase::Updated,
            updated: Cursor::at_delta(delta.into()),
            deleted: Cursor::at_delta("D".into()),
            ..SyncState::new()
        }
    }

    fn page(key: &CollectionKey, delta: &str, rows: Vec<Row>) -> Write {
        Write {
            key: key.clone(),
            commit: Some(Commit { state: state(delta), sweep: None, purge: false, reprovision: None }),
            records: PageRecords::Upserts(rows),
            outcome: None,
        }
    }

    fn row(id: &str) -> Row {
        let json = format!(r#"{{"id":"{id}","etag":"e-{id}","subject":"s"}}"#);
        Kind::Calendar.parse_record(&RawValue::from_string(json).unwrap()).unwrap()
    }

    /// A backend other than SQLite, behind the same trait: one whose file
    /// is damaged. The writer runs on it unchanged, and its answers say the
    /// failures are not worth retrying.
    struct Damaged;

    fn damaged() -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        ))
    }

    impl Backend for Damaged {
        fn begin(&self, _: chrono::DateTime<Utc>) -> Result<Box<dyn Transaction + '_>, StoreError> {
            Err(damaged())
        }
        fn write_each(&self, writes: &[&Write], _: chrono::DateTime<Utc>) -> Vec<Result<CommitStats, StoreError>> {
            writes.iter().map(|_| Err(damaged())).collect()
        }
        fn apply_change(&self, _: &Change, _: chrono::DateTime<Utc>) -> Result<bool, StoreError> {
            Err(damaged())
        }
        fn load_state(&self, _: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
            Err(damaged())
        }
        fn resync_requested(&self, _: &CollectionKey) -> Result<i64, StoreError> {
            Err(damaged())
        }
        fn schedule(&self, _: &CollectionKey) -> Result<crate::store::Schedule, StoreError> {
            Err(damaged())
        }
        fn live_collections(&self, _: &str) -> Result<Vec<CollectionKey>, StoreError> {
            Err(damaged())
        }
        fn account_for_id(&self, _: i64) -> Result<Option<String>, StoreError> {
            Err(damaged())
        }
        fn aliased(&self, _: &str, _: Kind) -> Result<Option<String>, StoreError> {
            Err(damaged())
        }
        fn check_writable(&self) -> Result<(), StoreError> {
            Err(damaged())
        }
        fn report(&self) -> Result<crate::store::Report, StoreError> {
            Err(damaged())
        }
        fn events(&self, _: &str) -> Result<Vec<crate::store::StoredEvent>, StoreError> {
            Err(damaged())
        }
        fn instances(&self, _: &str) -> Result<Vec<crate::store::StoredInstance>, StoreError> {
            Err(damaged())
        }
        fn runs(&self, _: u32) -> Result<Vec<crate::store::StoredRun>, StoreError> {
            Err(damaged())
        }
        fn records(&self, _: &str, _: Kind) -> Result<Vec<crate::store::StoredRecord>, StoreError> {
            Err(damaged())
        }
        fn request_resync(
            &self,
            _: &crate::store::ResyncFilter,
            _: chrono::DateTime<Utc>,
        ) -> Result<Vec<CollectionKey>, StoreError> {
            Err(damaged())
        }
        fn account_rows(&self, _: &str, _: bool) -> Result<crate::store::AccountRows, StoreError> {
            Err(damaged())
        }
        fn reset_account(
            &self,
            _: &str,
            _: bool,
            _: chrono::DateTime<Utc>,
        ) -> Result<crate::store::AccountRows, StoreError> {
            Err(damaged())
        }

        fn join_fleet(&self, _: Arc<super::super::Fences>) -> Result<&dyn super::super::Fleet, StoreError> {
            unreachable!()
        }

        fn fleet(&self) -> Result<&dyn super::super::Fleet, StoreError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn on_a_damaged_backend_every_write_fails_as_not_worth_retrying() {
        let writer = Writer::start(Arc::new(Damaged));
        let key = CollectionKey::calendar("work", "cal-1");
        let failed = writer.write(page(&key, "U1", vec![row("a")])).await.unwrap_err();
        assert_eq!(failed.class, ErrorClass::Permanent, "{failed}");
        let change = Change::AccountAuth { account: "work".into(), error: None };
        assert_eq!(writer.change(change).await.unwrap_err().class, ErrorClass::Permanent);
        assert_eq!(writer.load(key).await.unwrap_err().class, ErrorClass::Permanent);
        writer.close().await;
    }

    #[tokio::test]
    async fn a_held_write_is_seen_by_a_later_load_and_committed_by_close() {
        let (_dir, store) = store();
        let writer = Writer::start(store.clone());
        let key = CollectionKey::calendar("work", "cal-1");
        let mut held = page(&key, "U2", Vec::new());
        held.outcome = Some(Outcome::default());
        writer.write_later(held);
        // The load must not overtake the held write.
        let loaded = writer.load(key.clone()).await.unwrap().expect("stored");
        assert_eq!(loaded.updated.delta_token.as_deref(), Some("U2"));
        let other = CollectionKey::calendar("work", "cal-2");
        let mut outcome_only = page(&other, "X", Vec::new());
        outcome_only.commit = None;
        outcome_only.outcome = Some(Outcome::default());
        writer.write_later(outcome_only);
        writer.close().await;
        assert!(store.schedule(&other).unwrap().last_success.is_some(), "close commits what is held");
        assert!(writer.write(page(&key, "U3", Vec::new())).await.is_err(), "a closed writer refuses writes");
    }

    #[tokio::test]
    async fn an_abandoned_writer_drops_held_writes_and_refuses_new_ones() {
        let (_dir, store) = store();
        let writer = Writer::start(store.clone());
        let key = CollectionKey::calendar("work", "cal-1");
        writer.write_later(page(&key, "U1", vec![row("1")]));
        writer.abandon().await;
        assert!(store.load_state(&key).unwrap().is_none(), "a held write is dropped, not committed");
        assert!(store.events("work").unwrap().is_empty());
        assert!(writer.write(page(&key, "U2", Vec::new())).await.is_err(), "an abandoned writer refuses writes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_writer_drops_the_writes_queued_behind_the_transaction_under_way() {
        let (dir, store) = store();
        let writer = Writer::start(store.clone());
        let (a, b) = (CollectionKey::calendar("work", "a"), CollectionKey::calendar("work", "b"));
        // Another connection holds the write lock: the writer's transaction
        // for `a`, once begun, waits for it.
        let other = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let first = writer.submit(page(&a, "A1", vec![row("1")]), &Chain::default()).await.unwrap();
        // A load between the two writes: the writer commits the batch with
        // `a` before it takes the next job, so `b` is only ever queued.
        let load = writer.load(a.clone());
        tokio::pin!(load);
        assert!(futures_util::poll!(&mut load).is_pending(), "the load waits for the write before it");
        let second = writer.submit(page(&b, "B1", vec![row("2")]), &Chain::default()).await.unwrap();
        let ended = writer.abandon();
        other.execute_batch("ROLLBACK").unwrap();
        ended.await;
        assert!(second.await.is_err(), "the queued write is dropped unanswered");
        assert!(store.load_state(&b).unwrap().is_none(), "neither its rows nor its state are committed");
        // `a` commits if its transaction had begun, and is dropped if not:
        // either is what a SIGKILL leaves.
        let committed = first.await.is_ok();
        assert_eq!(store.load_state(&a).unwrap().is_some(), committed);
        assert_eq!(store.events("work").unwrap().len(), usize::from(committed));
    }

    #[tokio::test]
    async fn after_a_failed_write_the_rest_of_its_chain_is_refused_and_other_chains_go_on() {
        let (_dir, store) = store();
        let writer = Writer::start(store.clone());
        let key = CollectionKey::calendar("work", "a");
        let chain = Chain::default();
        // A row without its columns cannot be bound: that write fails.
        let broken = Row { fields: Vec::new(), ..row("x") };
        let first = writer.submit(page(&key, "A1", vec![broken]), &chain).await.unwrap();
        // `first` fails as it is applied and is answered then; the load is
        // answered after it, so the refusal below is the chain's.
        writer.load(key.clone()).await.unwrap();
        let second = writer.submit(page(&key, "A2", vec![row("2")]), &chain).await.unwrap();
        let other = writer.submit(page(&key, "B1", vec![row("3")]), &Chain::default()).await.unwrap();
        assert!(first.await.is_err());
        let refused = second.await.expect_err("the write after a failure of its chain is refused");
        assert!(refused.message.contains("an earlier write of this pass failed"), "{refused}");
        other.await.expect("another chain is not affected");
        let stored = store.load_state(&key).unwrap().expect("the other chain's state");
        assert_eq!(stored.updated.delta_token.as_deref(), Some("B1"));
        let ids: Vec<String> = store.events("work").unwrap().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["3"], "nothing of the refused write");
    }

    /// What a failed batch falls back to: each write alone, in order.
    #[test]
    fn in_a_failed_batch_a_collections_writes_after_its_failed_one_are_not_applied() {
        let (_dir, store) = store();
        let (a, b) = (CollectionKey::calendar("work", "a"), CollectionKey::calendar("work", "b"));
        let broken = Row { fields: Vec::new(), ..row("x") };
        let writes = vec![page(&a, "A1", vec![broken]), page(&b, "B1", vec![row("1")]), page(&a, "A2", vec![row("2")])];
        let results = store.write_each(&writes, Utc::now());
        assert!(results[0].is_err());
        assert_eq!(results[1].as_ref().unwrap().upserted, 1, "another collection's write is applied");
        assert!(results[2].is_err(), "the token A2 presumes the page of A1");
        assert!(store.load_state(&a).unwrap().is_none());
        let ids: Vec<String> = store.events("work").unwrap().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["1"]);
    }

    /// A writer that waits for a working pass as long as a test needs.
    fn patient(store: Arc<Store>) -> Writer {
        let hour = Duration::from_secs(3600);
        Writer::start_gathering(store, Gathering { wait: hour, at_most: hour })
    }

    /// A chain whose pass is preparing its next write.
    fn working() -> Chain {
        let chain = Chain::default();
        chain.working_on_next();
        chain
    }

    fn committed_events(dir: &tempfile::TempDir) -> i64 {
        let other = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
        other.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn a_batch_waits_for_a_working_pass_and_commits_once_it_waits() {
        let (dir, store) = store();
        let writer = patient(store.clone());
        let key = CollectionKey::calendar("work", "a");
        let chain = working();
        let mut first = writer.submit(page(&key, "A1", vec![row("1")]), &chain).await.unwrap();
        let mut second = writer.submit(page(&key, "A2", vec![row("2")]), &chain).await.unwrap();
        // Answered after both writes were taken; another collection's
        // load does not cut the batch short.
        assert!(writer.load(CollectionKey::calendar("work", "b")).await.unwrap().is_none());
        assert!(futures_util::poll!(&mut first).is_pending(), "not committed while the pass works");
        assert!(futures_util::poll!(&mut second).is_pending());
        assert_eq!(committed_events(&dir), 0, "nothing visible before the commit");
        chain.waiting(&writer);
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(committed_events(&dir), 2);
        assert_eq!(writer.stats().transactions.load(Ordering::Relaxed), 1, "one transaction for both");
    }

    #[tokio::test]
    async fn a_write_of_a_pass_that_is_not_working_is_committed_at_once() {
        let (dir, store) = store();
        let writer = patient(store.clone());
        let key = CollectionKey::calendar("work", "a");
        // A patient writer that waited here would never answer.
        writer.submit(page(&key, "A1", vec![row("1")]), &Chain::default()).await.unwrap().await.unwrap();
        assert_eq!(committed_events(&dir), 1);
    }

    #[tokio::test]
    async fn a_load_commits_the_writes_of_its_collection_first() {
        let (dir, store) = store();
        let writer = patient(store.clone());
        let key = CollectionKey::calendar("work", "a");
        let chain = working();
        let mut first = writer.submit(page(&key, "A1", vec![row("1")]), &chain).await.unwrap();
        let loaded = writer.load(key.clone()).await.unwrap().expect("its own write is committed first");
        assert_eq!(loaded.updated.delta_token.as_deref(), Some("A1"));
        let answered = futures_util::poll!(&mut first);
        assert!(matches!(answered, Poll::Ready(Ok(_))), "committed and answered before the load");
        assert_eq!(committed_events(&dir), 1);
    }

    #[tokio::test]
    async fn a_failing_write_in_an_open_batch_fails_alone_and_the_others_are_committed() {
        let (dir, store) = store();
        let writer = patient(store.clone());
        let (a, b) = (CollectionKey::calendar("work", "a"), CollectionKey::calendar("work", "b"));
        let good = writer.submit(page(&a, "A1", vec![row("1")]), &working()).await.unwrap();
        // A row without its columns cannot be bound: that write fails.
        let broken = Row { fields: Vec::new(), ..row("x") };
        let bad = writer.submit(page(&b, "B1", vec![row("2"), broken]), &Chain::default()).await.unwrap();
        assert!(bad.await.is_err());
        good.await.expect("the write applied before the failure is committed on its own");
        assert_eq!(committed_events(&dir), 1);
        assert_eq!(store.load_state(&a).unwrap().unwrap().updated.delta_token.as_deref(), Some("A1"));
        assert!(store.load_state(&b).unwrap().is_none(), "nothing of the failed write");
    }

    #[tokio::test]
    async fn held_writes_share_one_transaction() {
        let (_dir, store) = store();
        let writer = Writer::start(store.clone());
        for i in 0..8 {
            let key = CollectionKey::calendar("work", &format!("c{i}"));
            writer.write_later(page(&key, "T", vec![row(&format!("r{i}"))]));
        }
        writer.close().await;
        let stats = writer.stats();
        assert_eq!(stats.writes.load(Ordering::Relaxed), 8);
        assert_eq!(stats.transactions.load(Ordering::Relaxed), 1);
        assert_eq!(store.events("work").unwrap().len(), 8);
    }
}
