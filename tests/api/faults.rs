//! Catch-up through injected faults of every kind, and retries that run out on every endpoint.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;

use aurinko_fake::{Collection, Endpoint, FakeOptions, FaultKind, FaultScope, Faults, RequestRecord};

use crate::helpers::{Setup, StoreKind, TestApp, assert_exit, spawn_app, spawn_app_on};

/// Stalls of 4 s against a client timeout of 2 s: each stall is a client timeout, with room for
/// a busy machine on both sides (an answer that is merely slow is not one).
const STALL: Duration = Duration::from_secs(4);

fn with_short_client_timeout(app: &TestApp) {
    app.edit_config("timeout_secs = 5", "timeout_secs = 2");
}

/// Asserts that every answer announcing `Retry-After` (all of them `retry_after` or more) was
/// followed by the same request no sooner than `retry_after` later. The fake's log holds arrival
/// times, so the gap is a lower bound of the client's pause, whatever the machine's load.
/// Returns how many pauses were checked.
fn assert_retry_after_honoured(requests: &[RequestRecord], retry_after: Duration) -> usize {
    let same = |a: &RequestRecord, b: &RequestRecord| {
        (&a.account, &a.method, &a.path, &a.delta_token, &a.page_token)
            == (&b.account, &b.method, &b.path, &b.delta_token, &b.page_token)
    };
    let mut checked = 0;
    for (i, r) in requests.iter().enumerate() {
        let Some(kind) = r.fault.filter(|k| k.announces_retry_after()) else { continue };
        let next = requests[i + 1..]
            .iter()
            .find(|n| same(r, n))
            .unwrap_or_else(|| panic!("{} {} was asked again after its {kind:?}", r.method, r.path));
        let gap = next.at.duration_since(r.at);
        assert!(gap >= retry_after, "{} {} came again {gap:?} after a {kind:?} of {retry_after:?}", r.method, r.path);
        checked += 1;
    }
    checked
}

on_each_store!(
    with_fifteen_percent_of_requests_faulted_catch_up_still_equals_the_truth,
    with_fifteen_percent_of_requests_faulted_catch_up_still_equals_the_truth_on_postgresql,
    faults_on
);

async fn faults_on(kind: StoreKind, test: &str) {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 300), ("cal-2", 200), ("cal-3", 100)])],
        options: FakeOptions { page_size: 8, seed: 11, stall: STALL, ..FakeOptions::default() },
        ..Setup::default()
    };
    let Some(app) = spawn_app_on(setup, kind, test).await else { return };
    with_short_client_timeout(&app);
    // Every kind: 500, 502, 503 (with and without Retry-After), 504, 408, 429 both ways,
    // truncated bodies, resets, stalls past the client's timeout, latency.
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
    let kinds: HashSet<_> = requests.iter().filter_map(|r| r.fault).collect();
    let missing: Vec<_> = FaultKind::ALL.iter().filter(|k| !kinds.contains(k)).collect();
    assert!(missing.is_empty(), "every fault kind occurred; missing {missing:?}");
    // Each Retry-After (1 s) held the request back.
    let paused = assert_retry_after_honoured(&requests, Duration::from_secs(1));
    let announced = requests.iter().filter(|r| r.fault.is_some_and(FaultKind::announces_retry_after)).count();
    assert_eq!(paused, announced);
    assert_eq!(app.fake.stalls_waited_out(), 0, "every stall was a client timeout");
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
    app.fake.set_faults(Faults { rate: 1.0, kinds: vec![FaultKind::Unavailable] });
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
    // The kinds run four at a time: most of their time is spent in pauses and stalls.
    let runs = FaultKind::ALL.map(|kind| async move {
        let setup = Setup {
            accounts: vec![("work", vec![("cal-1", 90), ("cal-2", 60)])],
            options: FakeOptions { page_size: 10, seed: 5, stall: STALL, ..FakeOptions::default() },
            ..Setup::default()
        };
        let app = spawn_app(setup).await;
        with_short_client_timeout(&app);
        app.fake.set_faults(Faults { rate: 0.25, kinds: vec![kind] });
        let report = app.catch_up_in_process().await;
        assert!(report.all_succeeded(), "{kind:?}: {report:?}");
        app.assert_store_equals_truth("work");
        let requests = app.requests();
        let injected = requests.iter().filter(|r| r.fault == Some(kind)).count();
        assert!(injected > 0, "{kind:?} was injected");
        assert_eq!(app.fake.stalls_waited_out(), 0, "{kind:?}: every stall was a client timeout");
        if kind.announces_retry_after() {
            assert_eq!(assert_retry_after_honoured(&requests, Duration::from_secs(1)), injected, "{kind:?}");
        }
    });
    futures_util::stream::iter(runs).buffer_unordered(4).collect::<Vec<()>>().await;
}

