//! Bookkeeping writes in PostgreSQL (see `store::Change`): each in a
//! transaction of its own.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::super::app_accounts::{REMOVED_FROM_APP, SAVE_APP_ACCOUNT, purge, purged_tables};
use super::super::subscriptions::{SAVE_ACCOUNT_ID, SAVE_SUBSCRIPTION};
use super::super::{Change, StoreError, StoredSubscription, runs};
use super::write::{clean, json};
use super::{Postgres, dollars};
use crate::model::{AppAccount, Calendar, EmailFolder, RunRecord, TaskList, discovered_name};

/// Applies a change; says whether it found what it changes (only a
/// lifecycle event for an unknown subscription answers `false`).
pub(super) async fn apply(pg: &Postgres, change: &Change, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let found = match change {
        Change::Calendars { account, calendars } => save_calendars(&tx, account, calendars, now).await,
        Change::TaskLists { account, lists } => save_task_lists(&tx, account, lists, now).await,
        Change::Folders { account, folders } => save_folders(&tx, account, folders, now).await,
        Change::Discovery { account, failure } => {
            let (class, error) = failure.as_ref().map(|(class, message)| (class.as_str(), clean(message))).unzip();
            tx.execute(
                "INSERT INTO accounts (name, updated_at, discovery_error, discovery_error_class,
                                       discovery_failing_since, discovery_failures, discovery_success_at)
                 VALUES ($1, $4::timestamptz, $2::text, $3::text, CASE WHEN $2::text IS NULL THEN NULL ELSE $4::timestamptz END,
                         CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END, CASE WHEN $2::text IS NULL THEN $4::timestamptz END)
                 ON CONFLICT (name) DO UPDATE SET
                    discovery_error = excluded.discovery_error,
                    discovery_error_class = excluded.discovery_error_class,
                    discovery_failing_since = CASE WHEN excluded.discovery_error IS NULL THEN NULL
                        ELSE coalesce(accounts.discovery_failing_since, excluded.discovery_failing_since) END,
                    discovery_failures = CASE WHEN excluded.discovery_error IS NULL THEN 0
                        ELSE accounts.discovery_failures + 1 END,
                    discovery_success_at = coalesce(excluded.discovery_success_at, accounts.discovery_success_at),
                    updated_at = excluded.updated_at",
                &[account, &error.as_deref(), &class, &now],
            )
            .await
            .map(|_| true)
            .map_err(StoreError::from)
        }
        Change::AccountAuth { account, error } => {
            let error = error.as_deref().map(clean);
            tx.execute(
                "INSERT INTO accounts (name, auth_error, auth_error_at, updated_at)
                 VALUES ($1, $2::text, CASE WHEN $2::text IS NULL THEN NULL ELSE $3::timestamptz END, $3::timestamptz)
                 ON CONFLICT (name) DO UPDATE SET auth_error = excluded.auth_error,
                    auth_error_at = CASE WHEN excluded.auth_error IS NULL THEN NULL
                        ELSE coalesce(accounts.auth_error_at, excluded.auth_error_at) END,
                    updated_at = excluded.updated_at",
                &[account, &error.as_deref(), &now],
            )
            .await
            .map(|_| true)
            .map_err(StoreError::from)
        }
        Change::AccountId { account, aurinko_id } => save_account_id(&tx, account, *aurinko_id, now).await,
        Change::Subscriptions { account, aurinko_id, subscriptions } => {
            save_subscriptions(&tx, account, *aurinko_id, subscriptions, now).await
        }
        Change::AppAccounts { listed, purge_removed } => save_app_accounts(&tx, listed, *purge_removed, now).await,
        Change::Run(run) => save_run(&tx, run).await,
        Change::Lifecycle { account, subscription, event, error } => tx
            .execute(
                "UPDATE subscriptions SET lifecycle_event = $3, lifecycle_error = $4, lifecycle_at = $5,
                    active = CASE $3 WHEN 'active' THEN true WHEN 'error' THEN false ELSE active END, updated_at = $5
                 WHERE account = $1 AND subscription_id = $2",
                &[account, subscription, &clean(event), &error.as_deref().map(clean), &now],
            )
            .await
            .map(|changed| changed > 0)
            .map_err(StoreError::from),
    }?;
    tx.commit().await?;
    Ok(found)
}

/// A run and its collections (`store::runs`, with SQLite's statements).
async fn save_run(c: &impl GenericClient, run: &RunRecord) -> Result<bool, StoreError> {
    c.execute(&dollars(runs::PRUNE), &[&runs::cutoff(run)]).await?;
    let row = c
        .query_one(
            &dollars(runs::INSERT_RUN),
            &[
                &run.mode.as_str(),
                &run.instance.as_deref().map(clean),
                &run.started,
                &run.ended,
                &run.outcome(),
                &(run.passes as i64),
                &(run.pages as i64),
                &(run.requests as i64),
            ],
        )
        .await?;
    let run_id: i64 = row.try_get(0)?;
    let insert = dollars(runs::INSERT_COLLECTION);
    for r in &run.collections {
        c.execute(
            &insert,
            &[
                &run_id,
                &clean(&r.key.account),
                &r.key.kind.as_str(),
                &clean(&r.key.id),
                &(r.passes as i64),
                &(r.upserted as i64),
                &(r.deleted as i64),
                &(r.swept as i64),
                &(r.pages as i64),
                &(r.requests as i64),
                &r.outcome.as_str(),
                &r.error.as_deref().map(clean),
            ],
        )
        .await?;
    }
    Ok(true)
}

