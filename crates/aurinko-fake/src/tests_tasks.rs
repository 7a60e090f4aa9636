//! Task lists and tasks over real HTTP: listing and paging, `skipCompletedBeforeDate`, record
//! shapes, deltas, tombstones, removal, expiry.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;

use super::tests::{Env, OTHER, TOKEN, env, ids};
use super::*;

const LIST: &str = "AAMkADk0ZjU-list_1=";
const TASK_KEYS: [&str; 16] = [
    "id",
    "etag",
    "title",
    "lastModifiedTime",
    "parentId",
    "position",
    "notes",
    "status",
    "importance",
    "due",
    "completed",
    "links",
    "startDateTime",
    "categories",
    "owner",
    "omitted",
];

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn root(list: &str) -> String {
    format!("/tasklists/{list}")
}

/// Every field is one the spec's `Task` lists, with the spec's types and enums.
fn assert_task_shape(t: &Value) {
    let object = t.as_object().unwrap();
    for key in object.keys() {
        assert!(TASK_KEYS.contains(&key.as_str()), "{key} is not a Task field: {t}");
    }
    for key in ["id", "etag", "lastModifiedTime", "status", "position"] {
        assert!(t[key].is_string(), "{key} in {t}");
    }
    for key in ["lastModifiedTime", "due", "completed", "startDateTime"] {
        if let Some(text) = t.get(key) {
            DateTime::parse_from_rfc3339(text.as_str().unwrap()).unwrap();
        }
    }
    let status = t["status"].as_str().unwrap();
    assert!(["notStarted", "inProgress", "completed", "waitingOnOthers", "deferred"].contains(&status), "{t}");
    assert_eq!(status == "completed", t.get("completed").is_some(), "completed iff stamped: {t}");
    if let Some(importance) = t.get("importance") {
        assert!(["low", "normal", "high"].contains(&importance.as_str().unwrap()), "{t}");
    }
    for link in t.get("links").and_then(Value::as_array).into_iter().flatten() {
        assert!(link.as_object().unwrap().keys().all(|k| ["source", "description", "link"].contains(&k.as_str())));
    }
    assert!(t.get("categories").is_none_or(|c| c.as_array().unwrap().iter().all(Value::is_string)));
    if let Some(omitted) = t.get("omitted") {
        assert_eq!(omitted, &serde_json::json!(["notes"]));
        assert!(t.get("notes").is_none());
    }
}

async fn env_with_tasks(page_size: usize, tasks: usize) -> Env {
    let env = env(FakeOptions { page_size, ..FakeOptions::default() }).await;
    env.fake.add_task_list(TOKEN, LIST, "Tâches ✓", true);
    env.fake.add_task_list(TOKEN, "second", "Errands", false);
    env.fake.generate(TOKEN, &Collection::Tasks(LIST.into()), tasks);
    env
}

#[tokio::test]
async fn task_lists_are_listed_paged_and_removed() {
    let env = env_with_tasks(1, 0).await;
    env.fake.add_task_list(OTHER, "bobs", "Bob's", true);
    let mut seen = Vec::new();
    let mut query = Vec::new();
    loop {
        let (status, body) = env.get("/tasklists", &query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["length"], 1);
        seen.extend(body["records"].as_array().unwrap().iter().cloned());
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => query = vec![("pageToken", next.to_string())],
            None => break,
        }
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["id"], LIST);
    assert_eq!(seen[0]["defaultList"], true);
    assert_eq!(seen[1]["defaultList"], false);
    for list in &seen {
        for key in ["id", "etag", "title", "lastModifiedTime"] {
            assert!(list[key].is_string(), "{key} in {list}");
        }
        for key in ["owner", "shared", "defaultList", "emailsList"] {
            assert!(list[key].is_boolean(), "{key} in {list}");
        }
    }
    let (status, one) = env.get(&root("second"), &[]).await;
    assert_eq!((status, &one), (200, &seen[1]));
    let (status, body) = env.get("/tasklists", &[("pageToken", "bogus".into())]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("token.notValid")));

    env.fake.remove_task_list(TOKEN, "second");
    assert_eq!(env.fake.task_list_ids(TOKEN), vec![LIST.to_string()]);
    for (method, path) in [
        (reqwest::Method::GET, root("second")),
        (reqwest::Method::POST, format!("{}/sync", root("second"))),
        (reqwest::Method::GET, format!("{}/sync/updated", root("second"))),
        (reqwest::Method::GET, root("bobs")),
        (reqwest::Method::GET, root("default")),
    ] {
        let (status, body) = env.call(method, &path, Some(TOKEN), &[("deltaToken", "x".into())]).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("notFound")), "{path}");
    }
    env.fake.add_task_list(TOKEN, "second", "Errands again", false);
    let (status, body) = env.get(&root("second"), &[]).await;
    assert_eq!((status, body["title"].as_str()), (200, Some("Errands again")));
    env.server.shutdown().await;
}