/// A pass whose retries run out on `endpoint`'s follow-up pages, for a calendar, the mailbox
/// and the address book alike.
async fn retries_run_out_on_follow_up_pages_of(endpoint: Endpoint) {
    const MAIL: &str = "{ days_within = 365, body = \"text\" }";
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 60)])],
        options: FakeOptions { page_size: 10, seed: 3, ..FakeOptions::default() },
        mail: Some((60, MAIL)),
        contacts: Some(60),
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let collections = [Collection::Calendar("cal-1".into()), Collection::Email, Collection::Contacts];
    // 25 updates and 25 deletions per collection: three pages of each stream.
    for collection in &collections {
        let ids: Vec<String> = app
            .fake
            .truth_json(&token, collection, None)
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        for id in &ids[..25] {
            assert!(app.fake.update(&token, collection, id));
        }
        for id in &ids[25..50] {
            assert!(app.fake.delete(&token, collection, id));
        }
    }
    app.fake.clear_requests();
    app.fake.set_fault_scope(FaultScope::FollowUpPages(endpoint));
    app.fake.set_faults(Faults::new(1.0, [FaultKind::Unavailable]));
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = crate::helpers::text(&out.stderr);
    let name = if endpoint == Endpoint::SyncUpdated { "sync_updated" } else { "sync_deleted" };
    for needle in ["cal-1", "email", "contacts", name, "transient", "503"] {
        assert!(stderr.contains(needle), "{needle:?} in the error: {stderr}");
    }

    // What the failed pass committed: per collection, the tokens of its last answered pages.
    let failed = app.requests();
    let stored = stored_tokens(&app);
    for collection in &collections {
        let answered = |stream: Endpoint| {
            failed
                .iter()
                .rfind(|r| r.endpoint == stream && r.status == 200 && r.collection.as_ref() == Some(collection))
        };
        let tokens = &stored[&scope(collection)];
        let updated = answered(Endpoint::SyncUpdated).expect("the updated stream got its first page");
        let committed = (updated.next_page_token.clone(), updated.next_delta_token.clone());
        if endpoint == Endpoint::SyncUpdated {
            assert!(committed.0.is_some(), "{collection:?}: the first page led on");
            assert_eq!(tokens.updated_page, committed.0, "{collection:?}: the first page's token was kept");
        } else {
            assert_eq!(tokens.updated_delta, committed.1, "{collection:?}: the drained stream's new delta token");
            let deleted = answered(Endpoint::SyncDeleted).expect("the deleted stream got its first page");
            assert!(deleted.next_page_token.is_some(), "{collection:?}: the first page led on");
            assert_eq!(tokens.deleted_page, deleted.next_page_token, "{collection:?}: the first page's token was kept");
        }
    }

    // The next run resumes from exactly the stored tokens and ends equal to the truth.
    app.fake.set_faults(Faults::none());
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    app.assert_collection_equals_truth("work", &Collection::Email, Some("text"));
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    let resumed = app.requests();
    assert!(resumed.iter().all(|r| r.endpoint != Endpoint::SyncStart), "nothing provisioned again");
    for collection in &collections {
        let tokens = &stored[&scope(collection)];
        let first = |stream: Endpoint| {
            let r = resumed.iter().find(|r| r.endpoint == stream && r.collection.as_ref() == Some(collection));
            r.map(|r| (r.delta_token.clone(), r.page_token.clone())).expect("the stream was asked")
        };
        let expect = |delta: &Option<String>, page: &Option<String>| match page {
            Some(page) => (None, Some(page.clone())),
            None => (delta.clone(), None),
        };
        assert_eq!(first(Endpoint::SyncUpdated), expect(&tokens.updated_delta, &tokens.updated_page), "{collection:?}");
        assert_eq!(first(Endpoint::SyncDeleted), expect(&tokens.deleted_delta, &tokens.deleted_page), "{collection:?}");
    }
}

