//! SIGKILL during a long first sync, several times, then a clean run.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aurinko_sync::fake::{Collection, Endpoint, FakeOptions, RequestRecord};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app};

/// A page is fetched while the one before it is written, and at most one
/// write is in flight: page T is committed before the request for the
/// token after next(T) is sent. So a successful request for token T after a
/// request for next(next(T)) would be a refetch of a committed page.
pub fn assert_no_committed_page_refetched(requests: &[RequestRecord]) {
    type Key = (Option<Collection>, Endpoint, String);
    let mut next_of: HashMap<Key, String> = HashMap::new();
    for r in requests.iter().filter(|r| r.status == 200) {
        let Some(token) = r.page_token.clone().or(r.delta_token.clone()) else { continue };
        // A delta token whose answer is itself (nothing changed since) may
        // be asked again by the next pass: that is a new question, not a
        // committed page fetched twice.
        if let Some(next) = r.next_page_token.clone().or(r.next_delta_token.clone()).filter(|n| *n != token) {
            next_of.insert((r.collection.clone(), r.endpoint, token), next);
        }
    }
    let after = |key: &Key| next_of.get(key).map(|next| (key.0.clone(), key.1, next.clone()));
    let mut requested: HashSet<Key> = HashSet::new();
    for r in requests {
        let Some(token) = r.page_token.clone().or(r.delta_token.clone()) else { continue };
        let key = (r.collection.clone(), r.endpoint, token);
        if r.status == 200
            && let Some(later) = after(&key).and_then(|next| after(&next))
        {
            assert!(!requested.contains(&later), "page {key:?} was fetched again after it was committed");
        }
        requested.insert(key);
    }
}

/// Starts `run --catch-up` `rounds` times and kills each with SIGKILL once
/// it has had `pages` more successful answers. Returns how many runs were
/// killed before they finished. `state` must work while each run writes.
pub async fn kill_repeatedly(app: &TestApp, rounds: usize, pages: usize) -> usize {
    let mut kills = 0;
    for _ in 0..rounds {
        let before = app.requests().iter().filter(|r| r.status == 200).count();
        let mut child = app.command(&["run", "--catch-up"]).spawn().expect("binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while app.requests().iter().filter(|r| r.status == 200).count() < before + pages {
            assert!(Instant::now() < deadline, "no progress");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if child.try_wait().unwrap().is_none() {
            let state = app.state_json().await;
            assert!(state["collections"].as_array().is_some_and(|c| !c.is_empty()), "{state}");
            child.kill().await.expect("SIGKILL");
            kills += 1;
        }
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_long_first_sync_loses_nothing_and_refetches_no_committed_page() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 900), ("cal-2", 900), ("cal-3", 600)])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(4), ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let kills = kill_repeatedly(&app, 4, 40).await;
    assert!(kills >= 3, "the sync was interrupted several times ({kills})");
    let stored_before = app.stored("work").len();
    assert!(stored_before > 0 && stored_before < app.truth("work").len(), "killed mid-way: {stored_before} stored");

    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let requests = app.requests();
    assert_no_committed_page_refetched(&requests);
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 3, "each calendar provisioned once, never again after a kill");
}
