//! Tasks through the same engine: the mail and contacts tests' mirror, and
//! task lists coming and going like calendars.

use std::time::Duration;

use aurinko_fake::{Collection, Endpoint, FakeOptions, Faults, RequestRecord};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::crash::{
    answers_to_a_commit, assert_no_committed_page_refetched, catch_up_from_stored_tokens, kill_repeatedly,
};
use crate::helpers::{Setup, TestApp, assert_exit, spawn_app};
use crate::webhooks::{pass_counts, pass_start, wait_for_passes};

/// A Google-shaped and a Graph-shaped task list id.
const LISTS: [&str; 2] = ["MTIzNDU2Nzg5MDEyMzQ1Njc4OTA6MDow", "AAMkADk0ZjU-Tasks_list/2="];

fn setup(tasks: usize, setting: &'static str) -> Setup {
    Setup {
        accounts: vec![("work", vec![("cal-1", 40)])],
        tasks: Some((vec![(LISTS[0], tasks), (LISTS[1], tasks / 2)], setting)),
        ..Setup::default()
    }
}

fn list(id: &str) -> Collection {
    Collection::Tasks(id.to_string())
}

fn assert_lists_equal_truth(app: &TestApp) {
    for id in app.fake.task_list_ids(app.token("work")) {
        app.assert_collection_equals_truth("work", &list(&id), None);
    }
}

fn starts(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests
        .iter()
        .filter(|r| {
            r.endpoint == Endpoint::SyncStart && r.status == 200 && matches!(r.collection, Some(Collection::Tasks(_)))
        })
        .collect()
}

/// The typed columns of `tasks`, as `(list, id, title, status, due, completed, parent_id)`.
type TypedRow = (String, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

fn typed_rows(app: &TestApp) -> Vec<TypedRow> {
    read_typed_rows(app).expect("the store has a tasks table")
}

/// `None` while the store or its tables do not exist yet.
fn read_typed_rows(app: &TestApp) -> Option<Vec<TypedRow>> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let db = rusqlite::Connection::open_with_flags(&app.db_path, flags).ok()?;
    let mut statement = db
        .prepare(
            "SELECT task_list_id, task_id, title, status, due, completed, parent_id FROM tasks
             WHERE account = 'work' ORDER BY task_list_id, task_id",
        )
        .ok()?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .ok()?;
    rows.collect::<Result<_, _>>().ok()
}

/// The typed columns the fake's records call for: instants in UTC with milliseconds.
fn expected_rows(app: &TestApp) -> Vec<TypedRow> {
    let token = app.token("work");
    let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|t| t.as_str()).map(str::to_string);
    let instant = |v: &serde_json::Value, key: &str| {
        text(v, key).map(|t| {
            DateTime::parse_from_rfc3339(&t).unwrap().with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Millis, true)
        })
    };
    let mut rows: Vec<TypedRow> = app
        .fake
        .task_list_ids(token)
        .into_iter()
        .flat_map(|id| {
            app.fake.truth_json(token, &list(&id), None).into_iter().map(move |t| {
                (
                    id.clone(),
                    text(&t, "id").unwrap(),
                    text(&t, "title"),
                    text(&t, "status"),
                    instant(&t, "due"),
                    instant(&t, "completed"),
                    text(&t, "parentId"),
                )
            })
        })
        .collect();
    rows.sort();
    rows
}

