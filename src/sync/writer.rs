//! The single writer: one thread owns the store's write side; passes send
//! it their pages (with the state that follows each) through a bounded
//! channel and wait for the answer.
//!
//! Why a thread of its own: SQLite takes one writer at a time anyway, and a
//! long-lived thread costs one wake-up per job where the blocking pool cost
//! a thread hand-off per call. Why batches: pages that queue up while a
//! transaction runs (other collections' pages, idle passes' outcomes) go
//! into the next transaction together, each under its own savepoint, so
//! the page-and-token atomicity holds while the fixed cost of a commit (WAL
//! frames of shared pages, the checkpoint) is paid once per batch.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::collection::CollectionKey;
use super::state::SyncState;
use crate::store::{CommitStats, Store, Write};

/// Jobs waiting for the writer. Each pass has at most one write in flight,
/// so this bounds memory only when many passes run at once; they then wait
/// here rather than pile parsed pages up.
const QUEUE: usize = 32;

/// A batch closes at this many records (or when the queue is empty), so one
/// transaction stays short enough that the next pages do not wait long.
const BATCH_RECORDS: usize = 1_000;

enum Job {
    Write(Box<Write>, oneshot::Sender<Result<CommitStats, String>>),
    Load(CollectionKey, oneshot::Sender<Result<Option<SyncState>, String>>),
    /// Finish what was queued before, then end the thread.
    Close,
}

/// A handle on the writer thread; clones share it. The thread ends when the
/// last handle is dropped, after the jobs already sent.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<BatchStats>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// How many transactions the writer committed and how many writes they
/// held, for the benchmark and `/metrics`.
#[derive(Default)]
pub struct BatchStats {
    pub transactions: AtomicU64,
    pub writes: AtomicU64,
}

impl Writer {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<Store>) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        let counted = stats.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || serve(&store, queue, &counted))
            .expect("the store writer thread starts");
        Writer { jobs, stats, thread: Arc::new(Mutex::new(Some(thread))) }
    }

    /// Ends the writer after the writes already queued and waits for its
    /// thread, which lets the store go: the last connection to close
    /// checkpoints the WAL into the database file. Later writes fail.
    pub async fn close(&self) {
        let _ = self.jobs.send(Job::Close).await;
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Stores `write` (in a batch with others) and says what it changed.
    pub async fn write(&self, write: Write) -> Result<CommitStats, String> {
        self.submit(write).await?.await
    }

    /// Queues `write` and returns at once with the answer to come, so the
    /// caller can fetch its next page meanwhile. Writes are applied in the
    /// order they are queued.
    pub async fn submit(&self, write: Write) -> Result<Answer, String> {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Write(Box::new(write), answer)).await?;
        Ok(Answer(answered))
    }

    /// A collection's stored state, read by the writer's connection so it
    /// sees every write acknowledged before.
    pub async fn load(&self, key: CollectionKey) -> Result<Option<SyncState>, String> {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Load(key, answer)).await?;
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

/// What a queued write changed, once it is committed.
pub struct Answer(oneshot::Receiver<Result<CommitStats, String>>);

impl Future for Answer {
    type Output = Result<CommitStats, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| answer.unwrap_or_else(|_| Err(STOPPED.to_string())))
    }
}

fn serve(store: &Store, mut queue: mpsc::Receiver<Job>, stats: &BatchStats) {
    let mut writes: Vec<Write> = Vec::new();
    let mut answers = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        let mut records = 0;
        // Take what is queued now, up to a batch; loads are answered at
        // once (they only read), writes wait for the batch's commit.
        while let Some(job) = next.take() {
            match job {
                Job::Load(key, answer) => {
                    let _ = answer.send(store.load_state(&key).map_err(|e| e.to_string()));
                }
                Job::Write(write, answer) => {
                    records += write.records.len();
                    writes.push(*write);
                    answers.push(answer);
                }
                Job::Close => queue.close(),
            }
            if records < BATCH_RECORDS {
                next = queue.try_recv().ok();
            }
        }
        if writes.is_empty() {
            continue;
        }
        let results = store.write_batch(&writes, Utc::now());
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(writes.len() as u64, Ordering::Relaxed);
        for (answer, result) in answers.drain(..).zip(results) {
            let _ = answer.send(result.map_err(|e| e.to_string()));
        }
        writes.clear();
    }
}
