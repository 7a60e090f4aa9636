//! App mode (`[app] accounts = "aurinko"`): the accounts come from the app's
//! list (`GET /v1/am/accounts`), and every request acts for one with the
//! app's credentials (HTTP Basic and `X-Aurinko-Account-Id`).

use std::time::Duration;

use aurinko_fake::{Collection, Endpoint, FakeOptions, TokenStatus};
use aurinko_sync::store::REMOVED_FROM_APP;

use crate::helpers::{APP_CLIENT_ID, Setup, StoreKind, TestApp, assert_exit, spawn_app, spawn_app_on, text};

fn app_setup() -> Setup {
    Setup {
        accounts: vec![
            ("work", vec![("w-1", 60), ("w-2", 40)]),
            ("home", vec![("h-1", 50)]),
            ("club", vec![("c-1", 30)]),
            ("shop", vec![("s-1", 20)]),
            ("team", vec![("t-1", 10)]),
        ],
        contacts: Some(15),
        // Two accounts a page: the account list takes three.
        options: FakeOptions { page_size: 2, ..FakeOptions::default() },
        app: true,
        ..Setup::default()
    }
}

/// The `state --json` entry of `account` (by its test name).
async fn account_state(app: &TestApp, account: &str) -> serde_json::Value {
    let name = app.local_name(account);
    let state = app.state_json().await;
    state["accounts"].as_array().unwrap().iter().find(|a| a["name"] == name.as_str()).cloned().unwrap_or_default()
}

on_each_store!(
    app_mode_syncs_every_account_the_app_lists_and_the_store_equals_the_truth,
    app_mode_syncs_every_account_the_app_lists_and_the_store_equals_the_truth_on_postgresql,
    every_listed_account_on
);

async fn every_listed_account_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(app_setup(), kind, test).await else { return };
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    for a in &app.accounts {
        app.assert_store_equals_truth(a.name);
        app.assert_collection_equals_truth(a.name, &Collection::Contacts, None);
    }
    let requests = app.requests();
    let listings = requests.iter().filter(|r| r.endpoint == Endpoint::AppAccounts).count();
    assert_eq!(listings, 3, "five accounts, two a page");
    // Every other request acted for an account the fake could name: the
    // app's credentials and the account id header were accepted.
    assert!(
        requests.iter().filter(|r| r.endpoint != Endpoint::AppAccounts).all(|r| r.status == 200 && r.account.is_some())
    );

    let work = account_state(&app, "work").await;
    assert_eq!(work["app_listed"], true, "{work}");
    assert_eq!(work["email"], "work@example.com", "{work}");
    assert_eq!(work["token_status"], "active", "{work}");
    assert!(work["app_stopped"].is_null(), "{work}");
    let table = text(&app.run_binary(&["state"]).await.stdout);
    let row = table.lines().find(|l| l.starts_with(&app.local_name("work"))).unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(1), Some("app"), "{table}");

    // A second catch-up asks only for deltas, as with configured accounts.
    app.fake.clear_requests();
    app.fake.mutate_random(app.token("home"), 5);
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("home");
    assert_eq!(app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart).count(), 0);
}

#[tokio::test]
async fn an_account_whose_token_is_not_active_is_not_synced_and_state_says_why() {
    let app = spawn_app(app_setup()).await;
    app.fake.set_token_status(app.token("home"), TokenStatus::Invalid);
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    let home = app.local_name("home");
    assert!(
        text(&out.stdout).contains(&format!("stopped  {home}: not synced (token invalid)")),
        "{}",
        text(&out.stdout)
    );
    assert!(app.requests().iter().all(|r| r.account.as_deref() != Some("home")), "nothing was asked for home");
    app.assert_store_equals_truth("work");
    let state = account_state(&app, "home").await;
    assert_eq!(
        (state["app_stopped"].as_str(), state["token_status"].as_str()),
        (Some("token invalid"), Some("invalid"))
    );

    // Disconnected from the app: the account is marked, its rows stay.
    let events = app.stored("work").len();
    app.fake.disconnect_account(app.token("work"));
    assert_exit(&app.catch_up().await, 0);
    assert_eq!(account_state(&app, "work").await["app_stopped"], REMOVED_FROM_APP);
    assert_eq!(app.stored("work").len(), events, "a removed account's rows are kept");
    let table = text(&app.run_binary(&["state"]).await.stdout);
    let (work, home) = (app.local_name("work"), app.local_name("home"));
    assert!(
        table.contains(&format!("account {work} (work@example.com): not synced by the app: removed from the app"))
            && table.contains(&format!("account {home} (home@example.com): not synced by the app: token invalid")),
        "{table}"
    );
}

