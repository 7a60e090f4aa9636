//! The single writer: one thread owns the store's write side; passes send
//! it their pages (with the state that follows each) through a bounded
//! channel and wait for the answer.
//!
//! Why a thread of its own: SQLite takes one writer at a time anyway, and a
//! long-lived thread costs one wake-up per job where the blocking pool cost
//! a thread hand-off per call. Why batches: pages that queue up while a
//! transaction runs (other collections' pages, idle passes' outcomes) go
//! into the next transaction together (a failing write is then rolled back
//! and each applied alone, see `Store::write_batch`), so the page-and-token
//! atomicity holds while the fixed cost of a commit (WAL frames of shared
//! pages, the checkpoint) is paid once per batch.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::collection::CollectionKey;
use super::state::SyncState;
use crate::store::{CommitStats, Store, Write};

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

/// How long a write nobody waits for (an idle pass's outcome) may wait for
/// others to share its transaction: an idle daemon commits about once a
/// second instead of once per pass.
const LINGER: Duration = Duration::from_secs(1);

/// The answer to a write, with the write itself: freeing a page's rows is
/// left to the side that made them, off the writer's thread.
type Reply = oneshot::Sender<(Result<CommitStats, String>, Write)>;

enum Job {
    Write(Box<Write>, Reply, Chain),
    /// Writes nobody waits for were left in `held`: linger, then commit.
    Linger,
    Load(CollectionKey, oneshot::Sender<Result<Option<SyncState>, String>>),
    /// The count of operator resync requests for a collection.
    Requested(CollectionKey, oneshot::Sender<Result<i64, String>>),
    /// Finish what was queued before, then end the thread.
    Close,
    /// Wakes the writer after [`Writer::abandon`], to see it was abandoned.
    Abandon,
}

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
pub struct Chain(Arc<AtomicBool>);

impl Chain {
    fn broken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn break_off(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The answer to a write refused because an earlier one of its chain failed.
const AFTER_A_FAILURE: &str = "not written: an earlier write of this pass failed";

impl Writer {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<Store>) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        let held = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicBool::new(false));
        let (counted, taken, killed) = (stats.clone(), held.clone(), abandoned.clone());
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || serve(&store, queue, &taken, &counted, &killed))
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
    pub async fn write(&self, write: Write) -> Result<CommitStats, String> {
        self.submit(write, &Chain::default()).await?.await
    }

    /// Queues `write` and returns at once with the answer to come, so the
    /// caller can fetch its next page meanwhile. Writes are applied in the
    /// order they are queued; a write whose `chain` saw a failure is
    /// refused.
    pub async fn submit(&self, write: Write, chain: &Chain) -> Result<Answer, String> {
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
            tracing::error!("store: {STOPPED}");
        }
    }

    /// A collection's stored state, read by the writer's connection so it
    /// sees every write acknowledged before.
    pub async fn load(&self, key: CollectionKey) -> Result<Option<SyncState>, String> {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Load(key, answer)).await?;
        answered.await.map_err(|_| STOPPED.to_string())?
    }

    /// The store's count of resync requests for a collection, read once a
    /// pass: only the `resync` and `reset` commands write it, so writes held
    /// here need not land first.
    pub async fn resync_requested(&self, key: CollectionKey) -> Result<i64, String> {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Requested(key, answer)).await?;
        answered.await.map_err(|_| STOPPED.to_string())?
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    async fn send(&self, job: Job) -> Result<(), String> {
        self.jobs.send(job).await.map_err(|_| STOPPED.to_string())
    }
}

const STOPPED: &str = "the store writer has stopped";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a queued write changed, once it is committed.
pub struct Answer(oneshot::Receiver<(Result<CommitStats, String>, Write)>);

impl Future for Answer {
    type Output = Result<CommitStats, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.map_or_else(|_| Err(STOPPED.to_string()), |(result, _)| result))
    }
}

fn serve(
    store: &Store,
    mut queue: mpsc::Receiver<Job>,
    held: &Mutex<Vec<Write>>,
    stats: &BatchStats,
    abandoned: &AtomicBool,
) {
    // Only for waiting on the queue with a deadline.
    let timer = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a timer for the writer");
    let mut batch = Batch { store, stats, held, writes: Vec::new(), answers: Vec::new(), records: 0, since: None };
    loop {
        let job = match batch.since {
            None => queue.blocking_recv(),
            Some(since) => {
                let deadline = tokio::time::Instant::from_std(since + LINGER);
                match timer.block_on(async { tokio::time::timeout_at(deadline, queue.recv()).await }) {
                    Ok(job) => job,
                    Err(_) => {
                        batch.commit();
                        continue;
                    }
                }
            }
        };
        let Some(job) = job else { break };
        // Take what is queued now, up to a batch. Loads are answered at
        // once, after the writes before them; writes someone waits for
        // are committed when the queue is empty; held ones may linger.
        let mut next = Some(job);
        let mut awaited = false;
        while let Some(job) = next.take() {
            if abandoned.load(Ordering::SeqCst) {
                // Killed: the gathered, queued and held writes are dropped.
                return;
            }
            match job {
                Job::Load(key, answer) => {
                    batch.commit();
                    let _ = answer.send(store.load_state(&key).map_err(|e| e.to_string()));
                }
                Job::Requested(key, answer) => {
                    let _ = answer.send(store.resync_requested(&key).map_err(|e| e.to_string()));
                }
                Job::Write(write, answer, chain) if chain.broken() => {
                    let _ = answer.send((Err(AFTER_A_FAILURE.to_string()), *write));
                }
                Job::Write(write, answer, chain) => {
                    batch.push(*write, answer, chain);
                    awaited = true;
                }
                Job::Linger => {
                    batch.since.get_or_insert_with(Instant::now);
                }
                Job::Close => queue.close(),
                // Seen through the flag above.
                Job::Abandon => {}
            }
            if !batch.full() {
                next = queue.try_recv().ok();
            }
        }
        if awaited || batch.full() {
            batch.commit();
        }
    }
    batch.commit();
}

