//! Response envelopes as the spec defines them, decoded leniently: fields
//! Aurinko may omit are `Option`, unknown fields are ignored, and records are
//! kept as raw JSON so the store can keep them exactly as sent.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::PageRecord;

/// `SyncStatus`, the answer to `POST .../sync`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncStatus {
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub sync_updated_token: Option<String>,
    #[serde(default)]
    pub sync_deleted_token: Option<String>,
}

/// `EventsPage` / `DeletedPage` and their email and contacts siblings: the
/// same envelope around different records.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawSyncPage<'a> {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub next_delta_token: Option<String>,
    /// Borrowed from the response body: each record is split into its
    /// fields as the page is decoded, then parsed from there straight into
    /// what the store takes, with no copy in between.
    #[serde(default, borrow)]
    pub records: Option<Vec<PageRecord<'a>>>,
}

/// [`RawSyncPage`] with its records whole, each split after: for a page
/// the one pass cannot read (a record it cannot place in the body, see
/// `PageRecord::in_body`, or a number too large for it among the records)
/// and for the error a page that is not one gets.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WholeSyncPage<'a> {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub next_delta_token: Option<String>,
    #[serde(default, borrow)]
    pub records: Option<Vec<&'a RawValue>>,
}

/// `CalendarsPage`, `TaskListPage` and `EmailFolderInfoPage`: a page of a
/// listing, records kept raw. The spec gives `EmailFolderInfoPage` no
/// `nextPageToken`, but its operation takes a `pageToken`, so one is
/// followed when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPage {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub records: Option<Vec<Box<RawValue>>>,
}

/// Aurinko's `ApiRequestFailed` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiRequestFailed {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// The part of `ApiAccountOutDto` the service needs.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountInfo {
    #[serde(default, deserialize_with = "optional_int_id")]
    pub id: Option<i64>,
}

/// `SubscriptionResponse`. The docs show `id` as a string once; both forms
/// are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(deserialize_with = "int_id")]
    pub id: i64,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub fail_since: Option<String>,
    #[serde(default)]
    pub fail_description: Option<String>,
    /// `DataConsumerFilter`s; `None` when the answer leaves the field out.
    #[serde(default)]
    pub filters: Option<Vec<String>>,
}

/// `SubscriptionsPage`: offset paging.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionsPage {
    #[serde(default)]
    pub total_size: Option<i64>,
    #[serde(default)]
    pub done: Option<bool>,
    #[serde(default)]
    pub records: Option<Vec<Subscription>>,
}

/// `AccountsPage`: offset paging, records kept raw (each read by
/// `AppAccount::from_raw`, so one odd record does not fail the page).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountsPage {
    #[serde(default)]
    pub total_size: Option<i64>,
    #[serde(default)]
    pub done: Option<bool>,
    #[serde(default)]
    pub records: Option<Vec<Box<RawValue>>>,
}

/// An int64 id as the spec defines it, or the same number as a string, as
/// Aurinko's docs show subscription ids. Anything else is an error.
pub fn int_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::Text(t) => t.trim().parse().map_err(|_| serde::de::Error::custom("id is not an integer")),
    }
}

/// [`int_id`] for a field that may be missing or null.
pub fn optional_int_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "int_id")] i64);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(n)| n))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(i64),
    Text(String),
}
