//! Expired tokens: re-provisioning and reconciliation.

use std::collections::BTreeSet;

use aurinko_fake::{Collection, Endpoint, ExpiredAnswer};
use aurinko_sync::model::Kind;
use aurinko_sync::sync::PERMANENT_FAILURES_BEFORE_REPROVISIONING;

use crate::helpers::{Setup, StoreKind, TestApp, assert_exit, spawn_app, spawn_app_on};

on_each_store!(
    after_token_expiry_with_deletions_between_the_store_is_reconciled,
    after_token_expiry_with_deletions_between_the_store_is_reconciled_on_postgresql,
    expiry_on
);

async fn expiry_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.expire_tokens(&token);
    // Deletions made now are not in the new provisioning's deleted stream:
    // only the reconciling sweep can remove them.
    let victims: Vec<String> =
        app.truth("work").iter().filter(|(cal, _, _)| cal == "cal-1").take(7).map(|t| t.1.clone()).collect();
    for id in &victims {
        assert!(app.fake.delete_event(&token, "cal-1", id));
    }
    app.fake.mutate_random(&token, 10);
    app.fake.clear_requests();

    let out = app.catch_up().await;
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
    assert!(app.stored("work").iter().all(|(_, id, _)| !victims.contains(id)));
    let requests = app.requests();
    assert!(requests.iter().any(|r| r.status == 410), "the old tokens were refused");
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 2, "each calendar re-provisioned once");
    let swept: u64 = crate::helpers::text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(", ").find(|p| p.ends_with(" swept")))
        .filter_map(|p| p.trim_end_matches(" swept").parse::<u64>().ok())
        .sum();
    assert!(swept >= victims.len() as u64, "the sweep removed the deleted events ({swept})");

    // The tokens stored after reconciling work: the next pass is deltas only.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().all(|r| r.status == 200 && r.endpoint != Endpoint::SyncStart));
}

fn stored_ids(app: &TestApp, kind: Kind) -> BTreeSet<String> {
    app.read_store(|store| store.records("work", kind)).unwrap().into_iter().map(|r| r.id).collect()
}

/// Mail gathered over months is not lost when the token expires: the new
/// provisioning (`daysWithin = 30`) returns only recent mail, and only mail
/// received after its cutoff is swept. Older mail stays, even mail deleted
/// upstream meanwhile (nothing can tell); recent mail deleted meanwhile goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expiry_mail_older_than_the_cutoff_stays_and_deleted_recent_mail_is_swept() {
    let setup =
        Setup { accounts: vec![("work", vec![])], mail: Some((160, "{ days_within = 365 }")), ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let everything = stored_ids(&app, Kind::Email);
    let recent: BTreeSet<String> = app.fake.truth_records_within(&token, 28).into_iter().map(|r| r.id).collect();
    let older: Vec<String> = everything.iter().filter(|id| !recent.contains(*id)).cloned().collect();
    let before_cutoff = everything.len() - app.fake.truth_records_within(&token, 30).len();
    assert!(recent.len() > 10 && older.len() > 10, "{} recent, {} older", recent.len(), older.len());

    app.edit_config("days_within = 365", "days_within = 30");
    app.fake.expire_tokens(&token);
    let gone_recent: Vec<String> = recent.iter().take(5).cloned().collect();
    let gone_older: Vec<String> = older.iter().take(3).cloned().collect();
    for id in gone_recent.iter().chain(&gone_older) {
        assert!(app.fake.delete(&token, &Collection::Email, id));
    }
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().any(|r| r.endpoint == Endpoint::SyncStart), "re-provisioned");

    let expected: BTreeSet<String> = everything.iter().filter(|id| !gone_recent.contains(*id)).cloned().collect();
    assert_eq!(stored_ids(&app, Kind::Email), expected, "older mail stays, deleted recent mail is swept");
    let state = app.state_json().await;
    let email = state["collections"].as_array().unwrap().iter().find(|c| c["kind"] == "email").unwrap().clone();
    assert_eq!(email["outside_window"], before_cutoff, "state counts the mail older than the cutoff");
}

/// Events outside the new window (history before it, and events far
/// ahead) stay after an expiry, even if deleted upstream meanwhile; events
/// inside it that were deleted meanwhile are swept. `state` counts the
/// events outside the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expiry_events_outside_the_window_stay_and_deleted_ones_inside_are_swept() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 60)])],
        sync_extra: "window_past_days = 400\nwindow_future_days = 800\n",
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let token = app.token("work").to_string();
    let now = chrono::Utc::now();
    let mut outside = Vec::new();
    for days in [-300, -120, -45, 500, 700] {
        let start = now + chrono::Duration::days(days);
        outside.push(app.fake.create_event_at(&token, "cal-1", start, start + chrono::Duration::hours(1)));
    }
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let everything: BTreeSet<String> = app.stored("work").into_iter().map(|e| e.1).collect();

    app.edit_config(
        "window_past_days = 400\nwindow_future_days = 800",
        "window_past_days = 30\nwindow_future_days = 365",
    );
    app.fake.expire_tokens(&token);
    let inside: Vec<String> = everything.iter().filter(|id| !outside.contains(id)).take(6).cloned().collect();
    for id in inside.iter().chain(&outside[..2]) {
        assert!(app.fake.delete_event(&token, "cal-1", id));
    }
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().any(|r| r.endpoint == Endpoint::SyncStart), "re-provisioned");

    let expected: BTreeSet<String> = everything.iter().filter(|id| !inside.contains(id)).cloned().collect();
    let stored: BTreeSet<String> = app.stored("work").into_iter().map(|e| e.1).collect();
    assert_eq!(stored, expected, "events outside the window stay, deleted ones inside are swept");
    let state = app.state_json().await;
    let cal = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-1").unwrap().clone();
    assert_eq!(cal["outside_window"], outside.len(), "state counts the events outside the window");
    let table = crate::helpers::text(&app.run_binary(&["state", "--wide"]).await.stdout);
    assert!(table.contains("OUTSIDE"), "{table}");
}

