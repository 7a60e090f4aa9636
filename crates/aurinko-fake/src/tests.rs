//! End-to-end tests over real HTTP on a loopback port.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use super::*;

pub(super) const TOKEN: &str = "secret-token-alice";
pub(super) const OTHER: &str = "secret-token-bob";

pub(super) struct Env {
    pub fake: FakeAurinko,
    pub server: FakeServer,
    pub http: reqwest::Client,
    pub base: String,
}

pub(super) async fn env(options: FakeOptions) -> Env {
    let fake = FakeAurinko::new(options);
    fake.add_account("alice", TOKEN);
    fake.add_calendar(TOKEN, "cal-1", "Work", true);
    fake.add_calendar(TOKEN, "cal-2", "Home", false);
    fake.add_account("bob", OTHER);
    fake.add_calendar(OTHER, "cal-b", "Bob", true);
    let server = fake.spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
    let base = server.base_url();
    Env { fake, server, http: crate::http_client::builder().build().unwrap(), base }
}

fn window() -> Vec<(&'static str, String)> {
    let now = Utc::now();
    let fmt = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
    vec![("timeMin", fmt(now - chrono::Duration::days(30))), ("timeMax", fmt(now + chrono::Duration::days(365)))]
}

impl Env {
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        query: &[(&str, String)],
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).query(query);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        let body = response.json::<Value>().await.expect("json body");
        (status, body)
    }

    pub(super) async fn get(&self, path: &str, query: &[(&str, String)]) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(TOKEN), query).await
    }

    async fn provision(&self, calendar: &str) -> (String, String) {
        let (status, body) =
            self.call(reqwest::Method::POST, &format!("/calendars/{calendar}/sync"), Some(TOKEN), &window()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ready"], true);
        (body["syncUpdatedToken"].as_str().unwrap().to_string(), body["syncDeletedToken"].as_str().unwrap().to_string())
    }

    /// Follows page tokens to the end; returns records, the next delta token and page count.
    async fn drain(&self, calendar: &str, stream: &str, delta: &str) -> (Vec<Value>, String, usize) {
        self.drain_root(&format!("/calendars/{calendar}"), stream, delta).await
    }

    /// Follows `{root}/sync/{stream}` page tokens to the end: records, next delta token, pages.
    pub(super) async fn drain_root(&self, root: &str, stream: &str, delta: &str) -> (Vec<Value>, String, usize) {
        let path = format!("{root}/sync/{stream}");
        let mut query = vec![("deltaToken", delta.to_string())];
        let mut records = Vec::new();
        let mut pages = 0;
        loop {
            let (status, body) = self.get(&path, &query).await;
            assert_eq!(status, 200, "{body}");
            pages += 1;
            let page = body["records"].as_array().unwrap();
            assert_eq!(body["length"].as_u64().unwrap() as usize, page.len());
            records.extend(page.iter().cloned());
            match body.get("nextPageToken").and_then(Value::as_str) {
                Some(next) => {
                    assert!(body.get("nextDeltaToken").is_none(), "delta token only on the last page");
                    query = vec![("pageToken", next.to_string())];
                }
                None => {
                    let delta = body["nextDeltaToken"].as_str().expect("nextDeltaToken on the last page");
                    return (records, delta.to_string(), pages);
                }
            }
        }
    }
}

pub(super) fn ids(records: &[Value]) -> BTreeSet<String> {
    records.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn truth_ids(fake: &FakeAurinko, calendar: &str) -> BTreeSet<String> {
    fake.truth(TOKEN).into_iter().filter(|e| e.calendar_id == calendar).map(|e| e.id).collect()
}

#[tokio::test]
async fn initial_pass_pages_through_every_event() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 250);
    let (updated, _) = env.provision("cal-1").await;
    let (records, _, pages) = env.drain("cal-1", "updated", &updated).await;
    assert_eq!(pages, 3);
    assert_eq!(records.len(), 250);
    assert_eq!(ids(&records), truth_ids(&env.fake, "cal-1"));

    // The same page token always yields the same page while nothing changed.
    let (_, first) = env.get("/calendars/cal-1/sync/updated", &[("deltaToken", updated.clone())]).await;
    let page_token = first["nextPageToken"].as_str().unwrap().to_string();
    let (_, a) = env.get("/calendars/cal-1/sync/updated", &[("pageToken", page_token.clone())]).await;
    let (_, b) = env.get("/calendars/cal-1/sync/updated", &[("pageToken", page_token)]).await;
    assert_eq!(a, b);
    env.server.shutdown().await;
}

