//! Runs one pass of the machine: performs its actions with the Aurinko
//! client and commits what it returns to the store. Thin on purpose: every
//! decision is the machine's.
//!
//! Two things keep it fast without weakening what is stored:
//! - a page's commit is handed to the writer and the next pages fetched
//!   while it is written; up to `WRITES_IN_FLIGHT` commits are in flight,
//!   in order, as one [`Chain`]: once one fails the writer refuses the
//!   rest, so no token is stored past a page that was not. More than one in
//!   flight lets the writer put several pages of a pass in one transaction,
//!   which is where the time went (issue 13); the chain also tells the
//!   writer whether the pass is preparing its next write or waiting for an
//!   answer, so it neither commits too early nor waits in vain;
//! - a page that brought nothing and ends its stream changes only a delta
//!   token: that state is kept back and stored with the next commit or with
//!   the pass's outcome (one transaction for an idle pass instead of three).
//!   Lost in a crash, it costs one request for the same empty answer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::machine::{Action, Finish, Pass, ReadyPolicy};
use super::progress::Progress;
use crate::model::{Collection, CollectionKey, Commit, Kind, Record, Rejected, Row, Stream, SyncState, deleted_id};
use crate::store::{Answer, Chain, WriteError, Writer};

use crate::aurinko::{AccountClient, Endpoint};
use crate::store::{CommitStats, PageRecords, Write};

/// Commits a pass may have at the writer at once. The writer commits up to
/// 10,000 records per transaction, applying writes as they come; with 4
/// passes, 16 in flight left it transactions of about 64 pages, whose
/// commits stalled every pass at once, and 32 let it fill 100-page ones
/// while the passes go on (61% of the benchmark's floor at 16, 66-68% at 32
/// or 64, before the larger page cache). Each holds a parsed page (about
/// 0.3 MiB for 100 events) until it is committed, so this bounds a pass's
/// memory. The model and crash audits rely on this bound.
pub const WRITES_IN_FLIGHT: usize = 32;

/// What one pass did. `finish` is `None` when the pass was stopped by
/// cancellation before it ended.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub finish: Option<Finish>,
    pub stats: CommitStats,
    pub pages: u64,
    /// API calls the pass made (a retried call counts once).
    pub requests: u64,
    /// Records skipped because they cannot be stored (no id).
    pub rejected: u64,
    /// Provisionings after the first one (expired tokens, window rolls).
    pub reprovisions: u64,
    /// Last pages that carried no `nextDeltaToken`: the stream kept the
    /// delta token it started from.
    pub pages_without_delta_token: u64,
    pub duration: Duration,
    /// State kept back from an empty last page, to be stored with the
    /// pass's outcome.
    pub pending: Option<Commit>,
    /// The state a caught-up pass ended with, for the next pass to start
    /// from without reading the store.
    pub state: Option<SyncState>,
}

pub struct PassContext<'a> {
    pub collection: &'a Collection,
    pub client: &'a AccountClient,
    pub writer: &'a Writer,
    pub ready: ReadyPolicy,
    pub cancel: &'a CancellationToken,
    pub progress: &'a Progress,
}

