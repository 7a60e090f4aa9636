//! What only the PostgreSQL store has to survive: the database itself going
//! away in the middle of a sync.

use std::time::Duration;

use aurinko_fake::FakeOptions;

use crate::helpers::{Setup, StoreKind, spawn_app_on};

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
        ..Setup::default()
    };
    let test = "a_postgresql_restart_in_the_middle_of_a_sync_ends_equal_to_the_truth";
    let Some(app) = spawn_app_on(setup, StoreKind::Postgres, test).await else { return };
    let server = app.postgres.clone().expect("on PostgreSQL");
    let daemon = app.spawn_daemon().await;
    let stored = || app.read_store(|s| s.events("work")).map(|e| e.len()).unwrap_or(0);
    app.wait_for(Duration::from_secs(60), "the first pages committed", || stored() > 0).await;
    let truth = app.truth("work").len();
    assert!(stored() < truth, "the sync was under way when the database stopped");

    tokio::task::block_in_place(|| server.stop());
    // The writes fail while it is down: the daemon says so, and goes on.
    let skip = daemon.lines().len();
    daemon.wait_for_line(skip, Duration::from_secs(60), "a failed write", |l| l.contains("PostgreSQL")).await;
    tokio::task::block_in_place(|| server.restart());

    app.wait_for(Duration::from_secs(120), "the store equal to the truth", || app.store_matches_truth("work")).await;
    app.assert_store_equals_truth("work");
    daemon.terminate();
    let out = daemon.wait_with_output().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the daemon kept running and stopped cleanly:\n{}",
        crate::helpers::text(&out.stderr)
    );
}
