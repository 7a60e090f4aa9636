//! Tolerant of what the spec does not promise: a last page without
//! `nextDeltaToken`, and a record whose body changed under the same etag.

use std::time::Duration;

use aurinko_fake::{Collection, Endpoint};
use aurinko_sync::model::{Kind, SyncState};
use aurinko_sync::store::{CollectionKey, Store};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app};
use crate::service::{get, parse_metrics};

fn state_of(app: &TestApp, calendar: &str) -> SyncState {
    let store = Store::open_read_only(&app.db_path).unwrap();
    store.load_state(&CollectionKey::calendar("work", calendar)).unwrap().expect("a stored state")
}

/// Last pages without `nextDeltaToken`: every pass still stores the
/// changes and catches up (exit 0) from the delta token it started from,
/// including a drain whose last page came by `pageToken`; once the server
/// sends delta tokens again, the cursor moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_pages_without_a_delta_token_keep_the_token_and_store_their_records() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let before = state_of(&app, "cal-1");
    app.fake.set_omit_next_delta_token(true);
    // More changes than a page holds: the drain's last page comes by pageToken.
    for _ in 0..40 {
        app.fake.create_event(&token, "cal-1");
    }
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
    let requests = app.requests();
    assert!(
        requests.iter().any(|r| r.page_token.is_some() && r.next_page_token.is_none() && r.next_delta_token.is_none()),
        "a follow-up page ended without tokens"
    );
    let after = state_of(&app, "cal-1");
    assert_eq!((&after.updated, &after.deleted), (&before.updated, &before.deleted), "the delta tokens stay");
    let stderr = crate::helpers::text(&out.stderr);
    assert!(stderr.contains("without nextDeltaToken"), "warned: {stderr}");

    // The next pass asks from the same delta token and changes nothing.
    app.fake.update_event(&token, "cal-2", &app.truth("work").iter().find(|t| t.0 == "cal-2").unwrap().1);
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let first = app.requests().into_iter().find(|r| r.calendar_id.as_deref() == Some("cal-1")).unwrap();
    assert_eq!(first.delta_token, before.updated.delta_token, "asked from the kept token");

    app.fake.set_omit_next_delta_token(false);
    assert_exit(&app.catch_up().await, 0);
    assert_ne!(state_of(&app, "cal-1").updated, before.updated, "the cursor moves on again");
    assert!(app.requests().iter().all(|r| r.endpoint != Endpoint::SyncStart), "never re-provisioned");
}

/// An event or a contact whose body changed while its etag stayed is
/// rewritten: the stored JSON equals what Aurinko serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_under_the_same_etag_is_rewritten() {
    let setup = Setup { accounts: vec![("work", vec![("cal-1", 30)])], contacts: Some(20), ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let event = app.truth("work")[3].1.clone();
    let contact = app.fake.truth_records(&token, &Collection::Contacts)[2].id.clone();
    assert!(app.fake.update_keeping_etag(&token, &Collection::Calendar("cal-1".into()), &event));
    assert!(app.fake.update_keeping_etag(&token, &Collection::Contacts, &contact));
    assert_exit(&app.catch_up().await, 0);
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    let store = Store::open_read_only(&app.db_path).unwrap();
    let stored = store.records("work", Kind::Calendar).unwrap().into_iter().find(|r| r.id == event).unwrap();
    let served = app.fake.truth_json(&token, &Collection::Calendar("cal-1".into()), None);
    let served = served.into_iter().find(|v| v["id"] == event.as_str()).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stored.raw).unwrap(), served);
    assert!(stored.raw.contains("same etag"), "the new subject is stored");
}

/// The daemon counts last pages without `nextDeltaToken` in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_counts_last_pages_without_a_delta_token() {
    let setup = Setup { sync_extra: "poll_interval_secs = 3600\n", server: true, ..Setup::default() };
    let app = spawn_app(setup).await;
    app.fake.set_omit_next_delta_token(true);
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    // Both streams of both calendars ended without a delta token.
    let mut counted = 0.0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let (200, text) = get(&app, "/metrics").await {
            counted = parse_metrics(&text)
                .iter()
                .filter(|(name, _, _)| name == "aurinko_sync_pages_without_delta_token_total")
                .map(|(_, _, value)| value)
                .sum();
            if counted >= 4.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 4.0);
}
