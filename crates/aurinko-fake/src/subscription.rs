//! A subscription request on its way: what it watches and the draft that
//! waits for its notification URL's handshake. Its own module, so that the
//! router's replies and the webhook code both use it without importing
//! each other.

use super::log::RequestRecord;

/// What a subscription watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One store: a calendar by id, the mailbox or the address book.
    Store(usize),
    /// `/calendars/primary/events`: whichever calendar is primary when a change happens.
    Primary,
    /// `/tasklists/default/tasks`: whichever task list is the default when a change happens.
    DefaultTaskList,
}

/// A validated `SubscriptionRequest`, waiting for its handshake.
#[derive(Debug)]
pub(crate) struct Draft {
    pub account: usize,
    pub resource: String,
    pub target: Target,
    pub notification_url: String,
    pub filters: Vec<String>,
}

/// A `POST /v1/subscriptions` whose answer depends on the handshake, made outside the lock.
pub(crate) struct Pending {
    pub draft: Draft,
    pub record: RequestRecord,
    pub request_id: String,
}