/// The stored tasks' etags, in the order of [`read_typed_rows`].
fn read_etags(app: &TestApp) -> Option<Vec<Option<String>>> {
    let db = rusqlite::Connection::open_with_flags(&app.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let mut statement =
        db.prepare("SELECT etag FROM tasks WHERE account = 'work' ORDER BY task_list_id, task_id").ok()?;
    let etags = statement.query_map([], |r| r.get(0)).ok()?;
    etags.collect::<Result<_, _>>().ok()
}

/// Whether the stored tasks are exactly the fake's, list by list, by id and
/// version; false while the store is not there yet.
fn tasks_match_truth(app: &TestApp) -> bool {
    let Some(rows) = read_typed_rows(app) else { return false };
    let token = app.token("work");
    let etags = read_etags(app);
    let Some(etags) = etags else { return false };
    let stored: Vec<(String, String, Option<String>)> =
        rows.into_iter().zip(etags).map(|(r, etag)| (r.0, r.1, etag)).collect();
    let mut truth: Vec<(String, String, Option<String>)> = app
        .fake
        .task_list_ids(token)
        .into_iter()
        .flat_map(|id| {
            app.fake.truth_records(token, &list(&id)).into_iter().map(move |t| (id.clone(), t.id, Some(t.version)))
        })
        .collect();
    truth.sort();
    stored == truth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_of_every_task_list_equals_the_truth_field_by_field() {
    let app = spawn_app(setup(160, "true")).await;
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert_lists_equal_truth(&app);
    app.assert_store_equals_truth("work");
    let rows = typed_rows(&app);
    assert_eq!(rows.len(), 240);
    assert_eq!(rows, expected_rows(&app), "typed columns");
    assert!(rows.iter().any(|r| r.6.is_some()) && rows.iter().any(|r| r.5.is_some()), "subtasks and completed tasks");

    let requests = app.requests();
    let starts = starts(&requests);
    assert_eq!(starts.len(), 2, "one provisioning per list");
    assert!(starts.iter().all(|r| r.start_params.is_empty()), "tasks = true sends no skipCompletedBeforeDate");
    assert!(starts.iter().any(|r| r.path == "/v1/tasklists/AAMkADk0ZjU-Tasks_list%2F2=/sync"), "ids are escaped");
    let stdout = crate::helpers::text(&out.stdout);
    assert!(stdout.contains(&format!("work/{}", LISTS[0])), "{stdout}");

    let state = app.state_json().await;
    let collections = state["collections"].as_array().unwrap();
    let tasks: Vec<_> = collections.iter().filter(|c| c["kind"] == "tasks").collect();
    assert_eq!(tasks.len(), 2);
    let first = tasks.iter().find(|c| c["id"] == LISTS[0]).unwrap();
    assert_eq!((first["phase"].as_str(), first["records"].as_i64()), (Some("idle"), Some(160)));
    assert_eq!(first["name"], format!("List {}", LISTS[0]));
    let table = crate::helpers::text(&app.run_binary(&["state"]).await.stdout);
    assert!(table.lines().any(|l| l.contains("tasks") && l.contains(LISTS[1]) && l.contains("80")), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_changes_a_second_catch_up_fetches_only_task_deltas() {
    let app = spawn_app(setup(120, "true")).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.mutate_random_in(&token, &list(LISTS[0]), 25);
    app.fake.mutate_random_in(&token, &list(LISTS[1]), 15);
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert_lists_equal_truth(&app);
    assert_eq!(typed_rows(&app), expected_rows(&app));
    let requests = app.requests();
    assert!(requests.iter().all(|r| r.endpoint != Endpoint::SyncStart), "no new provisioning");
    let records: usize =
        requests.iter().filter(|r| matches!(r.collection, Some(Collection::Tasks(_)))).map(|r| r.records).sum();
    assert!(records <= 40, "{records} task records for 40 changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fifteen_percent_faults_task_lists_still_equal_the_truth() {
    let mut s = setup(300, "true");
    s.options = FakeOptions { page_size: 10, seed: 5, ..FakeOptions::default() };
    let app = spawn_app(s).await;
    app.fake.set_faults(Faults { rate: 0.15, kinds: vec![] });
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.mutate_random_in(&token, &list(LISTS[0]), 30);
    app.fake.mutate_random_in(&token, &list(LISTS[1]), 20);
    assert_exit(&app.catch_up().await, 0);
    assert_lists_equal_truth(&app);
    let requests = app.requests();
    assert!(requests.iter().any(|r| r.fault.is_some() && matches!(r.collection, Some(Collection::Tasks(_)))));
    assert_eq!(starts(&requests).len(), 2, "faults cause no second provisioning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_long_task_sync_loses_nothing_and_refetches_nothing() {
    let s = Setup {
        accounts: vec![("work", vec![])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(4), ..FakeOptions::default() },
        tasks: Some((vec![(LISTS[0], 3000), (LISTS[1], 1400)], "true")),
        ..Setup::default()
    };
    let app = spawn_app(s).await;
    let kills = kill_repeatedly(&app, 4, answers_to_a_commit(2)).await;
    assert!(kills >= 3, "interrupted several times ({kills})");
    catch_up_from_stored_tokens(&app).await;
    assert_lists_equal_truth(&app);
    assert_no_committed_page_refetched(&app.requests());
    assert_eq!(starts(&app.requests()).len(), 2, "each list provisioned once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_token_expiry_task_lists_are_reconciled() {
    let app = spawn_app(setup(100, "true")).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.expire_tokens(&token);
    // Deletions made now are not in the new provisioning's deleted stream:
    // only the reconciling sweep can remove them.
    let gone: Vec<String> = app.fake.truth_records(&token, &list(LISTS[0])).into_iter().take(6).map(|r| r.id).collect();
    for id in &gone {
        assert!(app.fake.delete(&token, &list(LISTS[0]), id));
    }
    app.fake.create(&token, &list(LISTS[1]));
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 0);
    assert_lists_equal_truth(&app);
    assert!(typed_rows(&app).iter().all(|r| !gone.contains(&r.1)));
    let requests = app.requests();
    assert!(requests.iter().any(|r| r.status == 410 && matches!(r.collection, Some(Collection::Tasks(_)))));
    assert_eq!(starts(&requests).len(), 2, "each list re-provisioned once");
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().all(|r| r.status == 200 && r.endpoint != Endpoint::SyncStart));
}

/// Tasks gathered over years are not lost when the token expires: the new
/// provisioning (`completed_within_days = 90`) leaves out tasks completed
/// before its cutoff, and the sweep keeps them, even those deleted upstream
/// meanwhile (nothing can tell); open and recently completed tasks deleted
/// meanwhile go. `state` counts the tasks completed before the cutoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expiry_tasks_completed_before_the_cutoff_stay_and_deleted_open_ones_are_swept() {
    let app = spawn_app(setup(200, "true")).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let everything: Vec<(String, String)> = typed_rows(&app).into_iter().map(|r| (r.0, r.1)).collect();
    let completed_days_ago = |list: &str, id: &str| {
        let record = app.fake.truth_json(&token, &self::list(list), None).into_iter().find(|t| t["id"] == id)?;
        let at = DateTime::parse_from_rfc3339(record.get("completed")?.as_str()?).ok()?;
        Some((Utc::now() - at.with_timezone(&Utc)).num_days())
    };
    let pick = |test: &dyn Fn(Option<i64>) -> bool, n: usize| -> Vec<(String, String)> {
        everything.iter().filter(|(l, id)| test(completed_days_ago(l, id))).take(n).cloned().collect()
    };
    let old = pick(&|d| d.is_some_and(|d| d > 92), usize::MAX);
    let gone_old = pick(&|d| d.is_some_and(|d| d > 92), 3);
    let gone_open = pick(&|d| d.is_none(), 5);
    let gone_recent = pick(&|d| d.is_some_and(|d| d < 88), 2);
    assert!(old.len() > 10 && gone_recent.len() == 2, "{} old, {} recent", old.len(), gone_recent.len());

    app.edit_config("tasks = true", "tasks = { completed_within_days = 90 }");
    app.fake.expire_tokens(&token);
    for (l, id) in gone_old.iter().chain(&gone_open).chain(&gone_recent) {
        assert!(app.fake.delete(&token, &list(l), id));
    }
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert_eq!(starts(&app.requests()).len(), 2, "re-provisioned");

    let swept: Vec<&(String, String)> = gone_open.iter().chain(&gone_recent).collect();
    let expected: Vec<(String, String)> = everything.iter().filter(|t| !swept.contains(t)).cloned().collect();
    let stored: Vec<(String, String)> = typed_rows(&app).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(stored, expected, "tasks completed before the cutoff stay, deleted open and recent ones are swept");
    let state = app.state_json().await;
    for c in state["collections"].as_array().unwrap().iter().filter(|c| c["kind"] == "tasks") {
        let cutoff = DateTime::parse_from_rfc3339(c["window_min"].as_str().unwrap()).unwrap().with_timezone(&Utc);
        let before_cutoff = typed_rows(&app)
            .into_iter()
            .filter(|r| r.0 == c["id"].as_str().unwrap())
            .filter_map(|r| r.5)
            .filter(|at| DateTime::parse_from_rfc3339(at).unwrap() <= cutoff)
            .count();
        assert!(before_cutoff > 5, "{c}");
        assert_eq!(c["outside_window"], before_cutoff, "state counts the tasks completed before the cutoff");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_completed_before_date_is_sent_and_honoured() {
    let app = spawn_app(setup(300, "{ completed_within_days = 90 }")).await;
    let before = Utc::now();
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let requests = app.requests();
    let starts = starts(&requests);
    assert_eq!(starts.len(), 2);
    for start in &starts {
        let [(name, value)] = start.start_params.as_slice() else { panic!("{:?}", start.start_params) };
        assert_eq!(name, "skipCompletedBeforeDate");
        let sent = DateTime::parse_from_rfc3339(value).expect("RFC 3339").with_timezone(&Utc);
        // Sent in whole seconds: up to a second earlier than now - 90 days.
        let (days, second) = (chrono::Duration::days(90), chrono::Duration::seconds(1));
        assert!(sent >= before - days - second && sent <= Utc::now() - days, "{value} is now - 90 days");
        let Some(Collection::Tasks(id)) = &start.collection else { unreachable!() };
        let expected: Vec<String> = app.fake.truth_tasks_since(&token, id, sent).into_iter().map(|t| t.id).collect();
        let all = app.fake.truth_records(&token, &list(id)).len();
        assert!(expected.len() < all, "the fake holds tasks completed long ago ({} of {all})", expected.len());
        let stored: Vec<String> = typed_rows(&app).into_iter().filter(|r| &r.0 == id).map(|r| r.1).collect();
        assert_eq!(stored, expected, "{id}: the first load leaves out tasks completed before {value}");
    }
    let state = app.state_json().await;
    let tasks = state["collections"].as_array().unwrap().iter().find(|c| c["kind"] == "tasks").unwrap().clone();
    assert!(tasks["window_min"].is_string(), "the range is shown: {tasks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_lists_added_and_removed_upstream_are_picked_up_and_purged() {
    let app = spawn_app(setup(50, "true")).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.add_task_list(&token, "list-new", "New list", false);
    app.fake.generate(&token, &list("list-new"), 20);
    app.fake.remove_task_list(&token, LISTS[0]);
    assert_exit(&app.catch_up().await, 0);
    assert_lists_equal_truth(&app);
    let rows = typed_rows(&app);
    assert!(rows.iter().any(|r| r.0 == "list-new") && rows.iter().all(|r| r.0 != LISTS[0]));
    let state = app.state_json().await;
    let removed = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == LISTS[0]).unwrap().clone();
    assert_eq!((removed["phase"].as_str(), removed["records"].as_i64()), (Some("removed"), Some(0)));
    let db = rusqlite::Connection::open_with_flags(&app.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let removed_at: Option<String> =
        db.query_row("SELECT removed_at FROM task_lists WHERE task_list_id = ?1", [LISTS[0]], |r| r.get(0)).unwrap();
    assert!(removed_at.is_some(), "task_lists.removed_at is set");
    // The calendars and the other lists are untouched.
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_picks_up_new_task_lists_and_purges_removed_ones() {
    let mut s = setup(40, "true");
    s.sync_extra = "poll_interval_secs = 1\ndiscovery_interval_secs = 1\n";
    let app = spawn_app(s).await;
    let _daemon = app.spawn_daemon().await;
    let token = app.token("work").to_string();
    let stored = tasks_match_truth;
    app.wait_for(Duration::from_secs(20), "the first sync", || stored(&app)).await;
    app.fake.add_task_list(&token, "list-new", "New", false);
    app.fake.generate(&token, &list("list-new"), 25);
    app.wait_for(Duration::from_secs(30), "the new list", || {
        stored(&app) && typed_rows(&app).iter().any(|r| r.0 == "list-new")
    })
    .await;
    app.fake.remove_task_list(&token, LISTS[1]);
    app.wait_for(Duration::from_secs(30), "the purge", || {
        stored(&app) && typed_rows(&app).iter().all(|r| r.0 != LISTS[1])
    })
    .await;
    let purged = std::time::Instant::now();
    let state = app.state_json().await;
    let gone = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == LISTS[1]).unwrap().clone();
    assert_eq!(gone["phase"], "removed");
    // Its actor stopped: no pass of it starts after the purge, nor any
    // request once a pass under way then has ended. Counted in the other
    // list's polls (every second, as the removed one's were): once two of
    // them have ended, a pass under way at the purge has ended too; over
    // three more, a running actor would have polled.
    let path = "/v1/tasklists/AAMkADk0ZjU-Tasks_list%2F2=/";
    let removed_requests = || app.requests().iter().filter(|r| r.path.starts_with(path)).count();
    let other = list(LISTS[0]);
    let of_other = |r: &RequestRecord| r.collection.as_ref() == Some(&other);
    let seen = pass_counts(&app.requests(), of_other).0;
    wait_for_passes(&app, "two more polls of the other list", seen + 2, of_other).await;
    let before = removed_requests();
    wait_for_passes(&app, "three more polls of the other list", seen + 5, of_other).await;
    assert_eq!(removed_requests(), before, "requests for the removed list");
    let started_after =
        app.requests().into_iter().filter(|r| r.at > purged && r.path.starts_with(path) && pass_start(r));
    assert_eq!(started_after.count(), 0, "passes of the removed list started after its purge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_change_arrives_through_the_webhook_and_the_default_alias_is_understood() {
    let s = Setup {
        accounts: vec![("work", vec![])],
        tasks: Some((vec![(LISTS[0], 30), (LISTS[1], 10)], "true")),
        webhook: true,
        sync_extra: "poll_interval_secs = 3600\n",
        ..Setup::default()
    };
    let app = spawn_app(s).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || tasks_match_truth(&app)).await;
    assert_exit(&app.run_binary(&["subscribe"]).await, 0);
    let token = app.token("work").to_string();
    let mut resources: Vec<String> =
        app.fake.subscriptions(&token).iter().map(|s| s["resource"].as_str().unwrap().to_string()).collect();
    resources.sort();
    // The Graph-shaped id holds a `/`: the resource carries it as it is.
    assert_eq!(resources, vec![format!("/tasklists/{}/tasks", LISTS[1]), format!("/tasklists/{}/tasks", LISTS[0])]);

    let victim = app.fake.truth_records(&token, &list(LISTS[1]))[3].id.clone();
    assert!(app.fake.update(&token, &list(LISTS[1]), &victim));
    app.fake.create(&token, &list(LISTS[0]));
    app.wait_for(Duration::from_secs(30), "the webhook passes", || tasks_match_truth(&app)).await;

    // Aurinko may name the default list by its alias.
    app.fake.clear_requests();
    let body = serde_json::to_vec(&serde_json::json!({
        "subscription": 1,
        "resource": "/tasklists/default/tasks",
        "accountId": app.fake.account_id(&token).unwrap(),
        "payloads": [{"id": "x", "changeType": "updated"}],
    }))
    .unwrap();
    assert_eq!(crate::webhooks::post_signed(&app, Utc::now().timestamp(), body).await, 200);
    let default_list = list(LISTS[0]);
    app.wait_for(Duration::from_secs(30), "a pass of the default list, to its end", || {
        let (started, ended) = pass_counts(&app.requests(), |r| r.collection.as_ref() == Some(&default_list));
        started >= 1 && started == ended
    })
    .await;
    assert!(app.requests().iter().all(|r| r.collection != Some(list(LISTS[1]))), "only the default list synced");
}

/// A task list whose sync answers 404 but that `GET /tasklists/{id}` still
/// finds (the token may not sync it) keeps its tasks and fails clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_list_whose_sync_answers_404_but_that_still_exists_is_not_purged() {
    let app = spawn_app(setup(60, "true")).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let before = typed_rows(&app);
    app.fake.set_sync_not_found(&token, &list(LISTS[0]), true);
    app.fake.mutate_random_in(&token, &list(LISTS[0]), 5);
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let checked = app
        .requests()
        .iter()
        .any(|r| r.endpoint == Endpoint::GetTaskList && r.collection == Some(list(LISTS[0])) && r.status == 200);
    assert!(checked, "GET /tasklists/{{id}} was asked and answered 200");
    assert_eq!(typed_rows(&app), before, "nothing of the list was purged");
    let state = app.state_json().await;
    let c = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == LISTS[0]).unwrap().clone();
    assert_eq!((c["phase"].as_str(), c["last_error_class"].as_str()), (Some("idle"), Some("not_found")), "{c}");

    app.fake.set_sync_not_found(&token, &list(LISTS[0]), false);
    assert_exit(&app.catch_up().await, 0);
    assert_lists_equal_truth(&app);
}

/// Between two discoveries, the daemon's actor of a removed task list meets
/// a 404, `GET /tasklists/{id}` confirms it, and the list is purged then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_list_removed_between_discoveries_is_purged_once_its_404_is_confirmed() {
    let mut s = setup(40, "true");
    s.sync_extra = "poll_interval_secs = 1\ndiscovery_interval_secs = 3600\n";
    let app = spawn_app(s).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || tasks_match_truth(&app)).await;
    let token = app.token("work").to_string();
    app.fake.remove_task_list(&token, LISTS[0]);
    app.wait_for(Duration::from_secs(30), "the purge", || {
        read_typed_rows(&app).is_some_and(|rows| rows.iter().all(|r| r.0 != LISTS[0]))
    })
    .await;
    assert!(tasks_match_truth(&app));
    let requests = app.requests();
    assert!(requests.iter().all(|r| r.endpoint != Endpoint::ListTaskLists || r.status == 200));
    assert_eq!(requests.iter().filter(|r| r.endpoint == Endpoint::ListTaskLists).count(), 1, "no second discovery");
    let confirmed = requests
        .iter()
        .any(|r| r.endpoint == Endpoint::GetTaskList && r.collection == Some(list(LISTS[0])) && r.status == 404);
    assert!(confirmed, "the removal was confirmed with GET /tasklists/{{id}}");
    let state = app.state_json().await;
    let c = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == LISTS[0]).unwrap().clone();
    assert_eq!((c["phase"].as_str(), c["records"].as_i64()), (Some("removed"), Some(0)), "{c}");
}
