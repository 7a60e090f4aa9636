//! The operator's commands `resync` and `reset`, and configured ranges
//! that change: each provisions again exactly what it says, and the store
//! ends equal to Aurinko's.

use std::collections::BTreeSet;
use std::time::Duration;

use aurinko_fake::{Collection, Endpoint, RequestRecord};
use aurinko_sync::model::{CollectionKey, Kind};
use aurinko_sync::store::Store;

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};

/// `(account, collection)` of each successful `POST .../sync`.
fn starts(requests: &[RequestRecord]) -> BTreeSet<(String, Collection)> {
    requests
        .iter()
        .filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200)
        .map(|r| (r.account.clone().unwrap_or_default(), r.collection.clone().expect("a collection")))
        .collect()
}

fn calendar(account: &str, id: &str) -> (String, Collection) {
    (account.to_string(), Collection::Calendar(id.to_string()))
}

async fn resync(app: &TestApp, args: &[&str]) -> String {
    let out = app.run_binary(&[&["resync"], args].concat()).await;
    assert_exit(&out, 0);
    text(&out.stdout)
}

/// `account  kind  id` lines a resync printed.
fn marked(stdout: &str) -> BTreeSet<String> {
    stdout.lines().filter(|l| l.starts_with("  ")).map(|l| l.trim().to_string()).collect()
}

fn set(lines: &[&str]) -> BTreeSet<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_of_one_calendar_provisions_only_it_and_sweeps_what_was_deleted_meanwhile() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let stdout = resync(&app, &["--collection", "cal-1"]).await;
    assert!(stdout.starts_with("marked 1 collection for resync"), "{stdout}");
    assert_eq!(marked(&stdout), set(&["work  calendar  cal-1"]));
    // Deleted now, these are in no delta stream the new provisioning
    // starts: only its sweep can remove them.
    let victims: Vec<String> =
        app.truth("work").iter().filter(|(cal, _, _)| cal == "cal-1").take(6).map(|t| t.1.clone()).collect();
    for id in &victims {
        assert!(app.fake.delete_event(&token, "cal-1", id));
    }
    let before = app.stored("work").len();
    app.fake.clear_requests();

    assert_exit(&app.catch_up().await, 0);
    assert_eq!(starts(&app.requests()), BTreeSet::from([calendar("work", "cal-1")]));
    app.assert_store_equals_truth("work");
    assert_eq!(app.stored("work").len(), before - victims.len(), "the deleted events swept, none twice");

    // The request was acted on once: the next pass is deltas only.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(starts(&app.requests()).is_empty(), "no second provisioning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_filters_mark_exactly_the_collections_they_name() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 10), ("cal-2", 10)]), ("home", vec![("cal-9", 10)])],
        contacts: Some(5),
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);

    let by_kind = marked(&resync(&app, &["--kind", "contacts"]).await);
    assert_eq!(by_kind, set(&["home  contacts  contacts", "work  contacts  contacts"]));
    let by_account = marked(&resync(&app, &["--account", "home", "--kind", "calendar"]).await);
    assert_eq!(by_account, set(&["home  calendar  cal-9"]));
    let by_id = marked(&resync(&app, &["--account", "work", "--collection", "cal-2"]).await);
    assert_eq!(by_id, set(&["work  calendar  cal-2"]));

    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let expected = BTreeSet::from([
        ("home".to_string(), Collection::Contacts),
        ("work".to_string(), Collection::Contacts),
        calendar("home", "cal-9"),
        calendar("work", "cal-2"),
    ]);
    assert_eq!(starts(&app.requests()), expected);

    // No filter: everything.
    assert_eq!(marked(&resync(&app, &[]).await).len(), 5);

    for (args, says) in [
        (&["--account", "nobody"][..], "no account nobody in the configuration"),
        (&["--collection", "cal-404"][..], "no synced collection matches --collection cal-404"),
        (&["--account", "home", "--collection", "cal-1"][..], "no synced collection matches --account home"),
        (&["--kind", "folders"][..], "invalid value 'folders'"),
    ] {
        let out = app.run_binary(&[&["resync"], args].concat()).await;
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

fn sync_states(app: &TestApp, account: &str) -> usize {
    Store::open_read_only(&app.db_path).unwrap().live_collections(account).unwrap().len()
}

fn rows(app: &TestApp, account: &str, kind: Kind) -> usize {
    Store::open_read_only(&app.db_path).unwrap().records(account, kind).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_exactly_that_accounts_data() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 30), ("cal-2", 20)]), ("home", vec![("cal-9", 25)])],
        contacts: Some(7),
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let home_before = app.stored_content("home");
    assert_eq!((rows(&app, "work", Kind::Contacts), rows(&app, "home", Kind::Contacts)), (7, 7));

    // Without --yes: what it would delete, nothing deleted, exit 2.
    let out = app.run_binary(&["reset", "--account", "work"]).await;
    assert_exit(&out, 2);
    assert!(text(&out.stdout).contains("events") && text(&out.stdout).contains("50 rows"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--yes"));
    assert_eq!(app.stored("work").len(), 50);

    let out = app.run_binary(&["reset", "--account", "work", "--yes"]).await;
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("still configured"), "{}", text(&out.stdout));
    assert!(app.stored("work").is_empty());
    assert_eq!(rows(&app, "work", Kind::Contacts), 0);
    assert_eq!(app.stored_content("home"), home_before, "the other account's data is untouched");
    assert_eq!(rows(&app, "home", Kind::Contacts), 7);

    // Still configured: the next pass syncs it afresh.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    let expected = BTreeSet::from([
        ("work".to_string(), Collection::Contacts),
        calendar("work", "cal-1"),
        calendar("work", "cal-2"),
    ]);
    assert_eq!(starts(&app.requests()), expected);
    app.assert_store_equals_truth("work");
    assert_eq!(rows(&app, "work", Kind::Contacts), 7);

    // No longer configured: nothing of it stays.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let home = config.find("[[accounts]]\nname = \"home\"").expect("home is the last account");
    std::fs::write(&app.config_path, &config[..home]).unwrap();
    let out = app.run_binary(&["reset", "--account", "home", "--yes"]).await;
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("not configured"), "{}", text(&out.stdout));
    assert_eq!((app.stored("home").len(), rows(&app, "home", Kind::Contacts), sync_states(&app, "home")), (0, 0, 0));
    assert_eq!(sync_states(&app, "work"), 3);
    app.assert_store_equals_truth("work");

    let out = app.run_binary(&["reset", "--account", "home", "--yes"]).await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("holds nothing of account home"), "{}", text(&out.stderr));
}