#[tokio::test]
async fn delta_returns_exactly_the_changes() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 40);
    let (updated, deleted) = env.provision("cal-1").await;
    let (_, next_updated, _) = env.drain("cal-1", "updated", &updated).await;
    let (gone, next_deleted, _) = env.drain("cal-1", "deleted", &deleted).await;
    assert!(gone.is_empty());

    let truth = env.fake.truth(TOKEN);
    let changed = truth[3].id.clone();
    let removed = truth[5].id.clone();
    let old_etag = truth[3].etag.clone();
    assert!(env.fake.update_event(TOKEN, "cal-1", &changed));
    assert!(env.fake.delete_event(TOKEN, "cal-1", &removed));
    let created = env.fake.create_event(TOKEN, "cal-1");
    assert!(!env.fake.delete_event(TOKEN, "cal-1", &removed));

    let (records, after_updated, _) = env.drain("cal-1", "updated", &next_updated).await;
    assert_eq!(ids(&records), BTreeSet::from([changed.clone(), created.clone()]));
    let record = records.iter().find(|r| r["id"] == changed.as_str()).unwrap();
    assert_ne!(record["etag"].as_str().unwrap(), old_etag);
    let (tombstones, after_deleted, _) = env.drain("cal-1", "deleted", &next_deleted).await;
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0]["id"], removed.as_str());
    assert!(tombstones[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(tombstones[0].as_object().unwrap().len(), 2);

    // Nothing changed since: empty deltas.
    let (records, _, _) = env.drain("cal-1", "updated", &after_updated).await;
    assert!(records.is_empty());
    let (records, _, _) = env.drain("cal-1", "deleted", &after_deleted).await;
    assert!(records.is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn changes_during_paging_land_in_the_next_delta() {
    let env = env(FakeOptions { page_size: 10, ..FakeOptions::default() }).await;
    env.fake.generate_events(TOKEN, "cal-1", 30);
    let (updated, _) = env.provision("cal-1").await;
    let (_, first) = env.get("/calendars/cal-1/sync/updated", &[("deltaToken", updated)]).await;
    let first_ids = ids(first["records"].as_array().unwrap());
    let unseen: Vec<String> = truth_ids(&env.fake, "cal-1").difference(&first_ids).cloned().collect();
    let seen = first_ids.iter().next().unwrap().clone();
    env.fake.update_event(TOKEN, "cal-1", &seen);
    env.fake.update_event(TOKEN, "cal-1", &unseen[0]);
    let late = env.fake.create_event(TOKEN, "cal-1");

    let mut all = first_ids.clone();
    let mut query = vec![("pageToken", first["nextPageToken"].as_str().unwrap().to_string())];
    let delta = loop {
        let (status, body) = env.get("/calendars/cal-1/sync/updated", &query).await;
        assert_eq!(status, 200);
        all.extend(ids(body["records"].as_array().unwrap()));
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => query = vec![("pageToken", next.to_string())],
            None => break body["nextDeltaToken"].as_str().unwrap().to_string(),
        }
    };
    assert!(!all.contains(&unseen[0]) && !all.contains(&late));
    let (records, _, _) = env.drain("cal-1", "updated", &delta).await;
    assert_eq!(ids(&records), BTreeSet::from([seen, unseen[0].clone(), late]));
    all.extend(ids(&records));
    assert_eq!(all, truth_ids(&env.fake, "cal-1"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn window_filters_the_initial_pass() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 200);
    let now = Utc::now();
    let fmt = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, false);
    let query = [("timeMin", fmt(now)), ("timeMax", fmt(now + chrono::Duration::days(30)))];
    let (status, body) = env.call(reqwest::Method::POST, "/calendars/primary/sync", Some(TOKEN), &query).await;
    assert_eq!(status, 200);
    let (records, _, _) = env.drain("cal-1", "updated", body["syncUpdatedToken"].as_str().unwrap()).await;
    assert!(!records.is_empty() && records.len() < 200, "{}", records.len());
    env.server.shutdown().await;
}

#[tokio::test]
async fn token_errors() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 5);
    env.fake.generate_events(TOKEN, "cal-2", 5);
    let (updated, deleted) = env.provision("cal-1").await;
    let path = "/calendars/cal-1/sync/updated";
    let code = |body: &Value| body["code"].as_str().unwrap().to_string();

    let (status, body) = env.get(path, &[("deltaToken", "a8b7c6d5e4f3g2h1".into())]).await;
    assert_eq!((status, code(&body).as_str()), (400, "token.notValid"));
    assert!(body["requestId"].as_str().unwrap().len() == 36);
    let (status, body) = env.get(path, &[("pageToken", updated.clone())]).await;
    assert_eq!((status, code(&body).as_str()), (400, "token.notValid"));
    let (status, body) = env.get(path, &[("deltaToken", updated.clone()), ("pageToken", updated.clone())]).await;
    assert_eq!((status, code(&body).as_str()), (400, "badRequest"));
    let (status, body) = env.get(path, &[]).await;
    assert_eq!((status, code(&body).as_str()), (400, "badRequest"));
    // Another stream, another calendar, another account.
    let (status, body) = env.get(path, &[("deltaToken", deleted.clone())]).await;
    assert_eq!((status, code(&body).as_str()), (400, "token.notValid"));
    let (status, body) = env.get("/calendars/cal-2/sync/updated", &[("deltaToken", updated.clone())]).await;
    assert_eq!((status, code(&body).as_str()), (400, "token.notValid"));
    let (status, body) = env
        .call(reqwest::Method::GET, "/calendars/cal-b/sync/updated", Some(OTHER), &[("deltaToken", updated.clone())])
        .await;
    assert_eq!((status, code(&body).as_str()), (400, "token.notValid"));
    // The alias resolves to the same calendar, so the token is valid there.
    let (status, _) = env.get("/calendars/primary/sync/updated", &[("deltaToken", updated.clone())]).await;
    assert_eq!(status, 200);

    let (_, first) = env.get(path, &[("deltaToken", updated.clone())]).await;
    let next_delta = first["nextDeltaToken"].as_str().unwrap().to_string();
    env.fake.expire_tokens(TOKEN);
    for (param, token) in [("deltaToken", &updated), ("deltaToken", &next_delta)] {
        let (status, body) = env.get(path, &[(param, token.clone())]).await;
        assert_eq!(status, 410);
        assert_eq!(code(&body), "syncToken.expired");
        assert_eq!(body["message"], "syncToken expired.");
    }
    let (status, _) = env.get("/calendars/cal-1/sync/deleted", &[("deltaToken", deleted)]).await;
    assert_eq!(status, 410);
    // Bob's tokens are unaffected; a new provisioning works again.
    let (fresh, _) = env.provision("cal-1").await;
    let (records, _, _) = env.drain("cal-1", "updated", &fresh).await;
    assert_eq!(records.len(), 5);
    env.server.shutdown().await;
}