/// Writes gathered for the next transaction, in the order they came.
struct Batch<'a> {
    store: &'a Store,
    stats: &'a BatchStats,
    held: &'a Mutex<Vec<Write>>,
    writes: Vec<Write>,
    answers: Vec<(Reply, Chain)>,
    records: usize,
    /// Since when writes nobody waits for have been held.
    since: Option<Instant>,
}

impl Batch<'_> {
    fn push(&mut self, write: Write, answer: Reply, chain: Chain) {
        self.records += write.records.len();
        self.writes.push(write);
        self.answers.push((answer, chain));
    }

    fn full(&self) -> bool {
        self.records >= BATCH_RECORDS || self.writes.len() >= BATCH_WRITES
    }

    /// Commits the held writes, then the gathered ones, in one transaction.
    /// Held writes go first: each was sent after every earlier write of its
    /// collection was answered, so it is older than anything gathered.
    fn commit(&mut self) {
        let mut writes = std::mem::take(&mut *lock(self.held));
        let lazy = writes.len();
        writes.append(&mut self.writes);
        self.since = None;
        self.records = 0;
        if writes.is_empty() {
            return;
        }
        let results = self.store.write_batch(&writes, Utc::now());
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.writes.fetch_add(writes.len() as u64, Ordering::Relaxed);
        metrics::counter!("aurinko_sync_store_transactions_total").increment(1);
        metrics::counter!("aurinko_sync_store_writes_total").increment(writes.len() as u64);
        let mut results = results.into_iter();
        for (write, result) in writes[..lazy].iter().zip(results.by_ref()) {
            if let Err(e) = result {
                tracing::error!(collection = %write.key, "store: {e}");
            }
        }
        for (((answer, chain), result), write) in self.answers.drain(..).zip(results).zip(writes.drain(lazy..)) {
            // Broken before the answer goes, so the chain's next write,
            // whether queued already or sent once this one's answer is
            // seen, is refused.
            if result.is_err() {
                chain.break_off();
            }
            let _ = answer.send((result.map_err(|e| e.to_string()), write));
        }
        // Keep the allocation for the next batch.
        writes.clear();
        self.writes = writes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Outcome, PageRecords};
    use crate::sync::{Commit, Cursor, Kind, Phase, Row};
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
    async fn one_failing_write_of_a_batch_is_rolled_back_alone() {
        let (_dir, store) = store();
        let (a, b) = (CollectionKey::calendar("work", "a"), CollectionKey::calendar("work", "b"));
        // A row without its columns cannot be bound: that write fails.
        let broken = Row { fields: Vec::new(), ..row("x") };
        let writes = vec![page(&a, "A1", vec![row("1"), row("2")]), page(&b, "B1", vec![row("3"), broken])];
        let results = store.write_batch(&writes, Utc::now());
        assert_eq!(results[0].as_ref().unwrap().upserted, 2);
        assert!(results[1].is_err());
        assert_eq!(store.load_state(&a).unwrap().unwrap().updated.delta_token.as_deref(), Some("A1"));
        assert!(store.load_state(&b).unwrap().is_none(), "neither the rows nor the state of the failed write");
        assert_eq!(store.events("work").unwrap().len(), 2);
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
        // The load commits the batch holding `first` before the next write
        // is taken, so the refusal below is the chain's, not the batch's.
        writer.load(key.clone()).await.unwrap();
        let second = writer.submit(page(&key, "A2", vec![row("2")]), &chain).await.unwrap();
        let other = writer.submit(page(&key, "B1", vec![row("3")]), &Chain::default()).await.unwrap();
        assert!(first.await.is_err());
        let refused = second.await.expect_err("the write after a failure of its chain is refused");
        assert!(refused.contains("an earlier write of this pass failed"), "{refused}");
        other.await.expect("another chain is not affected");
        let stored = store.load_state(&key).unwrap().expect("the other chain's state");
        assert_eq!(stored.updated.delta_token.as_deref(), Some("B1"));
        let ids: Vec<String> = store.events("work").unwrap().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["3"], "nothing of the refused write");
    }

    #[test]
    fn in_a_failed_batch_a_collections_writes_after_its_failed_one_are_not_applied() {
        let (_dir, store) = store();
        let (a, b) = (CollectionKey::calendar("work", "a"), CollectionKey::calendar("work", "b"));
        let broken = Row { fields: Vec::new(), ..row("x") };
        let writes = vec![page(&a, "A1", vec![broken]), page(&b, "B1", vec![row("1")]), page(&a, "A2", vec![row("2")])];
        let results = store.write_batch(&writes, Utc::now());
        assert!(results[0].is_err());
        assert_eq!(results[1].as_ref().unwrap().upserted, 1, "another collection's write is applied");
        assert!(results[2].is_err(), "the token A2 presumes the page of A1");
        assert!(store.load_state(&a).unwrap().is_none());
        let ids: Vec<String> = store.events("work").unwrap().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["1"]);
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
