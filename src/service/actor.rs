//! One collection's life in the daemon: a pass, then a pause of about
//! `poll_interval` (or a growing one while it fails), until stopped.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use crate::aurinko::AccountClient;
use crate::model::{Collection, ErrorClass};
use crate::sync::{CollectionResult, Engine, Finish};

pub async fn run(
    engine: Arc<Engine>,
    collection: Collection,
    client: AccountClient,
    health: Arc<Health>,
    nudge: Arc<Notify>,
    account_cancel: CancellationToken,
    stop: CancellationToken,
) {
    let key = collection.key.clone();
    let sync = &engine.config().sync;
    let (poll, max_retry, spread) = (sync.poll_interval, sync.max_retry_interval, sync.first_pass_spread);
    // Failure memory survives restarts: a broken collection keeps its pause.
    let read = key.clone();
    let schedule = engine.writer().read(move |store| store.schedule(&read)).await.unwrap_or_default();
    let (mut failures, stored_next, last_success) = (schedule.failures, schedule.next_attempt, schedule.last_success);
    health.watch(&key, last_success);
    // Spread the first passes so many collections do not start in step.
    let mut due = match stored_next {
        Some(next) if next > Utc::now() => next,
        _ => Utc::now() + jittered(poll.min(spread), 0.0, 1.0),
    };
    // What the last pass ended with: the next one starts from it instead of
    // reading the store; after a failure it reads the store again.
    let mut known = None;
    let span = crate::sync::span(&key);
    loop {
        let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        // A webhook nudge runs the pass now; a failing collection keeps its
        // backoff whatever the notifications say.
        let nudgeable = failures == 0;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = nudge.notified(), if nudgeable => {}
        }
        let result = engine.task(collection.clone(), &client, &stop).resuming(known.take()).run_in(span.clone()).await;
        span.in_scope(|| crate::sync::log_pass(&result));
        engine.runs().record(&result);
        let Some(finish) = &result.report.finish else { return };
        known = result.report.state.clone();
        count(&result);
        let now = Utc::now();
        let next = match finish {
            Finish::CaughtUp => {
                failures = 0;
                health.succeeded(&key, now);
                Some(now + jittered(poll, 0.9, 1.1))
            }
            Finish::Removed => None,
            Finish::Failed { class: ErrorClass::Auth, .. } => None,
            Finish::Failed { .. } => {
                failures += 1;
                health.failed(&key);
                let backoff = poll.saturating_mul(2u32.saturating_pow(failures.min(20) as u32)).min(max_retry);
                Some(now + jittered(backoff, 0.9, 1.1))
            }
        };
        engine.record_outcome_later(&result, next);
        match (finish, next) {
            (Finish::Failed { class: ErrorClass::Auth, message }, _) => {
                engine.record_auth(&key.account, Some(message)).await;
                account_cancel.cancel();
                return;
            }
            (Finish::Removed, _) => {
                health.forget(&key);
                return;
            }
            (_, Some(next)) => due = next,
            (_, None) => return,
        }
    }
}

/// `base` scaled by a random factor in `low..high`.
fn jittered(base: Duration, low: f64, high: f64) -> chrono::Duration {
    let factor = rand::rng().random_range(low..high);
    chrono::Duration::from_std(base.mul_f64(factor)).unwrap_or(chrono::Duration::zero())
}

/// Counts for `/metrics`, by account and kind: both bounded (a collection
/// id is not, see `collection_metrics`).
fn count(result: &CollectionResult) {
    let key = &result.key;
    let r = &result.report;
    let labels = [("account", key.account.clone()), ("kind", key.kind.as_str().to_string())];
    for (name, n) in [
        ("aurinko_sync_records_upserted_total", r.stats.upserted),
        ("aurinko_sync_records_deleted_total", r.stats.deleted + r.stats.swept),
        ("aurinko_sync_reprovisions_total", r.reprovisions),
        ("aurinko_sync_pages_without_delta_token_total", r.pages_without_delta_token),
    ] {
        metrics::counter!(name, &labels).increment(n);
    }
    let outcome = match &r.finish {
        Some(Finish::CaughtUp) => "caught_up",
        Some(Finish::Removed) => "removed",
        Some(Finish::Failed { .. }) => "failed",
        None => "stopped",
    };
    metrics::counter!("aurinko_sync_passes_total", "account" => key.account.clone(), "kind" => key.kind.as_str(), "result" => outcome).increment(1);
}