#[tokio::test]
async fn expired_page_token_is_410() {
    let env = env(FakeOptions { page_size: 2, ..FakeOptions::default() }).await;
    env.fake.generate_events(TOKEN, "cal-1", 5);
    let (updated, _) = env.provision("cal-1").await;
    let (_, first) = env.get("/calendars/cal-1/sync/updated", &[("deltaToken", updated)]).await;
    env.fake.expire_tokens(TOKEN);
    let page = first["nextPageToken"].as_str().unwrap().to_string();
    let (status, _) = env.get("/calendars/cal-1/sync/updated", &[("pageToken", page)]).await;
    assert_eq!(status, 410);
    env.server.shutdown().await;
}

#[tokio::test]
async fn authentication() {
    let env = env(FakeOptions::default()).await;
    let (status, body) = env.call(reqwest::Method::GET, "/calendars", None, &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = env.call(reqwest::Method::GET, "/calendars", Some("nope"), &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    env.fake.kill_token(TOKEN);
    let (status, body) = env.get("/calendars", &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token.dead")));
    let (status, _) = env.call(reqwest::Method::GET, "/calendars", Some(OTHER), &[]).await;
    assert_eq!(status, 200);

    let log = env.fake.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].account, None);
    assert_eq!(log[2].account.as_deref(), Some("alice"));
    assert_eq!(log[2].status, 401);
    assert!(log.iter().all(|r| !format!("{r:?}").contains("secret-token")));
    env.server.shutdown().await;
}

#[tokio::test]
async fn provisioning_polls_and_validation() {
    let env = env(FakeOptions { not_ready_polls: 2, ..FakeOptions::default() }).await;
    let post = |query: Vec<(&'static str, String)>, calendar: &'static str| {
        let env = &env;
        async move { env.call(reqwest::Method::POST, &format!("/calendars/{calendar}/sync"), Some(TOKEN), &query).await }
    };
    for _ in 0..2 {
        let (status, body) = post(window(), "cal-1").await;
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::json!({ "ready": false }));
    }
    let (_, body) = post(window(), "cal-1").await;
    assert_eq!(body["ready"], true);
    assert!(body["syncUpdatedToken"].is_string() && body["syncDeletedToken"].is_string());
    // A new provisioning goes through the polls again.
    let (_, body) = post(window(), "cal-1").await;
    assert_eq!(body["ready"], false);

    let w = window();
    let bad = [
        vec![w[0].clone()],
        vec![w[1].clone()],
        vec![("timeMin", w[1].1.clone()), ("timeMax", w[0].1.clone())],
        vec![("timeMin", "2025-01-01T00:00:00".to_string()), w[1].clone()],
        vec![("timeMin", "yesterday".to_string()), w[1].clone()],
        vec![w[0].clone(), w[0].clone(), w[1].clone()],
    ];
    for query in bad {
        let (status, body) = post(query.clone(), "cal-1").await;
        assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")), "{query:?}");
    }
    let (status, _) = post(window(), "nope").await;
    assert_eq!(status, 404);
    let (status, body) = env.get("/calendars/cal-1/sync", &[]).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("methodNotAllowed")));
    let (status, _) = env.get("/nothing/here", &[]).await;
    assert_eq!(status, 404);
    env.server.shutdown().await;
}

