//! What a 404 means: a mailbox or an address book cannot be deleted, so a
//! 404 there is refused access and removes nothing; a calendar is removed
//! only when `GET /calendars/{id}` confirms it is gone.

use aurinko_fake::{Collection, Endpoint};
use aurinko_sync::model::Kind;
use aurinko_sync::store::Store;

use crate::helpers::{Setup, assert_exit, spawn_app, text};

fn count(app: &crate::helpers::TestApp, kind: Kind) -> usize {
    Store::open_read_only(&app.db_path).unwrap().records("work", kind).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_mail_or_contacts_sync_fails_clearly_and_keeps_the_rows() {
    let setup = Setup {
        accounts: vec![("work", vec![])],
        mail: Some((40, "{ days_within = 365 }")),
        contacts: Some(30),
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    for collection in [Collection::Email, Collection::Contacts] {
        app.fake.set_sync_not_found(&token, &collection, true);
    }
    // Deltas and a re-provisioning (after an expiry) both meet the 404.
    for expire in [false, true] {
        if expire {
            app.fake.expire_tokens(&token);
        }
        let out = app.catch_up().await;
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("404") && stderr.contains("scopes"), "a clear error: {stderr}");
        assert_eq!((count(&app, Kind::Email), count(&app, Kind::Contacts)), (40, 30), "the rows stay");
        let state = app.state_json().await;
        for c in state["collections"].as_array().unwrap() {
            assert_ne!(c["phase"], "removed", "{c}");
            assert_eq!(c["last_error_class"], "not_found", "{c}");
        }
    }
    for collection in [Collection::Email, Collection::Contacts] {
        app.fake.set_sync_not_found(&token, &collection, false);
    }
    assert_exit(&app.catch_up().await, 0);
    app.assert_collection_equals_truth("work", &Collection::Email, None);
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_whose_sync_answers_404_but_that_still_exists_is_not_purged() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let before = app.stored("work");
    app.fake.set_sync_not_found(&token, &Collection::Calendar("cal-2".into()), true);
    app.fake.mutate_random(&token, 5);
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cal-2") && stderr.contains("exists"), "a clear error: {stderr}");
    let checked = app
        .requests()
        .iter()
        .any(|r| r.endpoint == Endpoint::GetCalendar && r.calendar_id.as_deref() == Some("cal-2") && r.status == 200);
    assert!(checked, "GET /calendars/cal-2 was asked and answered 200");
    let cal_2 = |rows: &[(String, String, Option<String>)]| rows.iter().filter(|r| r.0 == "cal-2").count();
    assert_eq!(cal_2(&app.stored("work")), cal_2(&before), "nothing of cal-2 was purged");
    let state = app.state_json().await;
    let c = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-2").unwrap().clone();
    assert_eq!((c["phase"].as_str(), c["last_error_class"].as_str()), (Some("idle"), Some("not_found")), "{c}");

    app.fake.set_sync_not_found(&token, &Collection::Calendar("cal-2".into()), false);
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
}

/// A calendar named in the configuration that Aurinko removed: its sync
/// answers 404, `GET /calendars/{id}` confirms with another 404, and only
/// then is it marked removed and its events deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_calendar_confirmed_gone_is_marked_removed_and_purged() {
    let app = spawn_app(Setup::default()).await;
    app.edit_config(
        "token_env = \"TEST_TOKEN_WORK\"\n",
        "token_env = \"TEST_TOKEN_WORK\"\ncalendars = [\"cal-1\", \"cal-2\"]\n",
    );
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.remove_calendar(&token, "cal-2");
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let confirmed = app
        .requests()
        .iter()
        .any(|r| r.endpoint == Endpoint::GetCalendar && r.calendar_id.as_deref() == Some("cal-2") && r.status == 404);
    assert!(confirmed, "the removal was confirmed with GET /calendars/cal-2");
    assert!(app.stored("work").iter().all(|(cal, _, _)| cal == "cal-1"));
    app.assert_store_equals_truth("work");
    let state = app.state_json().await;
    let c = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-2").unwrap().clone();
    assert_eq!((c["phase"].as_str(), c["records"].as_i64()), (Some("removed"), Some(0)), "{c}");
}