#[tokio::test]
async fn a_wrong_app_secret_fails_the_run_in_one_line_without_the_secret() {
    let app = spawn_app(app_setup()).await;
    app.fake.set_app_credentials(APP_CLIENT_ID, "another secret");
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let line = stderr.lines().find(|l| l.starts_with("failed")).unwrap_or_default();
    assert!(line.contains("account list") && line.contains("401"), "{stderr}");
    assert!(!stderr.contains(crate::helpers::APP_SECRET) && !text(&out.stdout).contains(crate::helpers::APP_SECRET));
    assert_eq!(app.requests().iter().filter(|r| r.endpoint != Endpoint::AppAccounts).count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_starts_new_accounts_and_stops_those_the_app_no_longer_syncs() {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 40)]), ("home", vec![("h-1", 30)])],
        sync_extra: "poll_interval_secs = 1\ndiscovery_interval_secs = 1\n",
        app: true,
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let _daemon = app.spawn_daemon().await;
    let limit = Duration::from_secs(60);
    app.wait_for(limit, "both accounts synced", || app.store_matches_truth("work") && app.store_matches_truth("home"))
        .await;

    // An account connected while the daemon runs starts within the
    // discovery interval.
    app.fake.add_account("late", "token-late");
    app.fake.add_calendar("token-late", "l-1", "Late", true);
    app.fake.generate_events("token-late", "l-1", 25);
    let late = aurinko_sync::model::discovered_name(app.fake.account_id("token-late").unwrap());
    let late_synced =
        || app.read_store(|s| s.events(&late)).is_ok_and(|e| e.len() == app.fake.truth("token-late").len());
    app.wait_for(limit, "the new account synced", late_synced).await;

    // A token that is no longer active stops the account; so does leaving
    // the app. Their rows stay.
    let home_rows = app.stored("home").len();
    app.fake.set_token_status(app.token("home"), TokenStatus::Invalid);
    app.fake.disconnect_account(app.token("work"));
    let stopped = |account: &str, why: &str| {
        let name = app.local_name(account);
        app.read_store(|s| s.report())
            .is_ok_and(|r| r.accounts.iter().any(|a| a.name == name && a.app_stopped.as_deref() == Some(why)))
    };
    app.wait_for(limit, "both accounts stopped", || {
        stopped("home", "token invalid") && stopped("work", REMOVED_FROM_APP)
    })
    .await;
    // Once stopped, nothing more is asked for them: two more listings pass
    // without a request of theirs.
    app.fake.clear_requests();
    let listings = || app.requests().iter().filter(|r| r.endpoint == Endpoint::AppAccounts && r.status == 200).count();
    app.wait_for(limit, "two more listings", || listings() >= 2).await;
    let theirs: Vec<_> =
        app.requests().into_iter().filter(|r| matches!(r.account.as_deref(), Some("home" | "work"))).collect();
    assert!(theirs.is_empty(), "requests for stopped accounts: {theirs:?}");
    assert_eq!(app.stored("home").len(), home_rows, "a stopped account's rows are kept");

    // Its token active again, the account resumes where it stopped.
    app.fake.mutate_random(app.token("home"), 5);
    app.fake.set_token_status(app.token("home"), TokenStatus::Active);
    app.wait_for(limit, "home synced again", || app.store_matches_truth("home")).await;
    assert!(
        app.requests()
            .iter()
            .filter(|r| r.account.as_deref() == Some("home"))
            .all(|r| r.endpoint != Endpoint::SyncStart),
        "resumed from its stored tokens, not provisioned again"
    );
}

on_each_store!(
    with_purge_removed_accounts_an_account_that_leaves_the_app_loses_its_rows_and_keeps_its_entry,
    with_purge_removed_accounts_an_account_that_leaves_the_app_loses_its_rows_and_keeps_its_entry_on_postgresql,
    purge_on
);

async fn purge_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(app_setup(), kind, test).await else { return };
    app.edit_config("accounts = \"aurinko\"", "accounts = \"aurinko\"\npurge_removed_accounts = true");
    assert_exit(&app.catch_up().await, 0);
    let home_rows = app.stored("home").len();
    app.fake.disconnect_account(app.token("work"));
    app.fake.set_token_status(app.token("home"), TokenStatus::Invalid);
    assert_exit(&app.catch_up().await, 0);
    assert_eq!(app.stored("work").len(), 0, "a removed account's events are purged");
    let work = app.local_name("work");
    let contacts = app.read_store(|s| s.records(&work, aurinko_sync::model::Kind::Contacts)).unwrap();
    assert!(contacts.is_empty(), "and its contacts");
    assert_eq!(account_state(&app, "work").await["app_stopped"], REMOVED_FROM_APP);
    let collections = app.state_json().await["collections"].as_array().unwrap().clone();
    assert!(collections.iter().all(|c| c["account"] != work.as_str()), "no collection of it is left");
    // An account stopped for its token keeps its rows: it may come back.
    assert_eq!(app.stored("home").len(), home_rows);
    app.assert_store_equals_truth("club");
}
