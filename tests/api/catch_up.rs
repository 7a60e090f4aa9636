//! Full and incremental catch-up.

use std::time::Duration;

use aurinko_fake::{Endpoint, FakeOptions};

use crate::helpers::{Setup, StoreKind, assert_exit, spawn_app, spawn_app_on, text};

on_each_store!(
    a_full_sync_equals_the_truth_and_state_shows_it,
    a_full_sync_equals_the_truth_and_state_shows_it_on_postgresql,
    a_full_sync_on
);

async fn a_full_sync_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok")).count(), 2, "one summary line per calendar:\n{stdout}");

    // The protocol: one provisioning per calendar, the first page with the
    // delta token, follow-ups with the page token alone.
    let requests = app.requests();
    assert_eq!(requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart).count(), 2);
    for r in requests.iter().filter(|r| matches!(r.endpoint, Endpoint::SyncUpdated | Endpoint::SyncDeleted)) {
        assert!(r.delta_token.is_some() != r.page_token.is_some(), "exactly one token per request: {r:?}");
    }

    let state = app.state_json().await;
    let collections = state["collections"].as_array().unwrap();
    assert_eq!(collections.len(), 2);
    for c in collections {
        assert_eq!(c["phase"], "idle");
        assert_eq!(c["consecutive_failures"], 0);
        assert!(c["last_success_at"].is_string());
    }
    let total: i64 = collections.iter().map(|c| c["records"].as_i64().unwrap()).sum();
    assert_eq!(total as usize, app.truth("work").len());

    let table = text(&app.run_binary(&["state"]).await.stdout);
    assert!(table.contains("cal-1") && table.contains("idle"), "{table}");
}

on_each_store!(
    after_mutations_a_second_catch_up_uses_only_delta_requests,
    after_mutations_a_second_catch_up_uses_only_delta_requests_on_postgresql,
    deltas_only_on
);

async fn deltas_only_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    assert_exit(&app.catch_up().await, 0);
    let full_records: usize = app.requests().iter().map(|r| r.records).sum();
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 40);
    let created = app.fake.create_event(&token, "cal-2");
    app.fake.clear_requests();

    let out = app.catch_up().await;
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
    assert!(app.stored("work").iter().any(|(_, id, _)| *id == created));
    let requests = app.requests();
    assert!(
        requests.iter().all(|r| r.endpoint != Endpoint::SyncStart),
        "no new provisioning: {:?}",
        requests.iter().map(|r| r.endpoint).collect::<Vec<_>>()
    );
    assert!(requests.iter().all(|r| r.status == 200));
    // Only the changes came back, not the whole calendars.
    let records: usize = requests.iter().map(|r| r.records).sum();
    assert!(records * 3 < full_records, "{records} records for 41 changes, {full_records} in the full sync");

    // Nothing changed since: one request per stream and calendar.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let sync_requests =
        app.requests().iter().filter(|r| matches!(r.endpoint, Endpoint::SyncUpdated | Endpoint::SyncDeleted)).count();
    assert_eq!(sync_requests, 4, "2 calendars x 2 streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioning_that_is_not_ready_at_first_is_asked_again() {
    let setup = Setup {
        options: FakeOptions { not_ready_polls: 3, page_size: 50, ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let report = app.catch_up_in_process().await;
    assert!(report.all_succeeded(), "{report:?}");
    app.assert_store_equals_truth("work");
    let starts = app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart).count();
    assert_eq!(starts, 2 * 4, "three not-ready answers and a ready one per calendar");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_ready_provisioning_is_asked_again_within_250_ms_then_doubling() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 10)])],
        options: FakeOptions { not_ready_polls: 3, ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    // The default retry settings, which made the first ask again wait 1 s.
    let config = app.config_text("").replace("backoff_base_ms = 5\nbackoff_max_ms = 100\n", "");
    std::fs::write(&app.config_path, config).unwrap();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let starts: Vec<_> =
        app.requests().into_iter().filter(|r| r.endpoint == Endpoint::SyncStart).map(|r| r.at).collect();
    assert_eq!(starts.len(), 4, "three not-ready answers and a ready one");
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Lower bounds are exact (a sleep is never shorter). The bug this test
    // is named after waited 1 s before asking again, and a sleep is never
    // shorter than asked: anything under 1 s is the 250 ms wait, with the
    // rest left to a busy machine's scheduling of one loopback request.
    assert!(gaps[0] >= Duration::from_millis(240) && gaps[0] < Duration::from_millis(1000), "first {gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(490) && gaps[2] >= Duration::from_millis(990), "doubling {gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_removed_upstream_is_purged() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.remove_calendar(&token, "cal-2");
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert!(app.stored("work").iter().all(|(cal, _, _)| cal == "cal-1"));
    app.assert_store_equals_truth("work");
    let state = app.state_json().await;
    let cal2 = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-2").unwrap().clone();
    assert_eq!(cal2["phase"], "removed");
    assert_eq!(cal2["records"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_during_a_run_are_caught_by_the_next_one() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 400), ("cal-2", 300)])],
        options: FakeOptions { page_size: 10, latency: std::time::Duration::from_millis(2), ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let token = app.token("work").to_string();
    let fake = app.fake.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let mutator = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut rounds = 0;
            while !stop.is_cancelled() {
                fake.mutate_random(&token, 3);
                rounds += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            rounds
        }
    });
    // While the first run pages through the calendars, events change under it.
    let first = app.catch_up().await;
    let second = app.catch_up().await;
    stop.cancel();
    let rounds = mutator.await.unwrap();
    assert!(rounds > 10, "mutations happened during the runs ({rounds})");
    assert_exit(&first, 0);
    assert_exit(&second, 0);
    // A quiet run afterwards converges to the truth.
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_calendar_is_synced_with_shared_calendars_on_and_only_then() {
    let setup = Setup { accounts: vec![("work", vec![("cal-1", 30), ("shared-1", 20)])], ..Setup::default() };
    let app = spawn_app(setup).await;
    let token = app.token("work").to_string();
    assert!(app.fake.set_calendar_shared(&token, "shared-1", true));
    let of = |rows: Vec<(String, String, Option<String>)>, calendar: &str| -> Vec<_> {
        rows.into_iter().filter(|(c, _, _)| c == calendar).collect()
    };
    // Off (the default): only the user's own calendar, and nothing asked of the shared one.
    assert_exit(&app.catch_up().await, 0);
    assert_eq!(of(app.stored("work"), "cal-1"), of(app.truth("work"), "cal-1"));
    assert!(of(app.stored("work"), "shared-1").is_empty());
    assert!(app.requests().iter().all(|r| r.calendar_id.as_deref() != Some("shared-1")));
    // On: the shared calendar is listed and synced; the own one is not provisioned again.
    let config = app.config_text("").replace("[[accounts]]\n", "[[accounts]]\nshared_calendars = true\n");
    std::fs::write(&app.config_path, config).unwrap();
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    assert_eq!(of(app.stored("work"), "shared-1").len(), 20);
    let starts: Vec<_> = app.requests().into_iter().filter(|r| r.endpoint == Endpoint::SyncStart).collect();
    assert!(starts.iter().all(|r| r.calendar_id.as_deref() == Some("shared-1")), "only the new one provisions");
    // And it stays: the next discovery lists it again, nothing is purged.
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
}
