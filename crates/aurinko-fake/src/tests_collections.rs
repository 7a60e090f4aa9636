//! Email and contacts sync over real HTTP: paging, deltas, tombstone shapes, `daysWithin`,
//! `bodyType`, token binding and expiry.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::tests::{Env, OTHER, TOKEN, env, ids};
use super::*;

const SYS_LABELS: [&str; 8] = ["junk", "trash", "sent", "inbox", "unread", "flagged", "important", "draft"];

impl Env {
    pub(super) async fn post(&self, path: &str, query: &[(&str, String)]) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(TOKEN), query).await
    }

    /// `POST {root}/sync` until ready; the two delta tokens.
    pub(super) async fn start(&self, root: &str, query: &[(&str, String)]) -> (String, String) {
        for _ in 0..10 {
            let (status, body) = self.post(&format!("{root}/sync"), query).await;
            assert_eq!(status, 200, "{body}");
            if body["ready"] == true {
                let token = |key: &str| body[key].as_str().unwrap().to_string();
                return (token("syncUpdatedToken"), token("syncDeletedToken"));
            }
            assert_eq!(body, serde_json::json!({ "ready": false }));
        }
        panic!("never ready");
    }
}

fn truth_ids(records: &[TruthRecord]) -> BTreeSet<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

fn omitted(record: &Value) -> Vec<&str> {
    record
        .get("omitted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

fn assert_message_shape(m: &Value) {
    for key in ["id", "folderId", "internetMessageId", "createdTime", "lastModifiedTime", "receivedAt", "sysLabels"] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    assert!(m.get("etag").is_none(), "messages have no etag: {m}");
    for key in ["createdTime", "lastModifiedTime", "receivedAt", "sentAt"] {
        if let Some(text) = m.get(key) {
            DateTime::parse_from_rfc3339(text.as_str().unwrap()).unwrap();
        }
    }
    for label in m["sysLabels"].as_array().unwrap() {
        assert!(SYS_LABELS.contains(&label.as_str().unwrap()), "{m}");
    }
    for list in ["to", "cc", "bcc", "replyTo"] {
        for address in m.get(list).and_then(Value::as_array).into_iter().flatten() {
            assert!(address["address"].as_str().unwrap().contains('@'));
        }
    }
    if let Some(from) = m.get("from") {
        assert!(from["address"].as_str().unwrap().contains('@'));
    }
    assert_eq!(m.get("threadId").is_none(), omitted(m).contains(&"threadId"), "{m}");
    for entry in omitted(m) {
        assert!(["threadId", "body", "attachments", "recipients", "internetHeaders"].contains(&entry), "{m}");
    }
}

#[tokio::test]
async fn email_pages_deltas_and_deleted_shape() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate(TOKEN, &Collection::Email, 250);
    let truth = env.fake.truth_records(TOKEN, &Collection::Email);
    assert_eq!(truth.len(), 250);
    assert!(truth.iter().all(|t| t.received_at.is_some()));

    let (updated, deleted) = env.start("/email", &[]).await;
    let (records, next_updated, pages) = env.drain_root("/email", "updated", &updated).await;
    assert_eq!(pages, 3);
    assert_eq!(ids(&records), truth_ids(&truth));
    for m in &records {
        assert_message_shape(m);
        assert!(m.get("body").is_none() && omitted(m).contains(&"body"), "{m}");
    }
    // Served records are exactly what the truth says they are.
    let mut served = records.clone();
    served.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(served, env.fake.truth_json(TOKEN, &Collection::Email, None));
    let (gone, next_deleted, _) = env.drain_root("/email", "deleted", &deleted).await;
    assert!(gone.is_empty());

    let changed = truth[3].id.clone();
    let removed = truth[5].id.clone();
    let removed_record = records.iter().find(|r| r["id"] == removed.as_str()).unwrap().clone();
    let old = records.iter().find(|r| r["id"] == changed.as_str()).unwrap().clone();
    assert!(env.fake.update(TOKEN, &Collection::Email, &changed));
    assert!(env.fake.delete(TOKEN, &Collection::Email, &removed));
    assert!(!env.fake.delete(TOKEN, &Collection::Email, &removed));
    assert!(!env.fake.update(TOKEN, &Collection::Email, &removed));
    let created = env.fake.create(TOKEN, &Collection::Email);
    assert!(!created.is_empty());

    let (records, _, _) = env.drain_root("/email", "updated", &next_updated).await;
    assert_eq!(ids(&records), BTreeSet::from([changed.clone(), created.clone()]));
    let new = records.iter().find(|r| r["id"] == changed.as_str()).unwrap();
    assert_ne!(new["sysLabels"], old["sysLabels"]);
    assert!(new["lastModifiedTime"].as_str().unwrap() > old["lastModifiedTime"].as_str().unwrap());
    let truth = env.fake.truth_records(TOKEN, &Collection::Email);
    let version = &truth.iter().find(|t| t.id == changed).unwrap().version;
    assert_eq!(new["lastModifiedTime"].as_str().unwrap(), version);
    let fresh = records.iter().find(|r| r["id"] == created.as_str()).unwrap();
    assert_message_shape(fresh);
    assert!(fresh["sysLabels"].as_array().unwrap().contains(&Value::from("unread")));

    let (tombstones, _, _) = env.drain_root("/email", "deleted", &next_deleted).await;
    assert_eq!(tombstones.len(), 1);
    let t = tombstones[0].as_object().unwrap();
    assert_eq!(
        t.keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([&"folderId".into(), &"id".into(), &"internetMessageId".into(), &"timestamp".into()])
    );
    assert_eq!(t["id"], removed.as_str());
    assert_eq!(t["folderId"], removed_record["folderId"]);
    assert_eq!(t["internetMessageId"], removed_record["internetMessageId"]);
    DateTime::parse_from_rfc3339(t["timestamp"].as_str().unwrap()).unwrap();

    let log = env.fake.requests();
    let page = log.iter().find(|r| r.path == "/v1/email/sync/updated").unwrap();
    assert_eq!(
        (page.endpoint, page.collection.clone(), page.calendar_id.clone()),
        (Endpoint::SyncUpdated, Some(Collection::Email), None)
    );
    assert!(log.iter().any(|r| r.endpoint == Endpoint::SyncStart && r.collection == Some(Collection::Email)));
    env.server.shutdown().await;
}

#[tokio::test]
async fn tokens_are_bound_to_their_collection() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 5);
    env.fake.generate(TOKEN, &Collection::Email, 5);
    env.fake.generate(TOKEN, &Collection::Contacts, 5);
    let window = [("timeMin", "2020-01-01T00:00:00Z".to_string()), ("timeMax", "2040-01-01T00:00:00Z".to_string())];
    let (calendar, _) = env.start("/calendars/cal-1", &window).await;
    let (email, email_deleted) = env.start("/email", &[]).await;
    let (contacts, _) = env.start("/contacts", &[]).await;
    for (path, token) in [
        ("/email/sync/updated", &calendar),
        ("/email/sync/updated", &contacts),
        ("/email/sync/updated", &email_deleted),
        ("/contacts/sync/updated", &email),
        ("/calendars/cal-1/sync/updated", &email),
    ] {
        let (status, body) = env.get(path, &[("deltaToken", token.clone())]).await;
        assert_eq!((status, code(&body)), (400, "token.notValid"), "{path}");
    }
    // Bob's mailbox is another collection.
    let (status, body) =
        env.call(reqwest::Method::GET, "/email/sync/updated", Some(OTHER), &[("deltaToken", email.clone())]).await;
    assert_eq!((status, code(&body)), (400, "token.notValid"));
    let (status, body) =
        env.get("/email/sync/updated", &[("deltaToken", email.clone()), ("pageToken", email.clone())]).await;
    assert_eq!((status, code(&body)), (400, "badRequest"));
    let (status, body) = env.get("/contacts/sync/deleted", &[]).await;
    assert_eq!((status, code(&body)), (400, "badRequest"));
    // Wrong methods and unknown neighbours.
    let (status, body) = env.get("/email/sync", &[]).await;
    assert_eq!((status, code(&body)), (405, "methodNotAllowed"));
    let (status, _) = env.post("/contacts/sync/updated", &[]).await;
    assert_eq!(status, 405);
    for path in ["/email", "/email/sync/other", "/contacts/sync/updated/x", "/email/messages"] {
        let (status, _) = env.get(path, &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    let log = env.fake.requests();
    let unknown = log.iter().find(|r| r.path == "/v1/email/messages").unwrap();
    assert_eq!((unknown.endpoint, unknown.collection.clone()), (Endpoint::Other, None));
    let calendar = log.iter().find(|r| r.path == "/v1/calendars/cal-1/sync").unwrap();
    assert_eq!(calendar.collection, Some(Collection::Calendar("cal-1".into())));
    env.server.shutdown().await;
}

#[tokio::test]
async fn days_within_filters_the_initial_pass_only() {
    let env = env(FakeOptions { page_size: 1000, ..FakeOptions::default() }).await;
    env.fake.generate(TOKEN, &Collection::Email, 300);
    let all = env.fake.truth_records(TOKEN, &Collection::Email);
    for days in [7u32, 30] {
        let (updated, _) = env.start("/email", &[("daysWithin", days.to_string())]).await;
        let (records, _, _) = env.drain_root("/email", "updated", &updated).await;
        let expected = env.fake.truth_records_within(TOKEN, days);
        assert!(!records.is_empty() && records.len() < 300, "{days}: {}", records.len());
        assert_eq!(ids(&records), truth_ids(&expected), "{days}");
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(days)) - chrono::Duration::minutes(1);
        for r in &records {
            assert!(DateTime::parse_from_rfc3339(r["receivedAt"].as_str().unwrap()).unwrap() > cutoff);
        }
    }
    let within_30 = env.fake.truth_records_within(TOKEN, 30).len();
    assert!((90..=210).contains(&within_30), "{within_30}");

    // After the initial pass, changes to old messages are reported too.
    let (updated, _) = env.start("/email", &[("daysWithin", "7".into())]).await;
    let (_, next, _) = env.drain_root("/email", "updated", &updated).await;
    let recent = truth_ids(&env.fake.truth_records_within(TOKEN, 7));
    let old = all.iter().find(|t| !recent.contains(&t.id)).unwrap().id.clone();
    env.fake.update(TOKEN, &Collection::Email, &old);
    let (records, _, _) = env.drain_root("/email", "updated", &next).await;
    assert_eq!(ids(&records), BTreeSet::from([old]));

    // Without daysWithin, everything.
    let (updated, _) = env.start("/email", &[]).await;
    let (records, _, _) = env.drain_root("/email", "updated", &updated).await;
    assert_eq!(records.len(), 300);

    for bad in ["0", "-3", "abc", "1.5", "99999999999"] {
        let (status, body) = env.post("/email/sync", &[("daysWithin", bad.to_string())]).await;
        assert_eq!((status, code(&body)), (400, "badRequest"), "{bad}");
    }
    let (status, _) = env.post("/email/sync", &[("daysWithin", "3".into()), ("daysWithin", "4".into())]).await;
    assert_eq!(status, 400);
    env.server.shutdown().await;
}

