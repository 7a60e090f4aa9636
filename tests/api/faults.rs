//! Catch-up through injected faults of every kind.

use aurinko_sync::fake::{Endpoint, FakeOptions, FaultKind, Faults};

use crate::helpers::{Setup, assert_exit, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fifteen_percent_of_requests_faulted_catch_up_still_equals_the_truth() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 300), ("cal-2", 200), ("cal-3", 100)])],
        options: FakeOptions { page_size: 8, seed: 11, ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    // Every kind: 500, 503, 429 both ways, truncated bodies, resets, latency.
    app.fake.set_faults(Faults { rate: 0.15, kinds: vec![] });
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");

    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 60);
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");

    let requests = app.requests();
    let faulted = requests.iter().filter(|r| r.fault.is_some()).count();
    assert!(faulted * 100 >= requests.len() * 8, "faults were injected: {faulted} of {}", requests.len());
    let kinds: std::collections::HashSet<_> = requests.iter().filter_map(|r| r.fault).collect();
    assert!(kinds.len() >= 4, "several fault kinds occurred: {kinds:?}");
    // Faults cost retries, never extra provisioning beyond what faulted.
    let good_starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(good_starts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_rate_limit_is_honoured_and_sync_completes() {
    let setup = Setup {
        options: FakeOptions { page_size: 10, rate_limit_per_sec: Some(20), ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let requests = app.requests();
    let limited = requests.iter().filter(|r| r.status == 429).count();
    // After a 429 the whole account pauses until Retry-After has passed,
    // so 429s stay a small share instead of a retry storm.
    assert!(limited * 4 <= requests.len(), "{limited} of {} requests were refused", requests.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_that_calendar_with_a_clear_error_and_exit_1() {
    let app = spawn_app(Setup::default()).await;
    app.fake.set_faults(Faults { rate: 1.0, kinds: vec![aurinko_sync::fake::FaultKind::Unavailable] });
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = crate::helpers::text(&out.stderr);
    assert!(stderr.contains("failed") && stderr.contains("transient") && stderr.contains("503"), "{stderr}");
    // Attempts are bounded: 10 per request.
    assert!(app.requests().len() <= 10, "{} requests", app.requests().len());
    // The calendar recovers on the next run once the faults stop.
    app.fake.set_faults(Faults::default());
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_kind_alone_is_survived() {
    for kind in FaultKind::ALL {
        let setup = Setup {
            accounts: vec![("work", vec![("cal-1", 90), ("cal-2", 60)])],
            options: FakeOptions { page_size: 10, seed: 5, ..FakeOptions::default() },
            ..Setup::default()
        };
        let app = spawn_app(setup).await;
        app.fake.set_faults(Faults { rate: 0.25, kinds: vec![kind] });
        let report = app.catch_up_in_process().await;
        assert!(report.all_succeeded(), "{kind:?}: {report:?}");
        app.assert_store_equals_truth("work");
        assert!(app.requests().iter().any(|r| r.fault == Some(kind)), "{kind:?} was injected");
    }
}
