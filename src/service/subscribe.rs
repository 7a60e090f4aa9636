//! `aurinko-sync subscribe`: one active webhook subscription per synced
//! collection, pointing at `[webhook] public_url`. It plans first (what to
//! keep, create and delete), then applies, so running it twice changes
//! nothing the second time.
//!
//! Mailbox subscriptions ask for `filters: ["withoutDrafts"]`, so a draft
//! being autosaved does not wake the mailbox's sync every few seconds. One
//! whose answer lists filters without it (made before, or by hand) is
//! replaced; one whose answer has no `filters` field at all is kept, since
//! replacing what cannot be checked would replace it on every run.

use crate::aurinko::{AccountClient, ApiError, Subscription};
use crate::config::AccountConfig;
use crate::model::{CollectionKey, Kind};
use crate::store::{Change, StoredSubscription};
use crate::sync::Engine;

/// What `subscribe` did for one account.
#[derive(Debug, Default)]
pub struct SubscribeSummary {
    pub account: String,
    pub kept: usize,
    pub created: usize,
    pub deleted: usize,
    pub error: Option<String>,
}

/// The `DataConsumerFilter`s a collection's subscription asks for.
fn filters(key: &CollectionKey) -> &'static [&'static str] {
    match key.kind {
        Kind::Email => &["withoutDrafts"],
        _ => &[],
    }
}

/// Whether an existing subscription applies the filters `key` wants.
fn has_filters(s: &Subscription, key: &CollectionKey) -> bool {
    s.filters.as_ref().is_none_or(|have| filters(key).iter().all(|want| have.iter().any(|h| h == want)))
}

/// The changes that give every wanted resource exactly one active
/// subscription to our URL, with the filters it wants. Subscriptions to
/// other URLs are not ours and are left alone.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubscriptionPlan {
    pub keep: Vec<(i64, CollectionKey)>,
    pub create: Vec<CollectionKey>,
    pub delete: Vec<i64>,
}

pub fn plan_subscriptions(wanted: &[CollectionKey], existing: &[Subscription], url: &str) -> SubscriptionPlan {
    let mut plan = SubscriptionPlan::default();
    let ours: Vec<&Subscription> = existing.iter().filter(|s| s.notification_url.as_deref() == Some(url)).collect();
    for key in wanted {
        let resource = key.webhook_resource();
        let mut same = ours.iter().filter(|s| s.resource.as_deref() == Some(resource.as_str()));
        match same.clone().find(|s| s.active != Some(false) && has_filters(s, key)) {
            Some(active) => {
                plan.keep.push((active.id, key.clone()));
                plan.delete.extend(same.filter(|s| s.id != active.id).map(|s| s.id));
            }
            None => {
                plan.delete.extend(same.by_ref().map(|s| s.id));
                plan.create.push(key.clone());
            }
        }
    }
    let wanted_resources: Vec<String> = wanted.iter().map(CollectionKey::webhook_resource).collect();
    plan.delete.extend(
        ours.iter().filter(|s| !s.resource.as_ref().is_some_and(|r| wanted_resources.contains(r))).map(|s| s.id),
    );
    plan.delete.sort_unstable();
    plan.delete.dedup();
    plan
}

/// Runs `subscribe` for every account.
pub async fn subscribe(engine: &Engine, url: &str) -> Vec<SubscribeSummary> {
    let mut summaries = Vec::new();
    for (account, client) in engine.accounts() {
        let mut summary = SubscribeSummary { account: account.name.clone(), ..SubscribeSummary::default() };
        if let Err(e) = subscribe_account(engine, account, client, url, &mut summary).await {
            summary.error = Some(e);
        }
        summaries.push(summary);
    }
    summaries
}