#[tokio::test]
async fn body_type_shapes_every_page_of_a_provisioning() {
    let env = env(FakeOptions { page_size: 7, not_ready_polls: 1, ..FakeOptions::default() }).await;
    env.fake.generate(TOKEN, &Collection::Email, 20);
    for body_type in ["html", "text"] {
        let (updated, _) = env.start("/email", &[("bodyType", body_type.to_string())]).await;
        let (records, next, pages) = env.drain_root("/email", "updated", &updated).await;
        assert_eq!((records.len(), pages), (20, 3));
        for m in &records {
            let body = m["body"].as_str().unwrap_or_else(|| panic!("no body in {m}"));
            assert_eq!(body.starts_with("<html>"), body_type == "html", "{body}");
            assert!(!omitted(m).contains(&"body"), "{m}");
            assert!(m["bodySnippet"].is_string());
        }
        let mut served = records.clone();
        served.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        assert_eq!(served, env.fake.truth_json(TOKEN, &Collection::Email, Some(body_type)));
        // Later deltas of the provisioning keep its bodyType.
        let id = env.fake.create(TOKEN, &Collection::Email);
        let (records, _, _) = env.drain_root("/email", "updated", &next).await;
        assert_eq!(ids(&records), BTreeSet::from([id.clone()]));
        assert_eq!(records[0]["body"].as_str().unwrap().starts_with("<html>"), body_type == "html");
        assert!(env.fake.delete(TOKEN, &Collection::Email, &id));
    }
    let (updated, _) = env.start("/email", &[("bodyType", String::new())]).await;
    let (records, _, _) = env.drain_root("/email", "updated", &updated).await;
    assert!(records.iter().all(|m| m.get("body").is_none() && omitted(m).contains(&"body")));
    for bad in ["HTML", "markdown", "plain"] {
        let (status, body) = env.post("/email/sync", &[("bodyType", bad.to_string())]).await;
        assert_eq!((status, code(&body)), (400, "badRequest"), "{bad}");
    }
    env.server.shutdown().await;
}