/// The `timeMin`/`timeMax` (or `daysWithin`) each provisioning asked for.
fn start_params(requests: &[RequestRecord], collection: &Collection, name: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200 && r.collection.as_ref() == Some(collection))
        .filter_map(|r| r.start_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .collect()
}

fn days_from_now(stamp: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(stamp).unwrap().with_timezone(&chrono::Utc);
    (t - chrono::Utc::now()).num_seconds() as f64 / 86_400.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_window_or_days_within_provisions_again_with_the_new_range_and_says_why_once() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 40), ("cal-2", 20)])],
        sync_extra: "window_past_days = 400\nwindow_future_days = 800\n",
        mail: Some((30, "{ days_within = 365 }")),
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);

    // Unchanged: deltas only.
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert!(starts(&app.requests()).is_empty(), "no provisioning without a change");
    assert!(!text(&out.stderr).contains("range changed"));

    app.edit_config("window_past_days = 400", "window_past_days = 30");
    app.edit_config("days_within = 365", "days_within = 60");
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    let requests = app.requests();
    let everything =
        BTreeSet::from([calendar("work", "cal-1"), calendar("work", "cal-2"), ("work".into(), Collection::Email)]);
    assert_eq!(starts(&requests), everything);
    for id in ["cal-1", "cal-2"] {
        let cal = Collection::Calendar(id.into());
        let (min, max) = (start_params(&requests, &cal, "timeMin"), start_params(&requests, &cal, "timeMax"));
        assert_eq!((min.len(), max.len()), (1, 1), "{id}: one provisioning");
        assert!((days_from_now(&min[0]) + 30.0).abs() < 0.1, "{id}: timeMin {} is 30 days back", min[0]);
        assert!((days_from_now(&max[0]) - 800.0).abs() < 0.1, "{id}: timeMax {} is 800 days ahead", max[0]);
        let stderr = text(&out.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("configured range changed") && l.contains(&format!("work/{id}")))
            .collect();
        assert_eq!(said.len(), 1, "{id}: one line says why:\n{}", text(&out.stderr));
        assert!(said[0].contains("400 days back, 800 days ahead -> 30 days back, 800 days ahead"), "{}", said[0]);
        assert!(said[0].contains("INFO") || said[0].contains("info"), "{}", said[0]);
    }
    assert_eq!(start_params(&requests, &Collection::Email, "daysWithin"), vec!["60".to_string()]);
    assert!(text(&out.stderr).contains("(365 days -> 60 days)"), "{}", text(&out.stderr));
    app.assert_store_equals_truth("work");

    // The new range is remembered: the next pass is deltas only, silently.
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert!(starts(&app.requests()).is_empty(), "no second provisioning");
    assert!(!text(&out.stderr).contains("range changed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_while_the_daemon_runs_takes_effect_on_its_next_pass() {
    let app = spawn_app(Setup { sync_extra: "poll_interval_secs = 1\n", ..Setup::default() }).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(30), "the first sync", || app.store_matches_truth("work")).await;
    // Passes after the first: the daemon starts them from the state it
    // kept in memory, which knows nothing of the request.
    app.wait_for(Duration::from_secs(30), "a second pass of cal-1", || {
        app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncUpdated && r.delta_token.is_some()).count() >= 2
    })
    .await;
    let token = app.token("work").to_string();
    let victim = app.truth("work").into_iter().find(|(cal, _, _)| cal == "cal-1").unwrap().1;
    assert!(app.fake.delete_event(&token, "cal-1", &victim));
    let skip = daemon.lines().len();
    app.fake.clear_requests();

    let stdout = resync(&app, &["--collection", "cal-1"]).await;
    assert_eq!(marked(&stdout), set(&["work  calendar  cal-1"]));
    daemon
        .wait_for_line(skip, Duration::from_secs(30), "the resync", |l| {
            l.contains("resync requested") && l.contains("work/cal-1")
        })
        .await;
    app.wait_for(Duration::from_secs(30), "the swept event", || app.store_matches_truth("work")).await;
    // Several more passes: the request was acted on once, for cal-1 only.
    app.wait_for(Duration::from_secs(30), "more passes", || {
        app.requests()
            .iter()
            .filter(|r| r.endpoint == Endpoint::SyncDeleted && r.calendar_id.as_deref() == Some("cal-1"))
            .count()
            >= 3
    })
    .await;
    assert_eq!(starts(&app.requests()), BTreeSet::from([calendar("work", "cal-1")]));
    let store = Store::open_read_only(&app.db_path).unwrap();
    let key = CollectionKey::calendar("work", "cal-1");
    assert_eq!(store.resync_requested(&key).unwrap(), store.load_state(&key).unwrap().unwrap().resync_handled);
}
