//! What a page commits: the state that follows its records, and what else
//! goes with it in the same transaction.

use super::state::{Reprovision, SyncState, Window};

/// What to persist, atomically with the records of the page that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub state: SyncState,
    /// The end of a reconciling pass: rows it did not see are removed.
    pub sweep: Option<Sweep>,
    /// The collection is gone: remove all its rows.
    pub purge: bool,
    /// This commit starts a re-provisioning, for this reason: stored with
    /// the commit's time for `state`.
    pub reprovision: Option<Reprovision>,
}

/// What a reconciling sweep removes: rows of generations below `below` that
/// lie in `window`, the range the new provisioning's initial pass covered
/// (everything when `None`). Rows outside it were not returned because they
/// were out of range, not because they were deleted: they stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub below: i64,
    pub window: Option<Window>,
}

impl Commit {
    /// A commit of `state` and nothing else.
    pub fn state_only(state: &SyncState) -> Commit {
        Commit { state: state.clone(), sweep: None, purge: false, reprovision: None }
    }

    /// A commit that starts a re-provisioning for `reason`.
    pub fn reprovisioning(state: &SyncState, reason: Reprovision) -> Commit {
        Commit { reprovision: Some(reason), ..Commit::state_only(state) }
    }
}