#[tokio::test]
async fn contacts_paging_updates_and_deletion() {
    let env = env(FakeOptions { page_size: 50, ..FakeOptions::default() }).await;
    env.fake.generate(TOKEN, &Collection::Contacts, 120);
    let truth = env.fake.truth_records(TOKEN, &Collection::Contacts);
    assert_eq!(truth.len(), 120);
    let (status, body) = env.post("/contacts/sync", &[]).await;
    assert_eq!(status, 200);
    let updated = body["syncUpdatedToken"].as_str().unwrap().to_string();
    let deleted = body["syncDeletedToken"].as_str().unwrap().to_string();
    let (records, next_updated, pages) = env.drain_root("/contacts", "updated", &updated).await;
    assert_eq!((records.len(), pages), (120, 3));
    assert_eq!(ids(&records), truth_ids(&truth));
    for c in &records {
        for key in ["id", "etag", "createdTime", "lastModifiedTime"] {
            assert!(c[key].is_string(), "{key} in {c}");
        }
        let version = &truth.iter().find(|t| c["id"] == t.id.as_str()).unwrap().version;
        assert_eq!(c["etag"].as_str().unwrap(), version);
        for e in c.get("emailAddresses").and_then(Value::as_array).into_iter().flatten() {
            let (local, domain) = e["address"].as_str().unwrap().split_once('@').unwrap();
            assert!(
                !local.is_empty() && !local.contains("..") && !local.starts_with('.') && domain.contains('.'),
                "{e}"
            );
        }
    }
    let count = |f: &dyn Fn(&Value) -> bool| records.iter().filter(|c| f(c)).count();
    assert!(count(&|c| c.get("name").is_none()) > 3);
    assert!(count(&|c| c.get("name").is_some_and(|n| n.as_object().unwrap().len() == 1)) > 3);
    assert!(count(&|c| c["name"]["givenName"].is_string()) > 30);
    assert!(count(&|c| c.get("phoneNumbers").is_some()) > 10);
    assert!(count(&|c| c.get("company").is_some()) > 10);
    assert!(count(&|c| c.get("emailAddresses").and_then(Value::as_array).is_some_and(|a| a.len() >= 2)) > 5);

    let (changed, removed) = (truth[0].id.clone(), truth[1].id.clone());
    assert!(env.fake.update(TOKEN, &Collection::Contacts, &changed));
    assert!(env.fake.delete(TOKEN, &Collection::Contacts, &removed));
    let (records, _, _) = env.drain_root("/contacts", "updated", &next_updated).await;
    assert_eq!(ids(&records), BTreeSet::from([changed.clone()]));
    assert_ne!(records[0]["etag"].as_str().unwrap(), truth[0].version);
    let now = env.fake.truth_records(TOKEN, &Collection::Contacts);
    assert_eq!(now.iter().find(|t| t.id == changed).unwrap().version, records[0]["etag"].as_str().unwrap());
    assert!(now.iter().all(|t| t.id != removed && t.received_at.is_none()));
    let (tombstones, _, _) = env.drain_root("/contacts", "deleted", &deleted).await;
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0]["id"], removed.as_str());
    assert_eq!(tombstones[0].as_object().unwrap().len(), 2, "DeletedRecord is {{id, timestamp}}");
    let log = env.fake.requests();
    assert!(
        log.iter().filter(|r| r.path.starts_with("/v1/contacts")).all(|r| r.collection == Some(Collection::Contacts))
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn expiry_death_and_readiness_cover_every_collection() {
    let env = env(FakeOptions { page_size: 2, ..FakeOptions::default() }).await;
    // Collections exist before anything is generated.
    let (updated, _) = env.start("/email", &[]).await;
    let (records, empty_next, _) = env.drain_root("/email", "updated", &updated).await;
    assert!(records.is_empty());
    env.fake.generate(TOKEN, &Collection::Email, 5);
    env.fake.generate(TOKEN, &Collection::Contacts, 5);
    let (records, _, _) = env.drain_root("/email", "updated", &empty_next).await;
    assert_eq!(records.len(), 5, "records generated after a drain arrive in the next delta");

    let (email, email_deleted) = env.start("/email", &[]).await;
    let (contacts, contacts_deleted) = env.start("/contacts", &[]).await;
    let (_, first) = env.get("/email/sync/updated", &[("deltaToken", email.clone())]).await;
    let email_page = first["nextPageToken"].as_str().unwrap().to_string();
    let (_, first) = env.get("/contacts/sync/updated", &[("deltaToken", contacts.clone())]).await;
    let contacts_page = first["nextPageToken"].as_str().unwrap().to_string();
    env.fake.expire_tokens(TOKEN);
    for (path, param, token) in [
        ("/email/sync/updated", "deltaToken", &email),
        ("/email/sync/updated", "pageToken", &email_page),
        ("/email/sync/deleted", "deltaToken", &email_deleted),
        ("/contacts/sync/updated", "deltaToken", &contacts),
        ("/contacts/sync/updated", "pageToken", &contacts_page),
        ("/contacts/sync/deleted", "deltaToken", &contacts_deleted),
    ] {
        let (status, body) = env.get(path, &[(param, token.clone())]).await;
        assert_eq!((status, code(&body)), (410, "syncToken.expired"), "{path} {param}");
        assert_eq!(body["message"], "syncToken expired.");
    }
    // Re-provisioning works; readiness is counted per collection.
    env.fake.set_not_ready_polls(1);
    let (status, body) = env.post("/email/sync", &[]).await;
    assert_eq!((status, body["ready"].as_bool()), (200, Some(false)));
    let (_, body) = env.post("/contacts/sync", &[]).await;
    assert_eq!(body["ready"], false);
    let (_, body) = env.post("/email/sync", &[]).await;
    assert_eq!(body["ready"], true);
    let (records, _, _) = env.drain_root("/email", "updated", body["syncUpdatedToken"].as_str().unwrap()).await;
    assert_eq!(records.len(), 5);

    env.fake.kill_token(TOKEN);
    for (method, path) in [(reqwest::Method::POST, "/email/sync"), (reqwest::Method::GET, "/contacts/sync/updated")] {
        let (status, body) = env.call(method, path, Some(TOKEN), &[("deltaToken", contacts.clone())]).await;
        assert_eq!((status, code(&body)), (401, "token.dead"));
    }
    let (status, body) = env.call(reqwest::Method::POST, "/email/sync", None, &[]).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn generated_messages_are_varied_and_seeded() {
    let env = env(FakeOptions { page_size: 1000, seed: 11, ..FakeOptions::default() }).await;
    env.fake.generate(TOKEN, &Collection::Email, 600);
    let (updated, _) = env.start("/email", &[("bodyType", "text".into())]).await;
    let (records, _, _) = env.drain_root("/email", "updated", &updated).await;
    assert_eq!(records.len(), 600);
    let count = |f: &dyn Fn(&Value) -> bool| records.iter().filter(|r| f(r)).count();
    let has_label = |r: &Value, l: &str| r["sysLabels"].as_array().unwrap().contains(&Value::from(l));
    assert!(count(&|r| r.get("threadId").is_none()) > 20);
    assert!(count(&|r| r.get("subject").is_none()) > 20);
    assert!(count(&|r| r.get("x-extra").is_some()) > 20);
    assert!(count(&|r| r["from"].get("name").is_none()) > 20);
    assert!(count(&|r| r.get("cc").is_some()) > 100);
    assert!(count(&|r| has_label(r, "unread")) > 50);
    assert!(count(&|r| has_label(r, "sent")) > 30);
    assert!(count(&|r| has_label(r, "flagged")) > 20);
    assert!(count(&|r| r["hasAttachments"] == true) > 50);
    assert!(count(&|r| r["subject"].as_str().is_some_and(|s| !s.is_ascii())) > 30);
    assert!(count(&|r| r["id"].as_str().unwrap().len() > 100) > 100);
    let folders: BTreeSet<&str> = records.iter().map(|r| r["folderId"].as_str().unwrap()).collect();
    assert!(folders.len() >= 5, "{folders:?}");
    records.iter().for_each(assert_message_shape);
    let old = count(&|r| {
        DateTime::parse_from_rfc3339(r["receivedAt"].as_str().unwrap()).unwrap()
            < Utc::now() - chrono::Duration::days(30)
    });
    assert!((200..=400).contains(&old), "{old}");

    let again = FakeAurinko::new(FakeOptions { seed: 11, ..FakeOptions::default() });
    again.add_account("alice", "t");
    again.generate("t", &Collection::Email, 600);
    assert_eq!(
        again.truth_json("t", &Collection::Email, Some("text")),
        env.fake.truth_json(TOKEN, &Collection::Email, Some("text"))
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn random_mutations_per_collection_and_demo() {
    let (fake, token) = FakeAurinko::demo(40, 2, 3);
    assert_eq!(fake.truth_records(&token, &Collection::Email).len(), 40);
    assert_eq!(fake.truth_records(&token, &Collection::Contacts).len(), 40);
    let events = fake.truth(&token);
    let email = fake.truth_records(&token, &Collection::Email);
    let contacts = fake.truth_records(&token, &Collection::Contacts);
    fake.mutate_random_in(&token, &Collection::Email, 20);
    assert_ne!(fake.truth_records(&token, &Collection::Email), email);
    assert_eq!(fake.truth_records(&token, &Collection::Contacts), contacts);
    assert_eq!(fake.truth(&token), events);
    fake.mutate_random_in(&token, &Collection::Contacts, 20);
    assert_ne!(fake.truth_records(&token, &Collection::Contacts), contacts);
    // The calendar-only mutations leave email and contacts alone.
    let (email, contacts) =
        (fake.truth_records(&token, &Collection::Email), fake.truth_records(&token, &Collection::Contacts));
    fake.mutate_random(&token, 20);
    assert_ne!(fake.truth(&token), events);
    assert_eq!(fake.truth_records(&token, &Collection::Email), email);
    assert_eq!(fake.truth_records(&token, &Collection::Contacts), contacts);
    // Calendars through the generic API, `primary` included.
    let primary = Collection::Calendar("primary".into());
    let first = fake.calendar_ids(&token)[0].clone();
    let id = fake.create(&token, &primary);
    let records = fake.truth_records(&token, &Collection::Calendar(first));
    assert!(records.iter().any(|r| r.id == id && r.received_at.is_none() && !r.version.is_empty()));
    assert!(fake.create(&token, &Collection::Calendar("nope".into())).is_empty());
    assert!(fake.truth_records("unknown", &Collection::Email).is_empty());
}
