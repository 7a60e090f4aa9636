//! Email and contacts through the same engine: the calendar tests' mirror.

use std::time::Duration;

use aurinko_fake::{Collection, Endpoint, FakeOptions, Faults};

use crate::crash::{
    answers_to_a_commit, assert_no_committed_page_refetched, catch_up_from_stored_tokens, kill_repeatedly,
};
use crate::helpers::{Setup, TestApp, assert_exit, spawn_app};

const EMAIL: &str = "{ days_within = 365, body = \"text\" }";

fn setup(messages: usize, contacts: usize) -> Setup {
    Setup {
        accounts: vec![("work", vec![("cal-1", 60)])],
        mail: Some((messages, EMAIL)),
        contacts: Some(contacts),
        ..Setup::default()
    }
}

fn assert_all_equal_truth(app: &TestApp) {
    app.assert_store_equals_truth("work");
    app.assert_collection_equals_truth("work", &Collection::Email, Some("text"));
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
}

fn starts_for(app: &TestApp, collection: &Collection) -> usize {
    app.requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200 && r.collection.as_ref() == Some(collection))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_brings_mailbox_and_address_book_with_the_calendars() {
    let app = spawn_app(setup(140, 70)).await;
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert_all_equal_truth(&app);
    let stdout = crate::helpers::text(&out.stdout);
    assert!(stdout.contains("ok       work/email") && stdout.contains("ok       work/contacts"), "{stdout}");
    assert_eq!(starts_for(&app, &Collection::Email), 1);
    assert_eq!(starts_for(&app, &Collection::Contacts), 1);

    let state = app.state_json().await;
    let collections = state["collections"].as_array().unwrap();
    let email = collections.iter().find(|c| c["kind"] == "email").unwrap();
    assert_eq!(email["phase"], "idle");
    assert_eq!(email["records"], 140);
    assert!(email["window_min"].is_string(), "the email window is shown: {email}");
    let contacts = collections.iter().find(|c| c["kind"] == "contacts").unwrap();
    assert_eq!(contacts["records"], 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_changes_a_second_catch_up_fetches_only_deltas() {
    let app = spawn_app(setup(120, 60)).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.mutate_random_in(&token, &Collection::Email, 25);
    app.fake.mutate_random_in(&token, &Collection::Contacts, 15);
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert_all_equal_truth(&app);
    let requests = app.requests();
    assert!(requests.iter().all(|r| r.endpoint != Endpoint::SyncStart), "no new provisioning");
    let records: usize = requests.iter().filter(|r| r.collection.is_some()).map(|r| r.records).sum();
    assert!(records <= 40, "{records} records for 40 changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fifteen_percent_faults_mailbox_and_address_book_still_equal_the_truth() {
    let mut s = setup(300, 150);
    s.options = FakeOptions { page_size: 10, seed: 3, ..FakeOptions::default() };
    let app = spawn_app(s).await;
    app.fake.set_faults(Faults { rate: 0.15, kinds: vec![] });
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.mutate_random_in(&token, &Collection::Email, 30);
    app.fake.mutate_random_in(&token, &Collection::Contacts, 20);
    assert_exit(&app.catch_up().await, 0);
    assert_all_equal_truth(&app);
    assert!(app.requests().iter().any(|r| r.fault.is_some() && r.collection == Some(Collection::Email)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_long_mailbox_sync_loses_nothing_and_refetches_nothing() {
    let s = Setup {
        accounts: vec![("work", vec![])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(4), ..FakeOptions::default() },
        mail: Some((3000, EMAIL)),
        contacts: Some(1600),
        ..Setup::default()
    };
    let app = spawn_app(s).await;
    let kills = kill_repeatedly(&app, 4, answers_to_a_commit(2)).await;
    assert!(kills >= 3, "interrupted several times ({kills})");
    catch_up_from_stored_tokens(&app).await;
    app.assert_collection_equals_truth("work", &Collection::Email, Some("text"));
    app.assert_collection_equals_truth("work", &Collection::Contacts, None);
    assert_no_committed_page_refetched(&app.requests());
    assert_eq!(starts_for(&app, &Collection::Email), 1);
    assert_eq!(starts_for(&app, &Collection::Contacts), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_token_expiry_mailbox_and_address_book_are_reconciled() {
    let app = spawn_app(setup(100, 50)).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.expire_tokens(&token);
    let gone_mail: Vec<String> =
        app.fake.truth_records(&token, &Collection::Email).into_iter().take(6).map(|r| r.id).collect();
    let gone_contacts: Vec<String> =
        app.fake.truth_records(&token, &Collection::Contacts).into_iter().take(4).map(|r| r.id).collect();
    for id in &gone_mail {
        assert!(app.fake.delete(&token, &Collection::Email, id));
    }
    for id in &gone_contacts {
        assert!(app.fake.delete(&token, &Collection::Contacts, id));
    }
    app.fake.create(&token, &Collection::Contacts);
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert_all_equal_truth(&app);
    assert_eq!(starts_for(&app, &Collection::Email), 1, "the mailbox re-provisioned once");
    assert_eq!(starts_for(&app, &Collection::Contacts), 1, "the address book re-provisioned once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_within_limits_the_first_load_and_bodies_come_as_configured() {
    let s = Setup {
        accounts: vec![("work", vec![])],
        mail: Some((200, "{ days_within = 30, body = \"html\" }")),
        ..Setup::default()
    };
    let app = spawn_app(s).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let within: Vec<String> = app.fake.truth_records_within(&token, 30).into_iter().map(|r| r.id).collect();
    let all = app.fake.truth_records(&token, &Collection::Email).len();
    assert!(!within.is_empty() && within.len() < all, "the fake holds older mail too ({} of {all})", within.len());
    let store = aurinko_sync::store::Store::open_read_only(&app.db_path).unwrap();
    let stored = store.records("work", aurinko_sync::model::Kind::Email).unwrap();
    assert_eq!(stored.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), within);
    let start = app.requests().into_iter().find(|r| r.endpoint == Endpoint::SyncStart).unwrap();
    assert_eq!(start.path, "/v1/email/sync");
    let bodies: Vec<serde_json::Value> =
        stored.iter().map(|r| serde_json::from_str::<serde_json::Value>(&r.raw).unwrap()["body"].clone()).collect();
    assert!(bodies.iter().all(|b| b.as_str().is_some_and(|b| b.contains('<'))), "HTML bodies");
}

/// `(folder_id, folder name)` of every stored message, the name through the
/// `folders` table (`None` when the join finds no named folder).
fn message_folders(app: &TestApp) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT m.folder_id, f.name FROM messages m
             LEFT JOIN folders f ON f.account = m.account AND f.folder_id = m.folder_id AND f.removed_at IS NULL",
        )
        .unwrap();
    statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_catch_up_every_message_joins_to_a_named_folder() {
    // Pages of three, so the folder list comes in pages too.
    let setup = Setup { options: FakeOptions { page_size: 3, ..FakeOptions::default() }, ..setup(60, 0) };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let folders = message_folders(&app);
    assert_eq!(folders.len(), 60);
    assert!(folders.iter().all(|(_, name)| name.as_deref().is_some_and(|n| !n.is_empty())), "{folders:?}");
    let pages = app.requests().iter().filter(|r| r.endpoint == Endpoint::Folders && r.status == 200).count();
    assert_eq!(pages, 3, "seven folders in pages of three");
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let (role, parent): (String, String) = conn
        .query_row(
            "SELECT i.role, p.name FROM folders i, folders p
             WHERE i.folder_id = 'INBOX' AND p.folder_id = (SELECT parent_id FROM folders WHERE folder_id = 'Label_7712')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((role.as_str(), parent.as_str()), ("inbox", "Projects"), "the well-known role and the parent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_folder_list_does_not_fail_the_mail_sync() {
    let app = spawn_app(setup(40, 10)).await;
    app.fake.set_folders_failing(true);
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert_all_equal_truth(&app);
    assert!(crate::helpers::text(&out.stderr).contains("mail folder list failed"));
    assert!(message_folders(&app).iter().all(|(_, name)| name.is_none()), "no folders yet");
    // The account's discovery says so, until it works again.
    let discovery_error = |state: serde_json::Value| state["accounts"][0]["discovery_error"].clone();
    let error = discovery_error(app.state_json().await);
    assert!(error.as_str().is_some_and(|e| e.starts_with("folders: HTTP 500")), "{error}");
    // Once the list answers again, the next discovery fills it in.
    app.fake.set_folders_failing(false);
    assert_exit(&app.catch_up().await, 0);
    assert!(message_folders(&app).iter().all(|(_, name)| name.is_some()));
    assert!(discovery_error(app.state_json().await).is_null());
}