#[tokio::test]
async fn calendars_list_pages_and_removal() {
    let env = env(FakeOptions { page_size: 1, ..FakeOptions::default() }).await;
    let (status, first) = env.get("/calendars", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(first["length"], 1);
    let calendar = &first["records"][0];
    assert_eq!(calendar["id"], "cal-1");
    assert_eq!(calendar["primary"], true);
    for field in ["name", "color", "accessRole", "multipleRemindersSupported", "defaultReminders"] {
        assert!(calendar.get(field).is_some(), "{field}");
    }
    let next = first["nextPageToken"].as_str().unwrap().to_string();
    let (_, second) = env.get("/calendars", &[("pageToken", next)]).await;
    assert_eq!(second["records"][0]["id"], "cal-2");
    assert!(second.get("nextPageToken").is_none());
    let (status, body) = env.get("/calendars", &[("pageToken", "garbage".into())]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("token.notValid")));

    let (status, body) = env.get("/calendars/primary", &[]).await;
    assert_eq!((status, body["id"].as_str()), (200, Some("cal-1")));
    env.fake.remove_calendar(TOKEN, "cal-2");
    assert_eq!(env.fake.calendar_ids(TOKEN), vec!["cal-1".to_string()]);
    let (status, _) = env.get("/calendars/cal-2", &[]).await;
    assert_eq!(status, 404);
    let (status, _) = env.get("/calendars/cal-2/sync/updated", &[("deltaToken", "x".into())]).await;
    assert_eq!(status, 404);
    let (_, list) = env.get("/calendars", &[]).await;
    assert!(list.get("nextPageToken").is_none());
    let log = env.fake.requests();
    assert_eq!(log[0].endpoint, Endpoint::ListCalendars);
    assert!(log[0].next_page_token.is_some());
    let alias = log.iter().find(|r| r.path == "/v1/calendars/primary").unwrap();
    assert_eq!(alias.calendar_id.as_deref(), Some("cal-1"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn generated_records_are_varied() {
    let env = env(FakeOptions { page_size: 1000, seed: 7, ..FakeOptions::default() }).await;
    env.fake.generate_events(TOKEN, "cal-1", 600);
    let (updated, _) = env.provision("cal-1").await;
    let (records, _, _) = env.drain("cal-1", "updated", &updated).await;
    assert_eq!(records.len(), 600);
    let count = |f: &dyn Fn(&Value) -> bool| records.iter().filter(|r| f(r)).count();
    let all_day = count(&|r| r["start"].get("dateOnly").is_some());
    assert!((20..=120).contains(&all_day), "{all_day}");
    assert!(count(&|r| r.get("iCalUid").is_some()) > 100);
    assert!(count(&|r| r.get("iCalUId").is_some()) > 100);
    assert!(count(&|r| r.get("subject").is_none()) > 5);
    assert!(count(&|r| r.get("x-extra").is_some()) > 5);
    assert!(count(&|r| r["recurrenceType"] == "master") > 3);
    assert!(count(&|r| r["recurrenceType"] == "occurrence" && r["occurrenceInfo"]["masterId"].is_string()) > 3);
    assert!(count(&|r| r["id"].as_str().unwrap().len() > 100) > 50);
    for r in &records {
        for key in ["id", "etag", "calendarId", "createdTime", "lastModifiedTime", "start", "end", "organizer"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        for edge in ["start", "end"] {
            let e = &r[edge];
            assert!(e.get("dateOnly").is_some() != e.get("dateTime").is_some(), "{r}");
            if let Some(dt) = e.get("dateTime") {
                chrono::DateTime::parse_from_rfc3339(dt.as_str().unwrap()).unwrap();
            }
        }
    }
    // Same seed, same data.
    let again = FakeAurinko::new(FakeOptions { seed: 7, ..FakeOptions::default() });
    again.add_account("alice", "t");
    again.add_calendar("t", "cal-1", "Work", true);
    again.generate_events("t", "cal-1", 600);
    let a: Vec<_> = again.truth("t").into_iter().map(|e| (e.id, e.etag, e.subject)).collect();
    let b: Vec<_> = env
        .fake
        .truth(TOKEN)
        .into_iter()
        .filter(|e| e.calendar_id == "cal-1")
        .map(|e| (e.id, e.etag, e.subject))
        .collect();
    assert_eq!(a, b);
    env.server.shutdown().await;
}

fn only(kind: FaultKind) -> Faults {
    Faults::new(1.0, [kind])
}

#[tokio::test]
async fn truncated_body_is_invalid_json() {
    let env = env(FakeOptions::default()).await;
    env.fake.generate_events(TOKEN, "cal-1", 20);
    env.fake.set_faults(only(FaultKind::TruncatedBody));
    for path in ["/calendars", "/calendars/cal-1"] {
        let response = env.http.get(format!("{}{path}", env.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let length = response.content_length().unwrap();
        let bytes = response.bytes().await.unwrap();
        assert_eq!(length as usize, bytes.len());
        assert!(!bytes.is_empty());
        assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    }
    // A truncated POST /sync provisions nothing.
    env.fake.set_not_ready_polls(1);
    let response = env
        .http
        .post(format!("{}/calendars/cal-1/sync", env.base))
        .query(&window())
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).is_err());
    env.fake.set_faults(Faults::none());
    let (_, body) = env.call(reqwest::Method::POST, "/calendars/cal-1/sync", Some(TOKEN), &window()).await;
    assert_eq!(body["ready"], false);
    // The cut answers went out as 200 but are logged as no answer: a filter on 200 skips them.
    let statuses: Vec<_> = env.fake.requests().iter().map(|r| (r.fault, r.status)).collect();
    let cut = (Some(FaultKind::TruncatedBody), RequestRecord::NO_ANSWER);
    assert_eq!(statuses, [cut, cut, cut, (None, 200)]);
    env.server.shutdown().await;
}

#[tokio::test]
async fn reset_connection_is_a_transport_error() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_faults(only(FaultKind::ResetConnection));
    for _ in 0..3 {
        // hyper drops the connection before the head is flushed: `send` itself fails.
        let error = env
            .http
            .get(format!("{}/calendars", env.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect_err("transport error");
        assert!(error.is_request() && !error.is_status(), "{error:?}");
    }
    env.fake.set_faults(Faults::none());
    let (status, _) = env.get("/calendars", &[]).await;
    assert_eq!(status, 200);
    let statuses: Vec<_> = env.fake.requests().iter().map(|r| (r.fault, r.status)).collect();
    let reset = (Some(FaultKind::ResetConnection), RequestRecord::NO_ANSWER);
    assert_eq!(statuses, [reset, reset, reset, (None, 200)]);
    env.server.shutdown().await;
}

#[tokio::test]
async fn error_faults_and_rate_limit() {
    let env = env(FakeOptions::default()).await;
    let send = || env.http.get(format!("{}/calendars", env.base)).bearer_auth(TOKEN).send();

    env.fake.set_faults(only(FaultKind::InternalError));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_string() && body["message"].is_string() && body["requestId"].is_string());

    env.fake.set_faults(only(FaultKind::Unavailable));
    assert_eq!(send().await.unwrap().status(), 503);

    env.fake.set_faults(only(FaultKind::TooManyRequestsSeconds));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");

    env.fake.set_faults(only(FaultKind::TooManyRequestsDate));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 429);
    let at = httpdate::parse_http_date(response.headers()["retry-after"].to_str().unwrap()).unwrap();
    let ahead = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    assert!(ahead <= Duration::from_secs(2), "{ahead:?}");

    env.fake.set_faults(only(FaultKind::Latency));
    let started = Instant::now();
    assert_eq!(send().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    env.fake.set_faults(Faults::none());
    env.fake.set_rate_limit(Some(2));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let log = env.fake.requests();
    assert_eq!(log.len(), 8);
    assert_eq!(log[0].fault, Some(FaultKind::InternalError));
    assert_eq!(log[7].fault, None);
    env.server.shutdown().await;
}

#[tokio::test]
async fn gateway_timeout_and_retry_after_faults() {
    let options = FakeOptions { retry_after_secs: 3, stall: Duration::from_millis(1500), ..FakeOptions::default() };
    let env = env(options).await;
    let send = || env.http.get(format!("{}/calendars", env.base)).bearer_auth(TOKEN).send();

    for (kind, status, retry_after) in [
        (FaultKind::RequestTimeout, 408, Some("3")),
        (FaultKind::UnavailableRetryAfter, 503, Some("3")),
        (FaultKind::GatewayTimeout, 504, None),
    ] {
        env.fake.set_faults(only(kind));
        let response = send().await.unwrap();
        assert_eq!(response.status(), status, "{kind:?}");
        assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().unwrap()), retry_after, "{kind:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["code"].is_string() && body["requestId"].is_string(), "{kind:?}: {body}");
    }

    env.fake.set_faults(only(FaultKind::BadGateway));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert!(response.text().await.unwrap().contains("502 Bad Gateway"));

    // A stall outlasts a client's shorter timeout; a patient client gets a dropped connection.
    env.fake.set_faults(only(FaultKind::Stall));
    let request = env.http.get(format!("{}/calendars", env.base)).bearer_auth(TOKEN);
    let error = request.timeout(Duration::from_millis(200)).send().await.expect_err("timed out");
    assert!(error.is_timeout(), "{error:?}");
    let error = send().await.expect_err("dropped");
    assert!(!error.is_timeout() && !error.is_status(), "{error:?}");

    let log = env.fake.requests();
    let logged: Vec<_> = log.iter().map(|r| (r.fault.unwrap(), r.status)).collect();
    let stalled = (FaultKind::Stall, RequestRecord::NO_ANSWER);
    assert_eq!(
        logged,
        [
            (FaultKind::RequestTimeout, 408),
            (FaultKind::UnavailableRetryAfter, 503),
            (FaultKind::GatewayTimeout, 504),
            (FaultKind::BadGateway, 502),
            stalled,
            stalled
        ]
    );
    // The patient client waited out the whole stall, counted from its arrival; the one that
    // timed out hung up, which ended its stall early.
    assert!(log[5].at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(env.fake.stalls_waited_out(), 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_fault_scope_limits_faults_to_an_endpoint_or_its_follow_up_pages() {
    let env = env(FakeOptions { faults: only(FaultKind::InternalError), ..FakeOptions::default() }).await;
    env.fake.set_fault_scope(FaultScope::Endpoint(Endpoint::GetCalendar));
    assert_eq!(env.get("/calendars", &[]).await.0, 200);
    assert_eq!(env.get("/calendars/cal-1", &[]).await.0, 500);
    env.fake.set_fault_scope(FaultScope::FollowUpPages(Endpoint::ListCalendars));
    assert_eq!(env.get("/calendars/cal-1", &[]).await.0, 200);
    assert_eq!(env.get("/calendars", &[]).await.0, 200);
    assert_eq!(env.get("/calendars", &[("pageToken", "next".to_string())]).await.0, 500);
    env.server.shutdown().await;
}

#[tokio::test]
async fn faulted_provisioning_has_no_effect_and_faults_are_seeded() {
    let env =
        env(FakeOptions { not_ready_polls: 1, faults: only(FaultKind::InternalError), ..FakeOptions::default() }).await;
    let (status, _) = env.call(reqwest::Method::POST, "/calendars/cal-1/sync", Some(TOKEN), &window()).await;
    assert_eq!(status, 500);
    env.fake.set_faults(Faults::none());
    let (_, body) = env.call(reqwest::Method::POST, "/calendars/cal-1/sync", Some(TOKEN), &window()).await;
    assert_eq!(body["ready"], false);
    env.server.shutdown().await;

    let pattern = |seed, rate| {
        let fake = FakeAurinko::new(FakeOptions { seed, faults: Faults::new(rate, []), ..FakeOptions::default() });
        let mut shared = fake.shared.lock().unwrap();
        let faults = shared.options.faults.clone();
        let mut round = Vec::new();
        (0..48).map(|_| faults.choose(&mut shared.fault_rng, &mut round)).collect::<Vec<_>>()
    };
    assert_eq!(pattern(3, 0.5), pattern(3, 0.5));
    let faulted = pattern(3, 0.5).iter().filter(|f| f.is_some()).count();
    assert!((10..=40).contains(&faulted), "{faulted}");
    // Kinds come in rounds: every 12 faults hold each kind once, in a new order each round.
    let all = pattern(3, 1.0);
    let rounds: Vec<BTreeSet<String>> =
        all.chunks(FaultKind::ALL.len()).map(|c| c.iter().map(|k| format!("{:?}", k.unwrap())).collect()).collect();
    assert!(rounds.iter().all(|r| r.len() == FaultKind::ALL.len()), "{all:?}");
    assert_ne!(all[..12], all[12..24]);
}

#[tokio::test]
async fn demo_and_mutations() {
    let (fake, token) = FakeAurinko::demo(50, 3, 1);
    let calendars = fake.calendar_ids(&token);
    assert_eq!(calendars.len(), 3);
    assert_eq!(fake.truth(&token).len(), 150);
    let server = fake.spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let http = crate::http_client::builder().build().unwrap();
    // Calendar ids with '@' and '=' work percent-encoded in the path.
    let encoded = calendars[1].replace('@', "%40");
    let response =
        http.get(format!("{}/calendars/{encoded}", server.base_url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let before = fake.truth(&token);
    fake.mutate_random(&token, 30);
    let after = fake.truth(&token);
    assert_ne!(before, after);
    server.shutdown().await;
}
