//! The run being gathered: each pass's counts added to its collection's,
//! until the run ends (a catch-up's end, or a daemon batch's) and is handed
//! to the writer as one `Change::Run`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::engine::CollectionResult;
use super::machine::Finish;
use crate::model::{CollectionKey, PassOutcome, RunCollection, RunMode, RunRecord};

pub struct RunLog {
    batch: Mutex<Batch>,
}

struct Batch {
    started: DateTime<Utc>,
    passes: u64,
    pages: u64,
    requests: u64,
    collections: BTreeMap<CollectionKey, RunCollection>,
}

impl Batch {
    fn new(started: DateTime<Utc>) -> Batch {
        Batch { started, passes: 0, pages: 0, requests: 0, collections: BTreeMap::new() }
    }
}

impl RunLog {
    pub fn new(now: DateTime<Utc>) -> RunLog {
        RunLog { batch: Mutex::new(Batch::new(now)) }
    }

    fn batch(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a pass to the run.
    pub fn record(&self, result: &CollectionResult) {
        let r = &result.report;
        let (outcome, error) = match &r.finish {
            Some(Finish::CaughtUp) => (PassOutcome::Ok, None),
            Some(Finish::Removed) => (PassOutcome::Removed, None),
            Some(Finish::Failed { message, .. }) => (PassOutcome::Failed, Some(message.clone())),
            None => (PassOutcome::Stopped, None),
        };
        let mut batch = self.batch();
        batch.passes += 1;
        batch.pages += r.pages;
        batch.requests += r.requests;
        let c = batch.collections.entry(result.key.clone()).or_insert_with(|| RunCollection {
            key: result.key.clone(),
            passes: 0,
            upserted: 0,
            deleted: 0,
            swept: 0,
            pages: 0,
            requests: 0,
            outcome,
            error: None,
        });
        c.passes += 1;
        c.upserted += r.stats.upserted;
        c.deleted += r.stats.deleted;
        c.swept += r.stats.swept;
        c.pages += r.pages;
        c.requests += r.requests;
        c.outcome = outcome;
        c.error = error;
    }

    /// Ends the run gathered so far and starts the next at `now`; `None`
    /// when it holds no pass. A daemon batch lists only the collections
    /// whose passes changed something or did not end well (the others are
    /// in its counts); a catch-up lists every one.
    pub fn end(
        &self,
        mode: RunMode,
        instance: Option<String>,
        keep_days: u32,
        now: DateTime<Utc>,
    ) -> Option<RunRecord> {
        let batch = std::mem::replace(&mut *self.batch(), Batch::new(now));
        if batch.passes == 0 {
            return None;
        }
        let collections = batch.collections.into_values().filter(|c| mode == RunMode::CatchUp || !c.idle()).collect();
        Some(RunRecord {
            mode,
            instance,
            started: batch.started,
            ended: now,
            passes: batch.passes,
            pages: batch.pages,
            requests: batch.requests,
            collections,
            keep_days,
        })
    }
}