/// Contacts have no range: the new initial pass returns the whole address
/// book, so every contact it did not return is swept, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expiry_the_address_book_is_swept_whole() {
    let setup = Setup { accounts: vec![("work", vec![])], contacts: Some(60), ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.expire_tokens(&token);
    let gone: Vec<String> =
        app.fake.truth_records(&token, &Collection::Contacts).into_iter().step_by(7).map(|r| r.id).collect();
    for id in &gone {
        assert!(app.fake.delete(&token, &Collection::Contacts, id));
    }
    assert_exit(&app.catch_up().await, 0);
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    assert!(stored_ids(&app, Kind::Contacts).iter().all(|id| !gone.contains(id)));
    let state = app.state_json().await;
    let contacts = state["collections"].as_array().unwrap().iter().find(|c| c["kind"] == "contacts").unwrap().clone();
    assert!(contacts["outside_window"].is_null(), "no window, no rows outside it: {contacts}");
}

/// Aurinko may wrap the provider's error: a 400 whose `syncToken.expired`
/// sits deep inside `originalError` is an expired token all the same, so
/// the collection re-provisions and reconciles instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_marked_deep_inside_a_provider_error_reprovisions_and_reconciles() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.set_expired_answer(ExpiredAnswer::Nested);
    app.fake.expire_tokens(&token);
    let victims: Vec<String> = app.truth("work").iter().step_by(9).map(|t| t.1.clone()).collect();
    for id in &victims {
        let calendar = app.truth("work").into_iter().find(|t| &t.1 == id).unwrap().0;
        assert!(app.fake.delete_event(&token, &calendar, id));
    }
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let requests = app.requests();
    assert!(requests.iter().any(|r| r.status == 400), "the old tokens were refused with 400");
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 2, "each calendar re-provisioned once");
    let state = app.state_json().await;
    for c in state["collections"].as_array().unwrap() {
        assert_eq!(c["reprovision_reason"], "expired_token", "{c}");
    }
}

/// Tokens refused with a plain 400 (nothing says they expired) fail the
/// calendars as permanent; after three such passes in a row each calendar
/// gives its tokens up and provisions again, once, which `state` and the
/// log say; the new tokens work and the store is reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refused_as_permanent_three_passes_in_a_row_are_given_up_once() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.set_expired_answer(ExpiredAnswer::Unmarked);
    app.fake.expire_tokens(&token);
    let victim = app.truth("work")[0].clone();
    assert!(app.fake.delete_event(&token, &victim.0, &victim.1));
    app.fake.clear_requests();
    for pass in 1..=PERMANENT_FAILURES_BEFORE_REPROVISIONING {
        let out = app.catch_up().await;
        assert_exit(&out, 1);
        let state = app.state_json().await;
        for c in state["collections"].as_array().unwrap() {
            assert_eq!(
                (c["last_error_class"].as_str(), c["consecutive_failures"].as_u64()),
                (Some("permanent"), Some(pass.into())),
                "{c}"
            );
            assert!(c["reprovision_reason"].is_null(), "{c}");
        }
    }
    assert!(app.requests().iter().all(|r| r.endpoint != Endpoint::SyncStart), "no provisioning while counting");

    let out = app.catch_up().await;
    assert_exit(&out, 0);
    let stderr = crate::helpers::text(&out.stderr);
    assert!(stderr.contains("passes in a row") && stderr.contains("re-provisioning"), "logged: {stderr}");
    let starts = app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 2, "each calendar provisioned again once");
    app.assert_store_equals_truth("work");
    let state = app.state_json().await;
    for c in state["collections"].as_array().unwrap() {
        assert_eq!(c["reprovision_reason"], "permanent_failures", "{c}");
        assert!(c["reprovisioned_at"].is_string(), "{c}");
    }
    let table = crate::helpers::text(&app.run_binary(&["state", "--wide"]).await.stdout);
    assert!(table.contains("REPROVISIONED") && table.contains("permanent_failures"), "{table}");

    // Caught up: the next pass is deltas only.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().all(|r| r.endpoint != Endpoint::SyncStart));
}

/// When the new tokens are refused as well, the collection does not
/// provision again every few passes: once per run of failures, until a pass
/// catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_still_refused_after_giving_its_tokens_up_does_not_provision_again() {
    let setup = Setup { accounts: vec![("work", vec![])], contacts: Some(20), ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.set_delta_refused(&token, &Collection::Contacts, true);
    app.fake.clear_requests();
    let starts = |app: &TestApp| app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart).count();
    let mut starts_per_pass = Vec::new();
    for _ in 0..PERMANENT_FAILURES_BEFORE_REPROVISIONING + 4 {
        let before = starts(&app);
        assert_exit(&app.catch_up().await, 1);
        starts_per_pass.push(starts(&app) - before);
    }
    assert_eq!(starts_per_pass, [0, 0, 0, 1, 0, 0, 0], "provisioned again once, after the third failure");
    let state = app.state_json().await;
    let contacts = state["collections"].as_array().unwrap()[0].clone();
    assert_eq!(contacts["reprovision_reason"], "permanent_failures", "{contacts}");
    assert_eq!(contacts["last_error_class"], "permanent", "{contacts}");

    app.fake.set_delta_refused(&token, &Collection::Contacts, false);
    assert_exit(&app.catch_up().await, 0);
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    assert_eq!(starts(&app), 1, "the tokens of that one re-provisioning are used");
}
