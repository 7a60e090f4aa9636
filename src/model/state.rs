//! The persisted sync state of one collection (a calendar, a mailbox, an
//! address book or a task list).
//!
//! This is exactly what the store keeps between runs; the machine reads it
//! at the start of a pass and hands back a new copy with every commit.

use chrono::{DateTime, Utc};

use super::provision::TokenRef;

/// The two independent delta streams Aurinko keeps per collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Updated,
    Deleted,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Updated => "updated",
            Stream::Deleted => "deleted",
        }
    }
}

/// Where a collection stands between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Never provisioned.
    New,
    /// Needs `POST .../sync` (first time, or after an expired delta token).
    Provisioning,
    /// Draining `/sync/updated`; the cursor says from where.
    Updated,
    /// `/sync/updated` is drained for this pass; draining `/sync/deleted`.
    Deleted,
    /// Both streams drained to their delta tokens.
    Idle,
    /// The collection is gone upstream; its records were purged.
    Removed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Provisioning => "provisioning",
            Phase::Updated => "draining_updated",
            Phase::Deleted => "draining_deleted",
            Phase::Idle => "idle",
            Phase::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [Phase::New, Phase::Provisioning, Phase::Updated, Phase::Deleted, Phase::Idle, Phase::Removed]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The position in one delta stream. A stored page token wins over the delta
/// token: it is the exact place a drain stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub delta_token: Option<String>,
    pub page_token: Option<String>,
}

impl Cursor {
    pub fn at_delta(token: String) -> Cursor {
        Cursor { delta_token: Some(token), page_token: None }
    }

    pub fn request(&self) -> Option<TokenRef<'_>> {
        match (&self.page_token, &self.delta_token) {
            (Some(page), _) => Some(TokenRef::Page(page)),
            (None, Some(delta)) => Some(TokenRef::Delta(delta)),
            (None, None) => None,
        }
    }
}

/// The time range a calendar was provisioned with (`timeMin`, `timeMax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub time_min: DateTime<Utc>,
    pub time_max: DateTime<Utc>,
}

impl Window {
    pub fn around(now: DateTime<Utc>, past_days: u32, future_days: u32) -> Window {
        Window {
            time_min: now - chrono::Duration::days(past_days.into()),
            time_max: now + chrono::Duration::days(future_days.into()),
        }
    }
}

/// The configured length of a collection's range, as a provisioning was
/// asked for it: what a configuration change is compared by. The window
/// itself is computed from "now", so it moves every day; these day counts
/// move only when the operator changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDays {
    /// Calendars: `window_past_days` back and `window_future_days` ahead.
    Around { past: u32, future: u32 },
    /// Email's `days_within`, tasks' `completed_within_days`.
    Within(u32),
    /// No limit: email without `days_within`, tasks without `completed_within_days`.
    All,
}

impl RangeDays {
    /// The stored form (`sync_state.range_days`).
    pub fn to_stored(self) -> String {
        match self {
            RangeDays::Around { past, future } => format!("past={past},future={future}"),
            RangeDays::Within(days) => format!("within={days}"),
            RangeDays::All => "all".to_string(),
        }
    }

    /// Reads the stored form; anything else (a damaged value) is `None`,
    /// as for a store written before the column existed.
    pub fn parse(stored: &str) -> Option<RangeDays> {
        if stored == "all" {
            return Some(RangeDays::All);
        }
        if let Some(days) = stored.strip_prefix("within=") {
            return days.parse().ok().map(RangeDays::Within);
        }
        let (past, future) = stored.strip_prefix("past=")?.split_once(",future=")?;
        Some(RangeDays::Around { past: past.parse().ok()?, future: future.parse().ok()? })
    }
}

impl std::fmt::Display for RangeDays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeDays::Around { past, future } => write!(f, "{past} days back, {future} days ahead"),
            RangeDays::Within(days) => write!(f, "{days} days"),
            RangeDays::All => f.write_str("no limit"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub phase: Phase,
    /// The window of the current provisioning.
    pub window: Option<Window>,
    /// The configured day counts the current provisioning was asked with;
    /// `None` before the first provisioning, for kinds without a range, and
    /// in stores written before they were recorded.
    pub range: Option<RangeDays>,
    /// Bumped by every successful provisioning. Rows carry the generation
    /// that last saw them, so a reconciling pass can remove the rows it did
    /// not see.
    pub generation: i64,
    /// True from a provisioning until its first full `/sync/updated` pass has
    /// committed; that commit sweeps rows of older generations.
    pub reconciling: bool,
    pub updated: Cursor,
    pub deleted: Cursor,
    /// Consecutive passes whose delta requests failed as permanent, since
    /// the last pass that caught up.
    pub permanent_failures: u32,
    /// The collection was provisioned again because of those failures, and
    /// has not caught up since: it is not done again before it has.
    pub reprovisioned_after_failures: bool,
    /// The operator's resync requests (`aurinko-sync resync`, `reset`)
    /// count up in the store's `resync_requested`, which only the command
    /// writes; this is the count the collection last acted on. A request is
    /// pending while the stored count is higher, so no state a pass writes
    /// can undo one.
    pub resync_handled: i64,
}

/// Why a collection is provisioned again, shown by `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reprovision {
    /// Aurinko no longer accepts the delta token.
    ExpiredToken,
    /// The calendar's window moved on.
    WindowRolled,
    /// Its delta requests kept failing as permanent.
    PermanentFailures,
    /// The configured range (`window_past_days`, `days_within`, ...) changed.
    RangeChanged,
    /// The operator asked for it (`aurinko-sync resync` or `reset`).
    Requested,
}

impl Reprovision {
    pub fn as_str(self) -> &'static str {
        match self {
            Reprovision::ExpiredToken => "expired_token",
            Reprovision::WindowRolled => "window_rolled",
            Reprovision::PermanentFailures => "permanent_failures",
            Reprovision::RangeChanged => "range_changed",
            Reprovision::Requested => "requested",
        }
    }
}

impl SyncState {
    pub fn new() -> SyncState {
        SyncState {
            phase: Phase::New,
            window: None,
            range: None,
            generation: 0,
            reconciling: false,
            updated: Cursor::default(),
            deleted: Cursor::default(),
            permanent_failures: 0,
            reprovisioned_after_failures: false,
            resync_handled: 0,
        }
    }

    pub fn cursor(&self, stream: Stream) -> &Cursor {
        match stream {
            Stream::Updated => &self.updated,
            Stream::Deleted => &self.deleted,
        }
    }

    pub fn cursor_mut(&mut self, stream: Stream) -> &mut Cursor {
        match stream {
            Stream::Updated => &mut self.updated,
            Stream::Deleted => &mut self.deleted,
        }
    }
}

impl Default for SyncState {
    fn default() -> Self {
        SyncState::new()
    }
}