async fn subscribe_account(
    engine: &Engine,
    account: &AccountConfig,
    client: &AccountClient,
    url: &str,
    summary: &mut SubscribeSummary,
) -> Result<(), String> {
    let plan = engine.plan(account, client).await;
    if let Some(message) = plan.auth_refused() {
        return Err(message.to_string());
    }
    if !plan.all_complete() {
        return Err("discovery failed; not changing subscriptions on a partial list".into());
    }
    let text = |e: ApiError| e.to_string();
    let aurinko_id = client.account_id().await.map_err(text)?;
    let wanted: Vec<CollectionKey> = plan.collections.iter().map(|c| c.key.clone()).collect();
    let existing = client.list_subscriptions().await.map_err(text)?;
    let changes = plan_subscriptions(&wanted, &existing, url);
    for id in &changes.delete {
        client.delete_subscription(*id).await.map_err(text)?;
        summary.deleted += 1;
    }
    let mut current: Vec<StoredSubscription> = Vec::new();
    for (id, key) in &changes.keep {
        let s = existing.iter().find(|s| s.id == *id).expect("kept subscriptions come from the list");
        current.push(stored(s, key, url));
        summary.kept += 1;
    }
    for key in &changes.create {
        let created = client.create_subscription(&key.webhook_resource(), url, filters(key)).await.map_err(text)?;
        current.push(stored(&created, key, url));
        summary.created += 1;
    }
    let change = Change::Subscriptions { account: account.name.clone(), aurinko_id, subscriptions: current };
    engine.writer().change(change).await.map(drop).map_err(|e| e.to_string())
}

fn stored(s: &Subscription, key: &CollectionKey, url: &str) -> StoredSubscription {
    StoredSubscription {
        id: s.id,
        resource: key.webhook_resource(),
        key: key.clone(),
        notification_url: url.to_string(),
        active: s.active != Some(false),
        fail_since: s.fail_since.clone(),
        fail_description: s.fail_description.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://sync.example/hook";

    fn sub(id: i64, resource: &str, url: &str, active: bool) -> Subscription {
        Subscription {
            id,
            resource: Some(resource.into()),
            notification_url: Some(url.into()),
            active: Some(active),
            fail_since: None,
            fail_description: None,
            filters: None,
        }
    }

    fn cal(id: &str) -> CollectionKey {
        CollectionKey::calendar("work", id)
    }

    #[test]
    fn nothing_exists_so_everything_is_created() {
        let plan = plan_subscriptions(&[cal("a"), cal("b")], &[], URL);
        assert_eq!(plan, SubscriptionPlan { keep: vec![], create: vec![cal("a"), cal("b")], delete: vec![] });
    }

    #[test]
    fn active_ones_are_kept_and_duplicates_inactive_and_stale_ones_go() {
        let existing = [
            sub(1, "/calendars/a/events", URL, true),
            sub(2, "/calendars/a/events", URL, true),
            sub(3, "/calendars/b/events", URL, false),
            sub(4, "/calendars/gone/events", URL, true),
            sub(5, "/calendars/a/events", "https://someone.else/hook", true),
        ];
        let plan = plan_subscriptions(&[cal("a"), cal("b")], &existing, URL);
        assert_eq!(plan.keep, vec![(1, cal("a"))]);
        assert_eq!(plan.create, vec![cal("b")]);
        assert_eq!(plan.delete, vec![2, 3, 4], "subscriptions to other URLs are not ours");
    }

    #[test]
    fn a_mailbox_subscription_without_the_drafts_filter_is_replaced() {
        let email = CollectionKey::account_wide("work", Kind::Email);
        let with = |id, filters: Option<Vec<String>>| Subscription { filters, ..sub(id, "/email/messages", URL, true) };
        let plan = plan_subscriptions(std::slice::from_ref(&email), &[with(1, Some(vec![]))], URL);
        assert_eq!((plan.create, plan.delete), (vec![email.clone()], vec![1]));
        let filtered = with(2, Some(vec!["withoutDrafts".into()]));
        let plan = plan_subscriptions(std::slice::from_ref(&email), &[filtered], URL);
        assert_eq!((plan.keep.len(), plan.create.len(), plan.delete.len()), (1, 0, 0));
        let plan = plan_subscriptions(std::slice::from_ref(&email), &[with(3, None)], URL);
        assert_eq!(plan.keep.len(), 1, "an answer without the field cannot be checked: kept");
        let calendar = Subscription { filters: Some(vec![]), ..sub(4, "/calendars/a/events", URL, true) };
        assert_eq!(plan_subscriptions(&[cal("a")], &[calendar], URL).keep.len(), 1);
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let existing = [sub(1, "/calendars/a/events", URL, true), sub(2, "/email/messages", URL, true)];
        let wanted = [cal("a"), CollectionKey::account_wide("work", crate::model::Kind::Email)];
        let plan = plan_subscriptions(&wanted, &existing, URL);
        assert_eq!((plan.create.len(), plan.delete.len(), plan.keep.len()), (0, 0, 2));
    }
}