/// Runs one pass from `state`. `resync_requested` is the store's count of
/// operator resync requests for the collection (see
/// [`SyncState::resync_handled`]).
pub async fn run_pass(ctx: PassContext<'_>, state: SyncState, resync_requested: i64) -> PassReport {
    let started = Instant::now();
    let key = &ctx.collection.key;
    let name = key.to_string();
    let root = ctx.collection.root();
    let mut report = PassReport::default();
    let now = Utc::now();
    let mut pass = Pass::new(state, ctx.collection.window(now), ctx.ready)
        .can_vanish(key.kind.can_vanish())
        .with_range(ctx.collection.range_days());
    ctx.progress.start(&name);
    let reprovision = start_over_if_due(&mut pass, ctx.collection, resync_requested, now);
    if let Some(commit) = reprovision
        && let Err(e) = write_now(ctx.writer, key, commit, PageRecords::None).await
    {
        report.finish = Some(store_failed(e));
        report.duration = started.elapsed();
        return report;
    }
    let chain = Chain::default();
    let mut in_flight: VecDeque<Answer> = VecDeque::new();
    let mut pending: Option<Commit> = None;
    loop {
        // No new request starts once a stop was asked for; a commit under
        // way finishes first because it is awaited below.
        if ctx.cancel.is_cancelled() {
            break;
        }
        let (commit, deferrable) = match pass.next_action() {
            Action::Finish(finish) => {
                report.finish = Some(finish.clone());
                break;
            }
            Action::Provision { delay } => {
                let params = ctx.collection.start_params(now);
                let request = async {
                    tokio::time::sleep(delay).await;
                    ctx.client.start_sync(&root, &params).await
                };
                let Some(result) = cancellable(ctx.cancel, request).await else { break };
                report.requests += 1;
                let commit = match result {
                    Ok(provision) => pass.on_provision(provision).map(|c| (c, PageRecords::None)),
                    Err(e) => pass.on_error(e.class, e.to_string()).map(|c| (c, PageRecords::None)),
                };
                (commit, false)
            }
            Action::ConfirmGone => {
                let Some(answer) = cancellable(ctx.cancel, ctx.client.get_collection(&root)).await else { break };
                report.requests += 1;
                let commit = pass.on_confirm(answer.map_err(|e| (e.class, e.to_string())));
                (commit.map(|c| (c, PageRecords::None)), false)
            }
            Action::Fetch { stream, token } => {
                let endpoint = match stream {
                    Stream::Updated => Endpoint::SyncUpdated,
                    Stream::Deleted => Endpoint::SyncDeleted,
                };
                let kind = key.kind;
                let fetch = ctx.client.sync_page(&root, endpoint, token, |r| parse(kind, stream, r));
                let Some(result) = cancellable(ctx.cancel, fetch).await else {
                    break;
                };
                report.requests += 1;
                match result {
                    Ok(mut page) => {
                        let brought = page.records.len();
                        let (records, rejected) = page_records(stream, &mut page.records);
                        report.pages += 1;
                        report.rejected += rejected;
                        if rejected > 0 {
                            tracing::warn!(collection = %name, rejected, "skipped records without an id");
                        }
                        let count = brought as u64 - rejected;
                        ctx.progress.page(&name, count);
                        tracing::debug!(collection = %name, stream = stream.as_str(), records = count, last = page.next_page_token.is_none(), "page");
                        let ends_stream = page.next_page_token.is_none();
                        if ends_stream && page.next_delta_token.is_none() {
                            report.pages_without_delta_token += 1;
                            tracing::warn!(
                                collection = %name,
                                stream = stream.as_str(),
                                "last page without nextDeltaToken: its records are stored, the delta token stays \
                                 where this drain started"
                            );
                        }
                        let commit = pass.on_page(page.next_page_token, page.next_delta_token);
                        let deferrable = pass.may_keep_back(&commit, brought);
                        (Some((commit, records)), deferrable)
                    }
                    Err(e) => (pass.on_error(e.class, e.to_string()).map(|c| (c, PageRecords::None)), false),
                }
            }
        };
        let Some((commit, records)) = commit else { continue };
        if deferrable {
            pending = Some(commit);
            continue;
        }
        // This commit carries the whole state: it supersedes any kept back.
        pending = None;
        let sent = match settle(&mut in_flight, WRITES_IN_FLIGHT - 1, &chain, ctx.writer, &mut report).await {
            Ok(()) => {
                // The pass goes on after this write: the writer may wait a
                // moment for its next page before committing.
                chain.working_on_next();
                ctx.writer.submit(page_write(key, commit, records), &chain).await
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(answer) => in_flight.push_back(answer),
            Err(e) => {
                report.finish = Some(store_failed(e));
                break;
            }
        }
    }
    if let Err(e) = settle(&mut in_flight, 0, &chain, ctx.writer, &mut report).await {
        // A later state must not be stored past a page that was not.
        pending = None;
        // The first failure is the one to report: the writes after it were
        // refused only because of it.
        if !matches!(report.finish, Some(Finish::Failed { .. })) {
            report.finish = Some(store_failed(e));
        }
    }
    report.reprovisions = pass.reprovisions();
    if report.finish == Some(Finish::CaughtUp) {
        report.state = Some(pass.state().clone());
    }
    match (&report.finish, pending) {
        (Some(_), pending) => report.pending = pending,
        // Stopped: no outcome will be recorded, so store it now.
        (None, Some(commit)) => {
            if let Ok(stats) = write_now(ctx.writer, key, commit, PageRecords::None).await {
                add(&mut report.stats, stats);
            }
        }
        (None, None) => {}
    }
    ctx.progress.finish(&name);
    report.duration = started.elapsed();
    report
}

/// At the start of a pass, the reasons to give up the stored tokens and
/// provision again, most pressing first; each logs why once.
fn start_over_if_due(
    pass: &mut Pass,
    collection: &Collection,
    resync_requested: i64,
    now: chrono::DateTime<Utc>,
) -> Option<Commit> {
    let name = &collection.key;
    if let Some(commit) = pass.resync_if_requested(resync_requested) {
        tracing::info!(collection = %name, "resync requested: re-provisioning");
        return Some(commit);
    }
    let failures = pass.state().permanent_failures;
    if let Some(commit) = pass.reprovision_if_stuck() {
        tracing::warn!(
            collection = %name,
            failures,
            "delta requests failed as permanent {failures} passes in a row: giving up the tokens and re-provisioning"
        );
        return Some(commit);
    }
    if let Some((commit, old)) = pass.reprovision_if_range_changed() {
        let new = collection.range_days().map_or_else(String::new, |r| r.to_string());
        tracing::info!(collection = %name, "configured range changed ({old} -> {new}): re-provisioning");
        return Some(commit);
    }
    if collection.rolls() {
        return pass.roll_window(now).inspect(|_| {
            tracing::info!(collection = %name, "window rolls forward: re-provisioning");
        });
    }
    None
}

/// Takes the answers of commits in flight, oldest first: those already
/// there, then waiting until at most `keep` are left; counts what they
/// changed. The first failure ends it (the writes after it are refused).
/// Before it waits it tells the writer, which may be waiting for this
/// pass's next write.
async fn settle(
    in_flight: &mut VecDeque<Answer>,
    keep: usize,
    chain: &Chain,
    writer: &Writer,
    report: &mut PassReport,
) -> Result<(), WriteError> {
    loop {
        let over = in_flight.len() > keep;
        let Some(answer) = in_flight.front_mut() else { break };
        let stats = if over {
            chain.waiting(writer);
            answer.await
        } else {
            match answer.now_or_never() {
                Some(answered) => answered,
                None => break,
            }
        };
        in_flight.pop_front();
        add(&mut report.stats, stats?);
    }
    Ok(())
}

fn page_write(key: &CollectionKey, commit: Commit, records: PageRecords) -> Write {
    Write { key: key.clone(), commit: Some(commit), records, outcome: None }
}

/// A pass ended by a write that failed: retried with the next pass when
/// the failure may pass (a full disk), not hidden as transient when it
/// cannot (a damaged store).
fn store_failed(e: WriteError) -> Finish {
    Finish::Failed { class: e.class, message: e.message }
}

/// Stores a commit and waits for it.
async fn write_now(
    writer: &Writer,
    key: &CollectionKey,
    commit: Commit,
    records: PageRecords,
) -> Result<CommitStats, WriteError> {
    writer.write(page_write(key, commit, records)).await
}

/// A record of either stream, parsed from the response body as it is read.
enum Parsed {
    Row(Row),
    Deleted(String),
    Rejected,
}

fn parse(kind: Kind, stream: Stream, record: Result<Record<'_>, Rejected>) -> Parsed {
    let parsed = record.and_then(|record| match stream {
        Stream::Updated => kind.row_of(record).map(Parsed::Row),
        Stream::Deleted => deleted_id(record).map(Parsed::Deleted),
    });
    parsed.unwrap_or(Parsed::Rejected)
}

/// The page's records for the store, and how many could not be stored.
fn page_records(stream: Stream, parsed: &mut Vec<Parsed>) -> (PageRecords, u64) {
    let total = parsed.len();
    let records = match stream {
        Stream::Updated => PageRecords::Upserts(
            parsed.drain(..).filter_map(|p| if let Parsed::Row(row) = p { Some(row) } else { None }).collect(),
        ),
        Stream::Deleted => PageRecords::Deletes(
            parsed.drain(..).filter_map(|p| if let Parsed::Deleted(id) = p { Some(id) } else { None }).collect(),
        ),
    };
    let rejected = (total - records.len()) as u64;
    (records, rejected)
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
