//! A history of runs: what a `run --catch-up`, or a batch of the daemon's
//! passes, did to each collection. The engine gathers it pass by pass; the
//! store keeps it (`runs`, `run_collections`) for `sync.runs_keep_days`.

use chrono::{DateTime, Utc};

use super::CollectionKey;

/// What made the passes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    CatchUp,
    Daemon,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::CatchUp => "catch-up",
            RunMode::Daemon => "daemon",
        }
    }
}

/// One run, ended, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub mode: RunMode,
    /// The fleet instance that ran it, if any.
    pub instance: Option<String>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// Every pass of the run, counted here even when its collection has
    /// no row below (an idle daemon pass).
    pub passes: u64,
    pub pages: u64,
    pub requests: u64,
    pub collections: Vec<RunCollection>,
    /// Runs that ended longer ago than this are removed when this one is
    /// stored.
    pub keep_days: u32,
}

impl RunRecord {
    /// `failed` when a collection's last pass in the run failed, `stopped`
    /// when one was cut short by a stop, else `ok`.
    pub fn outcome(&self) -> &'static str {
        if self.collections.iter().any(|c| c.outcome == PassOutcome::Failed) {
            "failed"
        } else if self.collections.iter().any(|c| c.outcome == PassOutcome::Stopped) {
            "stopped"
        } else {
            "ok"
        }
    }
}

/// How a collection's last pass of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    Ok,
    Removed,
    Failed,
    Stopped,
}

impl PassOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::Ok => "ok",
            PassOutcome::Removed => "removed",
            PassOutcome::Failed => "failed",
            PassOutcome::Stopped => "stopped",
        }
    }
}

/// A collection's passes in one run, added up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCollection {
    pub key: CollectionKey,
    pub passes: u64,
    pub upserted: u64,
    pub deleted: u64,
    pub swept: u64,
    pub pages: u64,
    /// API calls the passes made (a page, a provisioning attempt); a
    /// call's retries count once.
    pub requests: u64,
    pub outcome: PassOutcome,
    /// The last failed pass's error, as `sync_state.last_error` has it.
    pub error: Option<String>,
}

impl RunCollection {
    /// Whether its passes changed nothing and ended well: a daemon's idle
    /// passes are counted in the run, not listed.
    pub fn idle(&self) -> bool {
        self.upserted + self.deleted + self.swept == 0 && self.outcome == PassOutcome::Ok
    }
}