/// The `collection_id` of a collection in `sync_state`.
fn scope(collection: &Collection) -> String {
    match collection {
        Collection::Calendar(id) | Collection::Tasks(id) => id.clone(),
        Collection::Email => "email".into(),
        Collection::Contacts => "contacts".into(),
    }
}

struct StoredTokens {
    updated_delta: Option<String>,
    updated_page: Option<String>,
    deleted_delta: Option<String>,
    deleted_page: Option<String>,
}

/// The stored tokens of every collection, by `collection_id`.
fn stored_tokens(app: &TestApp) -> std::collections::HashMap<String, StoredTokens> {
    let conn = rusqlite::Connection::open_with_flags(&app.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("store opens");
    let mut query = conn
        .prepare(
            "SELECT collection_id, updated_delta_token, updated_page_token, deleted_delta_token, deleted_page_token
             FROM sync_state",
        )
        .unwrap();
    query
        .query_map([], |r| {
            let tokens = StoredTokens {
                updated_delta: r.get(1)?,
                updated_page: r.get(2)?,
                deleted_delta: r.get(3)?,
                deleted_page: r.get(4)?,
            };
            Ok((r.get(0)?, tokens))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_on_updated_pages_fail_the_pass_keep_its_commits_and_resume_from_the_tokens() {
    retries_run_out_on_follow_up_pages_of(Endpoint::SyncUpdated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_on_deleted_pages_fail_the_pass_keep_its_commits_and_resume_from_the_tokens() {
    retries_run_out_on_follow_up_pages_of(Endpoint::SyncDeleted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_on_provisioning_fail_only_the_new_calendar_which_the_next_run_provisions() {
    let setup = Setup { accounts: vec![("work", vec![("cal-1", 40)])], ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.add_calendar(&token, "cal-2", "Calendar cal-2", false);
    app.fake.generate_events(&token, "cal-2", 30);
    app.fake.mutate_random(&token, 20);
    app.fake.clear_requests();
    app.fake.set_fault_scope(FaultScope::Endpoint(Endpoint::SyncStart));
    app.fake.set_faults(Faults::new(1.0, [FaultKind::Unavailable]));
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = crate::helpers::text(&out.stderr);
    for needle in ["cal-2", "sync_start", "transient", "503"] {
        assert!(stderr.contains(needle), "{needle:?} in the error: {stderr}");
    }
    assert!(!stderr.contains("cal-1:"), "cal-1 did not fail: {stderr}");
    // cal-1 caught up through its stored tokens meanwhile; cal-2 stored nothing.
    let stored = app.stored("work");
    let truth = app.truth("work");
    let of = |rows: &[(String, String, Option<String>)], id: &str| {
        rows.iter().filter(|r| r.0 == id).cloned().collect::<Vec<_>>()
    };
    assert_eq!(of(&stored, "cal-1"), of(&truth, "cal-1"));
    assert!(of(&stored, "cal-2").is_empty());
    let starts = app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart).count();
    assert_eq!(starts, 10, "every attempt (max_attempts = 10) went to the new calendar's provisioning");
    assert!(stored_tokens(&app).get("cal-2").is_none_or(|t| t.updated_delta.is_none()));

    app.fake.set_faults(Faults::none());
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let starts: Vec<_> = app.requests().into_iter().filter(|r| r.endpoint == Endpoint::SyncStart).collect();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].calendar_id.as_deref(), Some("cal-2"));
}
