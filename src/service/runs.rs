//! The daemon's history of runs: every `sync.run_batch_secs` the passes
//! since the last batch are stored as one run (`state --runs`); the last,
//! shorter one when the daemon stops.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::model::RunMode;
use crate::sync::Engine;

pub async fn batches(engine: Arc<Engine>, cancel: CancellationToken) {
    let every = engine.config().sync.run_batch;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => engine.end_run(RunMode::Daemon).await,
        }
    }
}
