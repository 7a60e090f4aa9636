//! Bookkeeping writes: what discovery listed, how it ended, an account's
//! refused token and Aurinko id, its webhook subscriptions and their
//! lifecycle. Like page commits, they reach the store only as jobs for the
//! writer ([`Writer::change`](super::Writer::change)), in the order they are
//! sent, so none can land between a page and the writes queued before it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, StoredSubscription};
use crate::model::{AppAccount, Calendar, EmailFolder, ErrorClass, RunRecord, TaskList};

/// One bookkeeping write, owning what it stores.
#[derive(Debug)]
pub enum Change {
    /// The calendars discovery listed.
    Calendars { account: String, calendars: Vec<Calendar> },
    /// The task lists discovery listed.
    TaskLists { account: String, lists: Vec<TaskList> },
    /// The mail folders of an account.
    Folders { account: String, folders: Vec<EmailFolder> },
    /// How an account's discovery ended: `None` for a success.
    Discovery { account: String, failure: Option<(ErrorClass, String)> },
    /// Sets (`Some`) or clears an account's refused-token mark.
    AccountAuth { account: String, error: Option<String> },
    /// The Aurinko id of an account, learnt from the API.
    AccountId { account: String, aurinko_id: i64 },
    /// The account's id and its subscriptions as Aurinko listed them after
    /// `subscribe`, replacing what the store knew.
    Subscriptions { account: String, aurinko_id: i64, subscriptions: Vec<StoredSubscription> },
    /// A complete listing of the app's accounts: each one's listing, and
    /// those it no longer names marked removed; with `purge_removed`, their
    /// rows deleted but their `accounts` row (so `state` still says what
    /// became of them). Sent once nothing of a removed account runs.
    AppAccounts { listed: Vec<AppAccount>, purge_removed: bool },
    /// A run ended (a catch-up, a batch of daemon passes); older runs than
    /// its `keep_days` go.
    Run(RunRecord),
    /// A subscription's `lifecycleEvent` (`error` or `active`).
    Lifecycle { account: String, subscription: i64, event: String, error: Option<String> },
}

impl Store {
    /// Applies a change in a transaction of its own. Says whether it found
    /// what it changes: only a lifecycle event for a subscription the store
    /// does not know answers `false`.
    pub(super) fn apply_change(&self, change: &Change, now: DateTime<Utc>) -> Result<bool, StoreError> {
        match change {
            Change::Calendars { account, calendars } => self.save_calendars(account, calendars, now),
            Change::TaskLists { account, lists } => self.save_task_lists(account, lists, now),
            Change::Folders { account, folders } => self.save_folders(account, folders, now),
            Change::Discovery { account, failure } => {
                let outcome = failure.as_ref().map(|(class, message)| (class.as_str(), message.as_str()));
                self.record_discovery(account, outcome, now)
            }
            Change::AccountAuth { account, error } => self.record_account_auth(account, error.as_deref(), now),
            Change::AccountId { account, aurinko_id } => self.save_account_id(account, *aurinko_id, now),
            Change::Subscriptions { account, aurinko_id, subscriptions } => {
                self.save_subscriptions(account, *aurinko_id, subscriptions, now)
            }
            Change::AppAccounts { listed, purge_removed } => self.save_app_accounts(listed, *purge_removed, now),
            Change::Run(run) => self.save_run(run),
            Change::Lifecycle { account, subscription, event, error } => {
                return self.record_lifecycle(account, *subscription, event, error.as_deref(), now);
            }
        }
        .map(|()| true)
    }
}
