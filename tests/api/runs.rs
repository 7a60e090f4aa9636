//! The history of runs: each `run --catch-up` and each batch of the
//! daemon's passes in `runs`, with what it did, shown by `state --runs`.

use std::time::Duration;

use aurinko_fake::Endpoint;

use crate::helpers::{Setup, StoreKind, assert_exit, spawn_app_on, text};

/// The fake's calls a pass makes (not discovery's): what a run counts as
/// its requests.
fn pass_requests(app: &crate::helpers::TestApp) -> i64 {
    app.requests()
        .iter()
        .filter(|r| matches!(r.endpoint, Endpoint::SyncStart | Endpoint::SyncUpdated | Endpoint::SyncDeleted))
        .count() as i64
}

async fn runs_json(app: &crate::helpers::TestApp) -> Vec<serde_json::Value> {
    let out = app.run_binary(&["state", "--runs", "--json"]).await;
    assert_exit(&out, 0);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

on_each_store!(
    each_catch_up_is_a_run_with_what_it_did,
    each_catch_up_is_a_run_with_what_it_did_on_postgresql,
    catch_up_runs_on
);

async fn catch_up_runs_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    assert_exit(&app.catch_up().await, 0);
    let first_requests = pass_requests(&app);
    let events = app.truth("work").len() as i64;
    let token = app.token("work").to_string();
    let (calendar, id, _) = app.truth("work")[0].clone();
    assert!(app.fake.delete_event(&token, &calendar, &id));
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let second_requests = pass_requests(&app);

    let runs = runs_json(&app).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (newest, oldest) = (&runs[0], &runs[1]);
    assert!(newest["run_id"].as_i64() > oldest["run_id"].as_i64(), "newest first");
    for run in &runs {
        assert_eq!(run["mode"], "catch-up");
        assert_eq!(run["outcome"], "ok");
        assert_eq!(run["collections"], 2, "every calendar of a catch-up has its row");
        assert_eq!(run["passes"], 2);
    }
    assert_eq!((oldest["upserted"].as_i64(), oldest["deleted"].as_i64()), (Some(events), Some(0)));
    assert_eq!((newest["upserted"].as_i64(), newest["deleted"].as_i64()), (Some(0), Some(1)));
    assert_eq!(oldest["requests"].as_i64(), Some(first_requests));
    assert_eq!(newest["requests"].as_i64(), Some(second_requests));

    let table = text(&app.run_binary(&["state", "--runs"]).await.stdout);
    let lines: Vec<&str> = table.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("RUN") && lines[0].contains("UPSERTED"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[1].contains("catch-up") && lines[2].contains(&events.to_string()), "{table}");
}

/// The daemon stores a run per `sync.run_batch_secs` that listed only what
/// changed, and a last one when it stops; a failing collection is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_stores_its_passes_a_batch_at_a_time() {
    let Some(app) = spawn_app_on(Setup::default(), StoreKind::Sqlite, "daemon_runs").await else { return };
    app.edit_config("[sync]\n", "[sync]\nrun_batch_secs = 1\npoll_interval_secs = 1\n");
    let daemon = app.spawn_daemon().await;
    let limit = Duration::from_secs(60);
    app.wait_for(limit, "the first batch", || app.read_store(|s| s.runs(10)).is_ok_and(|r| !r.is_empty())).await;
    // Idle batches follow: passes counted, no collection listed.
    app.wait_for(limit, "an idle batch", || {
        app.read_store(|s| s.runs(50)).is_ok_and(|r| r.iter().any(|r| r.passes > 0 && r.collections == 0))
    })
    .await;
    daemon.terminate();
    let out = daemon.wait_with_output().await;
    assert_exit(&out, 0);
    let runs = runs_json(&app).await;
    assert!(runs.iter().all(|r| r["mode"] == "daemon"), "{runs:?}");
    // The last batch may hold a pass the stop cut short.
    assert!(runs[1..].iter().all(|r| r["outcome"] == "ok"), "{runs:?}");
    assert!(["ok", "stopped"].contains(&runs[0]["outcome"].as_str().unwrap()), "{runs:?}");
    let upserted: i64 = runs.iter().map(|r| r["upserted"].as_i64().unwrap()).sum();
    assert_eq!(upserted, app.truth("work").len() as i64, "every event once, over the batches");
    // Every pass the fake saw is in some batch, the last one's too; a pass
    // the stop cut short before its first request is counted, unseen.
    let passes: i64 = runs.iter().map(|r| r["passes"].as_i64().unwrap()).sum();
    assert!(passes >= pass_count(&app), "{passes} passes stored, {} seen: {runs:?}", pass_count(&app));
}

/// The passes the fake saw: one `GET /sync/updated` with a delta token
/// starts each (a first pass provisions, then fetches with one too).
fn pass_count(app: &crate::helpers::TestApp) -> i64 {
    app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncUpdated && r.delta_token.is_some()).count() as i64
}

/// The passes since the last batch are stored when the daemon stops: with
/// a batch longer than the daemon lives, its one run holds every pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_daemon_stores_the_passes_since_its_last_batch() {
    let Some(app) = spawn_app_on(Setup::default(), StoreKind::Sqlite, "daemon_last_batch").await else { return };
    app.edit_config("[sync]\n", "[sync]\nrun_batch_secs = 3600\npoll_interval_secs = 1\n");
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(60), "two passes of each calendar", || pass_count(&app) >= 4).await;
    daemon.terminate();
    assert_exit(&daemon.wait_with_output().await, 0);
    let runs = runs_json(&app).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["upserted"].as_i64(), Some(app.truth("work").len() as i64));
    assert!(runs[0]["passes"].as_i64().unwrap() >= pass_count(&app), "{runs:?}");
}