#[tokio::test]
async fn skip_completed_before_date_leaves_old_completed_tasks_out_of_the_first_load_only() {
    let env = env_with_tasks(40, 300).await;
    let collection = Collection::Tasks(LIST.into());
    let all = env.fake.truth_records(TOKEN, &collection);
    assert_eq!(all.len(), 300);

    // Without the parameter: every task, exactly as the truth serves them.
    let (updated, _) = env.start(&root(LIST), &[]).await;
    let (records, _, pages) = env.drain_root(&root(LIST), "updated", &updated).await;
    assert_eq!(pages, 8);
    let mut served = records.clone();
    served.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(served, env.fake.truth_json(TOKEN, &collection, None));
    records.iter().for_each(assert_task_shape);
    let count = |f: &dyn Fn(&Value) -> bool| records.iter().filter(|t| f(t)).count();
    let ids_served = ids(&records);
    assert!(count(&|t| t.get("parentId").is_some()) > 20, "subtasks");
    assert!(
        records.iter().filter_map(|t| t.get("parentId")).all(|p| ids_served.contains(p.as_str().unwrap())),
        "a subtask's parent is a task of the same list"
    );
    let cutoff = Utc::now() - Duration::days(90);
    let completed_before = |t: &Value| {
        t.get("completed").is_some_and(|c| DateTime::parse_from_rfc3339(c.as_str().unwrap()).unwrap() < cutoff)
    };
    assert!(count(&completed_before) > 30, "tasks completed long ago");
    assert!(count(&|t| t["status"] == "completed" && !completed_before(t)) > 3, "recently completed tasks");
    for status in ["notStarted", "inProgress", "waitingOnOthers", "deferred"] {
        assert!(count(&|t| t["status"] == status) > 5, "{status}");
    }
    assert!(count(&|t| t.get("due").is_some()) > 50);
    assert!(count(&|t| t.get("omitted").is_some()) > 0);

    // With it: completed tasks completed before the date are skipped, the rest served.
    let (updated, deleted) = env.start(&root(LIST), &[("skipCompletedBeforeDate", rfc3339(cutoff))]).await;
    let (records, next_updated, _) = env.drain_root(&root(LIST), "updated", &updated).await;
    let expected: BTreeSet<String> = all.iter().map(|t| t.id.clone()).collect::<BTreeSet<_>>();
    let skipped: BTreeSet<String> =
        served.iter().filter(|t| completed_before(t)).map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids(&records), expected.difference(&skipped).cloned().collect());
    let kept: BTreeSet<String> =
        env.fake.truth_tasks_since(TOKEN, LIST, cutoff).into_iter().map(|t| t.id).collect::<BTreeSet<_>>();
    assert_eq!(ids(&records), kept);

    // Later deltas report every change, old completed tasks included.
    let old = skipped.iter().next().unwrap().clone();
    let open = records.iter().find(|t| t["status"] != "completed").unwrap()["id"].as_str().unwrap().to_string();
    assert!(env.fake.update(TOKEN, &collection, &old));
    assert!(env.fake.update(TOKEN, &collection, &open));
    let removed = records.iter().map(|t| t["id"].as_str().unwrap().to_string()).find(|id| *id != open).unwrap();
    assert!(env.fake.delete(TOKEN, &collection, &removed));
    let created = env.fake.create(TOKEN, &collection);
    let (changes, _, _) = env.drain_root(&root(LIST), "updated", &next_updated).await;
    assert_eq!(ids(&changes), BTreeSet::from([old.clone(), open.clone(), created.clone()]));
    changes.iter().for_each(assert_task_shape);
    let reopened = changes.iter().find(|t| t["id"] == old.as_str()).unwrap();
    assert_ne!(reopened["status"], "completed", "an update reopens a completed task");
    let fresh = changes.iter().find(|t| t["id"] == created.as_str()).unwrap();
    assert_eq!(fresh["status"], "notStarted");
    assert!(fresh.get("createdTime").is_none(), "Task has no createdTime");
    let (tombstones, _, _) = env.drain_root(&root(LIST), "deleted", &deleted).await;
    assert_eq!(ids(&tombstones), BTreeSet::from([removed]));
    assert_eq!(tombstones[0].as_object().unwrap().len(), 2, "DeletedRecord is {{id, timestamp}}");

    let log = env.fake.requests();
    let starts: Vec<&RequestRecord> = log.iter().filter(|r| r.endpoint == Endpoint::SyncStart).collect();
    assert!(starts.iter().all(|r| r.collection == Some(collection.clone()) && r.calendar_id.is_none()));
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_bad_skip_completed_before_date_is_refused_and_tokens_expire_and_die() {
    let env = env_with_tasks(5, 12).await;
    let sync = format!("{}/sync", root(LIST));
    for bad in ["yesterday", "2026-01-01T00:00:00", "2026-01-01", ""] {
        let (status, body) = env.post(&sync, &[("skipCompletedBeforeDate", bad.to_string())]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")), "{bad:?}");
    }
    let (status, _) = env.post(&sync, &[("skipCompletedBeforeDate", "2026-01-01T00:00:00+02:00".into())]).await;
    assert_eq!(status, 200);

    let (updated, deleted) = env.start(&root(LIST), &[]).await;
    let (status, body) = env.get(&format!("{}/sync/updated", root("second")), &[("deltaToken", updated.clone())]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("token.notValid")), "tokens are bound to their list");
    env.fake.expire_tokens(TOKEN);
    for (stream, token) in [("updated", &updated), ("deleted", &deleted)] {
        let (status, body) = env.get(&format!("{}/sync/{stream}", root(LIST)), &[("deltaToken", token.clone())]).await;
        assert_eq!((status, body["code"].as_str()), (410, Some("syncToken.expired")), "{stream}");
    }
    let (updated, _) = env.start(&root(LIST), &[]).await;
    let (records, _, _) = env.drain_root(&root(LIST), "updated", &updated).await;
    assert_eq!(records.len(), 12);
    env.fake.kill_token(TOKEN);
    let (status, body) = env.get("/tasklists", &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token.dead")));
    env.server.shutdown().await;
}