async fn save_calendars(
    c: &impl GenericClient,
    account: &str,
    calendars: &[Calendar],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let upsert = c
        .prepare_cached(
            "INSERT INTO calendars (account, calendar_id, name, is_primary, access_role, raw, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $7)
             ON CONFLICT (account, calendar_id) DO UPDATE SET name = excluded.name,
                is_primary = excluded.is_primary, access_role = excluded.access_role, raw = excluded.raw,
                last_seen_at = excluded.last_seen_at, removed_at = NULL",
        )
        .await?;
    for cal in calendars {
        let name = cal.name.as_deref().map(clean);
        let role = cal.access_role.as_deref().map(clean);
        c.execute(&upsert, &[&account, &clean(&cal.id), &name, &cal.primary, &role, &json(&cal.raw), &now]).await?;
    }
    Ok(true)
}

async fn save_task_lists(
    c: &impl GenericClient,
    account: &str,
    lists: &[TaskList],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let upsert = c
        .prepare_cached(
            "INSERT INTO task_lists (account, task_list_id, title, is_default, raw, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $6)
             ON CONFLICT (account, task_list_id) DO UPDATE SET title = excluded.title,
                is_default = excluded.is_default, raw = excluded.raw,
                last_seen_at = excluded.last_seen_at, removed_at = NULL",
        )
        .await?;
    for t in lists {
        let title = t.title.as_deref().map(clean);
        c.execute(&upsert, &[&account, &clean(&t.id), &title, &t.default_list, &json(&t.raw), &now]).await?;
    }
    Ok(true)
}

/// The folders of an account; those it no longer lists are marked removed.
async fn save_folders(
    c: &impl GenericClient,
    account: &str,
    folders: &[EmailFolder],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let upsert = c
        .prepare_cached(
            "INSERT INTO folders (account, folder_id, name, full_name, role, parent_id, is_folder, is_label, raw,
                first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $10)
             ON CONFLICT (account, folder_id) DO UPDATE SET name = excluded.name, full_name = excluded.full_name,
                role = excluded.role, parent_id = excluded.parent_id, is_folder = excluded.is_folder,
                is_label = excluded.is_label, raw = excluded.raw, last_seen_at = excluded.last_seen_at,
                removed_at = NULL",
        )
        .await?;
    let text = |t: &Option<String>| t.as_deref().map(|t| clean(t).into_owned());
    for f in folders {
        c.execute(
            &upsert,
            &[
                &account,
                &clean(&f.id),
                &text(&f.name),
                &text(&f.full_name),
                &text(&f.sys_label),
                &text(&f.parent_id),
                &f.is_folder,
                &f.is_label,
                &json(&f.raw),
                &now,
            ],
        )
        .await?;
    }
    if !folders.is_empty() {
        let listed: Vec<String> = folders.iter().map(|f| clean(&f.id).into_owned()).collect();
        c.execute(
            "UPDATE folders SET removed_at = $2 WHERE account = $1 AND removed_at IS NULL
                AND NOT (folder_id = ANY($3))",
            &[&account, &now, &listed],
        )
        .await?;
    }
    Ok(true)
}

/// A complete listing of the app's accounts (see `Store::save_app_accounts`).
async fn save_app_accounts(
    c: &impl GenericClient,
    listed: &[AppAccount],
    purge_removed: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let save = c.prepare_cached(&dollars(SAVE_APP_ACCOUNT)).await?;
    // Pipelined: a thousand accounts are one round trip's worth of waiting.
    let saves = listed.iter().map(|a| {
        let save = &save;
        async move {
            let text = |s: &Option<String>| s.as_deref().map(|s| clean(s).into_owned());
            let stopped = a.not_syncable();
            c.execute(
                save,
                &[
                    &discovered_name(a.id),
                    &a.id,
                    &text(&a.service_type),
                    &text(&a.email),
                    &text(&a.token_status),
                    &stopped,
                    &now,
                    &true,
                ],
            )
            .await
        }
    });
    futures_util::future::try_join_all(saves).await?;
    // Names, not times, decide (see SQLite's statement).
    let names: Vec<String> = listed.iter().map(|a| discovered_name(a.id)).collect();
    c.execute(
        "UPDATE accounts SET app_stopped = $1, updated_at = $2
         WHERE app_listed AND NOT (name = ANY($3)) AND (app_stopped IS NULL OR app_stopped <> $1)",
        &[&REMOVED_FROM_APP, &now, &names],
    )
    .await?;
    if purge_removed {
        for table in purged_tables() {
            c.execute(&dollars(&purge(table)), &[&REMOVED_FROM_APP, &true]).await?;
        }
    }
    Ok(true)
}

async fn save_account_id(
    c: &impl GenericClient,
    account: &str,
    aurinko_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    c.execute(&dollars(SAVE_ACCOUNT_ID), &[&account, &aurinko_id, &now]).await?;
    Ok(true)
}

/// The account's id and its subscriptions as Aurinko listed them, replacing
/// what the store knew, in one transaction.
async fn save_subscriptions(
    c: &impl GenericClient,
    account: &str,
    aurinko_id: i64,
    subscriptions: &[StoredSubscription],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    save_account_id(c, account, aurinko_id, now).await?;
    let ids: Vec<i64> = subscriptions.iter().map(|s| s.id).collect();
    c.execute("DELETE FROM subscriptions WHERE account = $1 AND NOT (subscription_id = ANY($2))", &[&account, &ids])
        .await?;
    let upsert = c.prepare_cached(&dollars(SAVE_SUBSCRIPTION)).await?;
    for s in subscriptions {
        let fail_since =
            s.fail_since.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
        c.execute(
            &upsert,
            &[
                &account,
                &s.id,
                &clean(&s.resource),
                &s.key.kind.as_str(),
                &clean(&s.key.id),
                &clean(&s.notification_url),
                &s.active,
                &fail_since,
                &s.fail_description.as_deref().map(clean),
                &now,
            ],
        )
        .await?;
    }
    Ok(true)
}
