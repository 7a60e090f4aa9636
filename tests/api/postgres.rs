//! What only the PostgreSQL store has: the database itself going away in
//! the middle of a sync, and a SQLite store moved into it.

use std::time::Duration;

use aurinko_fake::{Collection, Endpoint, FakeOptions};
use private_postgres::PrivatePostgres;

use crate::helpers::{Setup, StoreAt, StoreKind, assert_exit, spawn_app, spawn_app_on, text};
use crate::service::wait_for_get;

/// The daemon syncs while its PostgreSQL is stopped and started again: the
/// writes made meanwhile fail as transient, the collections retry, the
/// store reconnects, and the store ends equal to the truth, with the same
/// daemon still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_in_the_middle_of_a_sync_ends_equal_to_the_truth() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 1500), ("cal-2", 1500)])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(5), ..FakeOptions::default() },
        sync_extra: "poll_interval_secs = 1\nmax_retry_interval_secs = 1\n",
        server: true,
        ..Setup::default()
    };
    let test = "a_postgresql_restart_in_the_middle_of_a_sync_ends_equal_to_the_truth";
    let Some(app) = spawn_app_on(setup, StoreKind::Postgres, test).await else { return };
    let server = app.postgres.clone().expect("on PostgreSQL");
    let daemon = app.spawn_daemon().await;
    wait_for_get(&app, "/healthz", "200", |status, _| status == 200).await;
    let stored = || app.read_store(|s| s.events("work")).map(|e| e.len()).unwrap_or(0);
    app.wait_for(Duration::from_secs(60), "the first pages committed", || stored() > 0).await;
    let truth = app.truth("work").len();
    assert!(stored() < truth, "the sync was under way when the database stopped");

    tokio::task::block_in_place(|| server.stop());
    // The writes fail while it is down: the daemon says so, and goes on.
    let skip = daemon.lines().len();
    daemon.wait_for_line(skip, Duration::from_secs(60), "a failed write", |l| l.contains("PostgreSQL")).await;
    // The health probe asks the database too: unhealthy while it is away.
    let (_, body) = wait_for_get(&app, "/healthz", "503", |status, _| status == 503).await;
    assert!(body.contains("store not writable"), "{body}");
    tokio::task::block_in_place(|| server.restart());

    app.wait_for(Duration::from_secs(120), "the store equal to the truth", || app.store_matches_truth("work")).await;
    app.assert_store_equals_truth("work");
    wait_for_get(&app, "/healthz", "200 again", |status, _| status == 200).await;
    daemon.terminate();
    let out = daemon.wait_with_output().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the daemon kept running and stopped cleanly:\n{}",
        crate::helpers::text(&out.stderr)
    );
}

/// A SQLite store moved to PostgreSQL with `store copy`: after switching
/// the configuration, the next pass continues from the copied tokens (no
/// `POST /sync`), and every kind ends equal to the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_copied_to_postgresql_continues_from_its_tokens_without_provisioning() {
    let test = "a_sqlite_store_copied_to_postgresql_continues_from_its_tokens_without_provisioning";
    let setup = Setup {
        mail: Some((30, "{ days_within = 365, body = \"text\" }")),
        contacts: Some(20),
        tasks: Some((vec![("list-1", 15)], "true")),
        ..Setup::default()
    };
    let mut app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let Some(server) = tokio::task::block_in_place(|| PrivatePostgres::start(test)) else { return };
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 30);
    for collection in [Collection::Email, Collection::Contacts, Collection::Tasks("list-1".into())] {
        app.fake.mutate_random_in(&token, &collection, 5);
    }
    let sqlite_state = app.state_json().await;

    let out = app.run_binary(&["store", "copy", "--to", &server.url()]).await;
    assert_exit(&out, 0);
    let printed = text(&out.stdout);
    assert!(printed.contains("events") && printed.contains("sync_state"), "{printed}");
    // Only into an empty store: a second copy is refused and changes nothing.
    let events = || tokio::task::block_in_place(|| server.psql("SELECT count(*) FROM events"));
    let before = events();
    let again = app.run_binary(&["store", "copy", "--to", &server.url()]).await;
    assert_exit(&again, 2);
    assert!(text(&again.stderr).contains("not empty"), "{}", text(&again.stderr));
    assert_eq!(events(), before);

    app.edit_config(&format!("path = \"{}\"", app.db_path.display()), &format!("url = \"{}\"", server.url()));
    app.store_at = StoreAt::Postgres { url: server.url(), schema: "public".into() };
    let copied_state = app.state_json().await;
    assert_eq!(copied_state["collections"], sqlite_state["collections"], "state reads the same from the copy");
    assert_eq!(copied_state["accounts"], sqlite_state["accounts"]);

    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let requests = app.requests();
    assert!(requests.iter().all(|r| r.endpoint != Endpoint::SyncStart), "no collection was provisioned again");
    assert!(requests.iter().any(|r| r.records > 0), "the changes made before the copy came as deltas");
    app.assert_store_equals_truth("work");
    app.assert_collection_equals_truth("work", &Collection::Email, Some("text"));
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    app.assert_collection_equals_truth("work", &Collection::Tasks("list-1".into()), None);
    // The history came along, and the next run is stored after it.
    let runs = app.run_binary(&["state", "--runs", "--json"]).await;
    assert_exit(&runs, 0);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&runs.stdout).unwrap();
    let ids: Vec<i64> = runs.iter().map(|r| r["run_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [2, 1], "the copied catch-up, then the one on PostgreSQL");
}
