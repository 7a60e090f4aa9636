//! Runs one pass of the machine: performs its actions with the Aurinko
//! client and commits what it returns to the store. Thin on purpose: every
//! decision is the machine's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::collection::{Collection, CollectionKey, Kind};
use super::machine::{Action, Commit, Finish, Pass, ReadyPolicy};
use super::progress::Progress;
use super::records::parse_deleted;
use super::state::{Stream, SyncState};
use crate::aurinko::{AccountClient, Endpoint, ErrorClass, SyncPage};
use crate::store::{CommitStats, PageRecords, Store};

/// What one pass did. `finish` is `None` when the pass was stopped by
/// cancellation before it ended.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub finish: Option<Finish>,
    pub stats: CommitStats,
    pub pages: u64,
    /// Records skipped because they cannot be stored (no id).
    pub rejected: u64,
    /// Provisionings after the first one (expired tokens, window rolls).
    pub reprovisions: u64,
    pub duration: Duration,
}

pub struct PassContext<'a> {
    pub collection: &'a Collection,
    pub client: &'a AccountClient,
    pub store: &'a Arc<Store>,
    pub ready: ReadyPolicy,
    pub cancel: &'a CancellationToken,
    pub progress: &'a Progress,
}

pub async fn run_pass(ctx: PassContext<'_>, state: SyncState) -> PassReport {
    let started = Instant::now();
    let key = &ctx.collection.key;
    let name = key.to_string();
    let root = ctx.collection.root();
    let mut report = PassReport::default();
    let now = Utc::now();
    let mut pass = Pass::new(state, ctx.collection.window(now), ctx.ready);
    ctx.progress.start(&name);
    if ctx.collection.rolls()
        && let Some(commit) = pass.roll_window(now)
    {
        tracing::info!(collection = %name, "window rolls forward: re-provisioning");
        if let Err(message) = commit_blocking(ctx.store, key, commit, PageRecords::None).await {
            report.finish = Some(Finish::Failed { class: ErrorClass::Transient, message });
            report.duration = started.elapsed();
            return report;
        }
    }
    loop {
        // No new request starts once a stop was asked for; commits already
        // under way finish first because they are awaited below.
        if ctx.cancel.is_cancelled() {
            break;
        }
        let commit = match pass.next_action() {
            Action::Finish(finish) => {
                report.finish = Some(finish.clone());
                break;
            }
            Action::Provision { delay } => {
                let params = ctx.collection.start_params();
                let request = async {
                    tokio::time::sleep(delay).await;
                    ctx.client.start_sync(&root, &params).await
                };
                let Some(result) = cancellable(ctx.cancel, request).await else { break };
                match result {
                    Ok(provision) => {
                        let commit = pass.on_provision(provision);
                        if commit.as_ref().is_some_and(|c| c.state.generation > 1) {
                            report.reprovisions += 1;
                        }
                        commit.map(|c| (c, PageRecords::None))
                    }
                    Err(e) => pass.on_error(e.class, e.to_string()).map(|c| (c, PageRecords::None)),
                }
            }
            Action::Fetch { stream, token } => {
                let endpoint = match stream {
                    Stream::Updated => Endpoint::SyncUpdated,
                    Stream::Deleted => Endpoint::SyncDeleted,
                };
                let Some(result) = cancellable(ctx.cancel, ctx.client.sync_page(&root, endpoint, token)).await else {
                    break;
                };
                match result {
                    Ok(page) => {
                        let (records, rejected) = page_records(key.kind, stream, &page);
                        report.pages += 1;
                        report.rejected += rejected;
                        if rejected > 0 {
                            tracing::warn!(collection = %name, rejected, "skipped records without an id");
                        }
                        let count = page.records.len() as u64 - rejected;
                        ctx.progress.page(&name, count);
                        tracing::debug!(collection = %name, stream = stream.as_str(), records = count, last = page.next_page_token.is_none(), "page");
                        Some((pass.on_page(page.next_page_token, page.next_delta_token), records))
                    }
                    Err(e) => pass.on_error(e.class, e.to_string()).map(|c| (c, PageRecords::None)),
                }
            }
        };
        if let Some((commit, records)) = commit {
            match commit_blocking(ctx.store, key, commit, records).await {
                Ok(stats) => add(&mut report.stats, stats),
                Err(message) => {
                    report.finish = Some(Finish::Failed { class: ErrorClass::Transient, message });
                    break;
                }
            }
        }
    }
    ctx.progress.finish(&name);
    report.duration = started.elapsed();
    report
}

fn page_records(kind: Kind, stream: Stream, page: &SyncPage) -> (PageRecords, u64) {
    let mut rejected = 0;
    let records = match stream {
        Stream::Updated => PageRecords::Upserts(
            page.records.iter().filter_map(|r| kind.parse_record(r).map_err(|_| rejected += 1).ok()).collect(),
        ),
        Stream::Deleted => PageRecords::Deletes(
            page.records.iter().filter_map(|r| parse_deleted(r).map_err(|_| rejected += 1).ok()).collect(),
        ),
    };
    (records, rejected)
}

/// SQLite calls block; they run on the blocking pool so the network side
/// keeps moving.
async fn commit_blocking(
    store: &Arc<Store>,
    key: &CollectionKey,
    commit: Commit,
    records: PageRecords,
) -> Result<CommitStats, String> {
    let store = store.clone();
    let key = key.clone();
    tokio::task::spawn_blocking(move || store.commit(&key, &commit, &records, Utc::now()))
        .await
        .map_err(|e| format!("store commit did not finish: {e}"))?
        .map_err(|e| e.to_string())
}

async fn cancellable<T>(cancel: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        result = work => Some(result),
    }
}

fn add(total: &mut CommitStats, more: CommitStats) {
    total.upserted += more.upserted;
    total.unchanged += more.unchanged;
    total.deleted += more.deleted;
    total.swept += more.swept;
}
