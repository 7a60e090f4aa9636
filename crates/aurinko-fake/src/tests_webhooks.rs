//! `GET /v1/account`, subscriptions with the URL validation handshake, and signed notifications,
//! all over real HTTP against a tiny receiver on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::tests::{Env, OTHER, TOKEN, env};
use super::*;

const SECRET: &str = "app-signing-secret";

/// How the receiver answers the validation handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validation {
    Echo,
    Status500,
    WrongBody,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("notification body is JSON")
    }

    fn timestamp(&self) -> i64 {
        self.header("x-aurinko-request-timestamp").parse().expect("numeric timestamp")
    }

    /// Verifies `X-Aurinko-Signature` independently of the fake's own signing code.
    fn signed_with(&self, secret: &str) -> bool {
        let signature = self.header("x-aurinko-signature");
        if signature.len() != 64 || signature.chars().any(|c| c.is_ascii_uppercase()) {
            return false;
        }
        let Ok(expected) = hex::decode(signature) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b"v0:");
        mac.update(self.header("x-aurinko-request-timestamp").as_bytes());
        mac.update(b":");
        mac.update(&self.body);
        mac.verify_slice(&expected).is_ok()
    }
}

#[derive(Debug)]
struct ReceiverState {
    validation: Validation,
    notification_status: u16,
    validations: Vec<Hit>,
    notifications: Vec<Hit>,
}

#[derive(Clone)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    url: String,
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            validation: Validation::Echo,
            notification_status: 200,
            validations: Vec::new(),
            notifications: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(receive).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { state, url: format!("http://{addr}/aurinko/hook") }
    }

    fn set_validation(&self, validation: Validation) {
        self.state.lock().unwrap().validation = validation;
    }

    fn set_notification_status(&self, status: u16) {
        self.state.lock().unwrap().notification_status = status;
    }

    fn validations(&self) -> Vec<Hit> {
        self.state.lock().unwrap().validations.clone()
    }

    fn notifications(&self) -> Vec<Hit> {
        self.state.lock().unwrap().notifications.clone()
    }

    fn clear(&self) {
        let mut state = self.state.lock().unwrap();
        state.validations.clear();
        state.notifications.clear();
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let token = uri.query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("validationToken="));
    let token = token.map(str::to_string);
    let hit = Hit { uri, headers, body };
    let mut state = state.lock().unwrap();
    match token {
        Some(token) => {
            state.validations.push(hit);
            match state.validation {
                Validation::Echo => (StatusCode::OK, token),
                Validation::Status500 => (StatusCode::INTERNAL_SERVER_ERROR, token),
                Validation::WrongBody => (StatusCode::OK, "hello".to_string()),
            }
        }
        None => {
            state.notifications.push(hit);
            (StatusCode::from_u16(state.notification_status).unwrap(), String::new())
        }
    }
}

/// Status, `Content-Type` and body text of a raw request.
async fn raw(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, String) {
    let mut request = env.http.request(method, format!("{}{path}", env.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok()).map(str::to_string);
    (status, content_type, response.text().await.unwrap())
}

async fn subscribe(env: &Env, token: &str, resource: &str, url: &str) -> (u16, Value) {
    let body = json!({ "resource": resource, "notificationUrl": url });
    let (status, content_type, text) = raw(env, reqwest::Method::POST, "/subscriptions", Some(token), Some(body)).await;
    assert_eq!(content_type.as_deref(), Some("application/json"));
    (status, serde_json::from_str(&text).unwrap())
}

async fn subscribed(env: &Env, resource: &str, receiver: &Receiver) -> i64 {
    let (status, body) = subscribe(env, TOKEN, resource, &receiver.url).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_i64().unwrap()
}

async fn settle(fake: &FakeAurinko) {
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await, "deliveries did not finish");
}

#[tokio::test]
async fn account_endpoint_describes_the_account() {
    let env = env(FakeOptions::default()).await;
    let (status, body) = env.get("/account", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], 1000);
    assert_eq!(env.fake.account_id(TOKEN), Some(1000));
    assert_eq!(body["serviceType"], "Google");
    assert_eq!(body["tokenStatus"], "active");
    assert_eq!(body["active"], true);
    assert_eq!(body["email"], "alice@example.com");
    assert!(body["authScopes"].as_array().unwrap().contains(&json!("Calendar.Read")));
    for key in ["authExpiresAt", "createdAt", "tokenIssuedAt"] {
        chrono::DateTime::parse_from_rfc3339(body[key].as_str().unwrap()).unwrap();
    }
    let (_, again) = env.get("/account", &[("pingProvider", "true".to_string())]).await;
    assert_eq!(again["id"], body["id"]);

    let (status, bob) = env.call(reqwest::Method::GET, "/account", Some(OTHER), &[]).await;
    assert_eq!((status, bob["id"].as_i64()), (200, Some(1001)));
    assert_eq!(env.fake.account_id(OTHER), Some(1001));
    assert_eq!(env.fake.account_id("nobody"), None);

    let (status, error) = env.call(reqwest::Method::GET, "/account", None, &[]).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = env.get("/account", &[("pingProvider", "maybe".to_string())]).await;
    assert_eq!(status, 400);
    let (status, content_type, _) = raw(&env, reqwest::Method::POST, "/account", Some(TOKEN), None).await;
    assert_eq!((status, content_type.as_deref()), (405, Some("application/json")));
    env.fake.kill_token(OTHER);
    let (status, error) = env.call(reqwest::Method::GET, "/account", Some(OTHER), &[]).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("token.dead")));

    let logged: Vec<_> = env.fake.requests().into_iter().filter(|r| r.endpoint == Endpoint::Account).collect();
    assert_eq!(logged.len(), 7);
    assert_eq!(logged[0].account.as_deref(), Some("alice"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn creating_a_subscription_validates_the_url() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    let receiver = Receiver::start().await;
    let (status, body) = subscribe(&env, TOKEN, "/calendars/cal-1/events", &receiver.url).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_i64().unwrap();
    assert!(id > i64::from(i32::MAX), "ids are int64");
    assert_eq!(
        body,
        json!({
            "id": id,
            "resource": "/calendars/cal-1/events",
            "notificationUrl": receiver.url,
            "active": true,
            "disabledByBilling": false,
            "filters": [],
        })
    );
    let validations = receiver.validations();
    assert_eq!(validations.len(), 1);
    let hit = &validations[0];
    assert_eq!(hit.uri.path(), "/aurinko/hook");
    assert_eq!(hit.header("content-type"), "text/plain; charset=utf-8");
    assert!(hit.signed_with(SECRET), "the handshake is signed");
    assert!(receiver.notifications().is_empty());
    assert_eq!(env.fake.subscriptions(TOKEN), vec![body.clone()]);

    // Filters are echoed; unknown fields are ignored; the primary alias is a valid resource.
    let request = json!({
        "resource": "/calendars/primary/events",
        "notificationUrl": receiver.url,
        "filters": ["withoutDrafts"],
        "detailLevel": "status",
    });
    let (status, _, text) = raw(&env, reqwest::Method::POST, "/subscriptions", Some(TOKEN), Some(request)).await;
    assert_eq!(status, 200, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["filters"], json!(["withoutDrafts"]));
    assert_eq!(created["id"].as_i64(), Some(id + 1));

    let logged: Vec<_> = env.fake.requests().into_iter().filter(|r| r.endpoint == Endpoint::Subscriptions).collect();
    assert_eq!(logged.len(), 2);
    assert!(logged.iter().all(|r| r.method == "POST" && r.status == 200 && r.path == "/v1/subscriptions"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn failed_validation_creates_nothing() {
    let env = env(FakeOptions::default()).await;
    let receiver = Receiver::start().await;
    for mode in [Validation::Status500, Validation::WrongBody] {
        receiver.set_validation(mode);
        let (status, body) = subscribe(&env, TOKEN, "/email/messages", &receiver.url).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")), "{mode:?}: {body}");
    }
    assert_eq!(receiver.validations().len(), 2);

    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, body) = subscribe(&env, TOKEN, "/contacts", &format!("http://{closed}/hook")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")));

    // Rejected before any handshake.
    receiver.set_validation(Validation::Echo);
    receiver.clear();
    for resource in ["/calendars/cal-b/events", "/calendars/nope/events", "/email", "/calendars//events", "contacts"] {
        let (status, body) = subscribe(&env, TOKEN, resource, &receiver.url).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")), "{resource}");
    }
    let (status, _) = subscribe(&env, TOKEN, "/contacts", "ftp://example.com/x").await;
    assert_eq!(status, 400);
    let (status, _, _) = raw(
        &env,
        reqwest::Method::POST,
        "/subscriptions",
        Some(TOKEN),
        Some(json!({ "notificationUrl": receiver.url })),
    )
    .await;
    assert_eq!(status, 400);
    let response = env
        .http
        .post(format!("{}/subscriptions", env.base))
        .bearer_auth(TOKEN)
        .body(json!({ "resource": "/contacts", "notificationUrl": receiver.url }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let (status, _, _) = raw(&env, reqwest::Method::POST, "/subscriptions", None, Some(json!({}))).await;
    assert_eq!(status, 401);
    assert!(receiver.validations().is_empty());
    assert!(env.fake.subscriptions(TOKEN).is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn listing_pages_by_offset_and_hides_inactive_ones() {
    let env = env(FakeOptions::default()).await;
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for resource in ["/calendars/cal-1/events", "/calendars/cal-2/events", "/email/messages", "/contacts", "/contacts"]
    {
        ids.push(subscribed(&env, resource, &receiver).await);
    }
    assert!(env.fake.deactivate_subscription(TOKEN, ids[1]));
    assert!(!env.fake.deactivate_subscription(OTHER, ids[2]));

    let env = &env;
    let page = |query: Vec<(&'static str, &'static str)>| {
        let query: Vec<(&str, String)> = query.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        async move { env.get("/subscriptions", &query).await }
    };
    let (status, first) = page(vec![("limit", "2")]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["offset"].as_u64(), first["totalSize"].as_u64(), first["done"].as_bool()),
        (Some(0), Some(4), Some(false))
    );
    let record_ids = |page: &Value| -> Vec<i64> {
        page["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(record_ids(&first), vec![ids[0], ids[2]]);
    let (_, second) = page(vec![("limit", "2"), ("offset", "2")]).await;
    assert_eq!((second["offset"].as_u64(), second["done"].as_bool()), (Some(2), Some(true)));
    assert_eq!(record_ids(&second), vec![ids[3], ids[4]]);
    let (_, past) = page(vec![("offset", "9")]).await;
    assert_eq!((past["done"].as_bool(), record_ids(&past).len()), (Some(true), 0));
    let (_, all) = page(vec![("includeInactive", "true")]).await;
    assert_eq!((all["totalSize"].as_u64(), record_ids(&all)), (Some(5), ids.clone()));
    assert_eq!(all["records"][1]["active"], false);
    assert_eq!(env.fake.subscriptions(TOKEN).len(), 5);
    for bad in [("limit", "0"), ("limit", "x"), ("offset", "-1"), ("includeInactive", "yes")] {
        let (status, body) = page(vec![bad]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("badRequest")), "{bad:?}");
    }

    let (status, bob) = env.call(reqwest::Method::GET, "/subscriptions", Some(OTHER), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(bob, json!({ "offset": 0, "totalSize": 0, "done": true, "records": [] }));
}

#[tokio::test]
async fn get_and_delete_by_id() {
    let env = env(FakeOptions::default()).await;
    let receiver = Receiver::start().await;
    let id = subscribed(&env, "/contacts", &receiver).await;
    let path = format!("/subscriptions/{id}");
    let (status, body) = env.get(&path, &[]).await;
    assert_eq!((status, body["id"].as_i64(), body["resource"].as_str()), (200, Some(id), Some("/contacts")));

    let (status, body) = env.call(reqwest::Method::GET, &path, Some(OTHER), &[]).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("notFound")));
    let (status, _) = env.call(reqwest::Method::DELETE, &path, Some(OTHER), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = env.get("/subscriptions/not-a-number", &[]).await;
    assert_eq!(status, 404);
    let response = env.http.put(format!("{}{path}", env.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, DELETE");

    let (status, content_type, text) = raw(&env, reqwest::Method::DELETE, &path, Some(TOKEN), None).await;
    assert_eq!((status, content_type, text.as_str()), (200, None, ""));
    let (status, _) = env.get(&path, &[]).await;
    assert_eq!(status, 404);
    let (status, _) = env.call(reqwest::Method::DELETE, &path, Some(TOKEN), &[]).await;
    assert_eq!(status, 404);
    assert!(env.fake.subscriptions(TOKEN).is_empty());

    // A deleted subscription hears nothing.
    env.fake.generate(TOKEN, &Collection::Contacts, 3);
    settle(&env.fake).await;
    assert!(receiver.notifications().is_empty());

    let methods: Vec<String> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Subscriptions && r.account.as_deref() == Some("alice"))
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(methods, ["POST 200", "GET 200", "GET 404", "PUT 405", "DELETE 200", "GET 404", "DELETE 404"]);
    env.server.shutdown().await;
}

#[tokio::test]
async fn mutations_send_signed_notifications() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    let receiver = Receiver::start().await;
    let calendar = subscribed(&env, "/calendars/cal-1/events", &receiver).await;
    let mail = subscribed(&env, "/email/messages", &receiver).await;

    let created = env.fake.create_event(TOKEN, "cal-1");
    settle(&env.fake).await;
    assert!(env.fake.update_event(TOKEN, "cal-1", &created));
    settle(&env.fake).await;
    assert!(env.fake.delete_event(TOKEN, "cal-1", &created));
    settle(&env.fake).await;
    env.fake.create_event(TOKEN, "cal-2");
    // Bob has no subscriptions.
    assert!(!env.fake.create(OTHER, &Collection::Email).is_empty());
    env.fake.generate(OTHER, &Collection::Email, 2);
    let message = env.fake.create(TOKEN, &Collection::Email);
    settle(&env.fake).await;

    let hits = receiver.notifications();
    assert_eq!(hits.len(), 4);
    let now = chrono::Utc::now().timestamp();
    for hit in &hits {
        assert_eq!(hit.uri.path(), "/aurinko/hook");
        assert!(hit.uri.query().is_none());
        assert_eq!(hit.header("content-type"), "application/json");
        assert!((now - hit.timestamp()).abs() < 30);
        assert!(hit.signed_with(SECRET), "{:?}", hit.body);
        assert!(!hit.signed_with("another-secret"));
    }
    let change = |kind: &str, sub: i64, resource: &str, id: &str| {
        json!({
            "subscription": sub,
            "resource": resource,
            "accountId": 1000,
            "payloads": [{ "id": id, "changeType": kind }],
        })
    };
    let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();
    assert_eq!(
        bodies,
        vec![
            change("created", calendar, "/calendars/cal-1/events", &created),
            change("updated", calendar, "/calendars/cal-1/events", &created),
            change("deleted", calendar, "/calendars/cal-1/events", &created),
            change("created", mail, "/email/messages", &message),
        ]
    );
    let deliveries = env.fake.deliveries();
    assert_eq!(deliveries.len(), 4);
    assert!(deliveries.iter().all(|d| d.status == Some(200) && d.signature_ok && !d.duplicate && !d.stale));
    assert_eq!(deliveries[3].subscription, mail);
    assert_eq!(deliveries[3].resource, "/email/messages");
    assert_eq!(serde_json::from_str::<Value>(&deliveries[0].body).unwrap(), bodies[0]);

    // Batch mutations: one notification per changed record; inactive subscriptions hear nothing.
    receiver.clear();
    env.fake.mutate_random(TOKEN, 10);
    env.fake.mutate_random_in(TOKEN, &Collection::Email, 5);
    env.fake.deactivate_subscription(TOKEN, mail);
    env.fake.generate(TOKEN, &Collection::Email, 5);
    settle(&env.fake).await;
    let hits = receiver.notifications();
    let to_mail = hits.iter().filter(|hit| hit.json()["subscription"] == mail).count();
    assert_eq!(to_mail, 5);
    let to_calendar = hits.len() - to_mail;
    assert!((1..=10).contains(&to_calendar), "{to_calendar}");
    env.server.shutdown().await;
}

#[tokio::test]
async fn webhook_faults_bad_signature_stale_and_duplicates() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    let receiver = Receiver::start().await;
    subscribed(&env, "/contacts", &receiver).await;

    env.fake.set_webhook_faults(WebhookFaults { bad_signature: 1.0, ..WebhookFaults::default() });
    env.fake.create(TOKEN, &Collection::Contacts);
    settle(&env.fake).await;
    let hit = receiver.notifications().pop().unwrap();
    assert!(!hit.signed_with(SECRET));
    assert_eq!(hit.header("x-aurinko-signature").len(), 64, "still hex-shaped");
    assert!(!env.fake.deliveries()[0].signature_ok);

    receiver.clear();
    env.fake.clear_deliveries();
    env.fake.set_webhook_faults(WebhookFaults { stale_timestamp: 1.0, ..WebhookFaults::default() });
    env.fake.create(TOKEN, &Collection::Contacts);
    settle(&env.fake).await;
    let hit = receiver.notifications().pop().unwrap();
    assert!(hit.signed_with(SECRET));
    let age = chrono::Utc::now().timestamp() - hit.timestamp();
    assert!((3590..3700).contains(&age), "{age}");
    assert!(env.fake.deliveries()[0].stale && env.fake.deliveries()[0].signature_ok);

    receiver.clear();
    env.fake.clear_deliveries();
    env.fake.set_webhook_faults(WebhookFaults { duplicates: 2, ..WebhookFaults::default() });
    env.fake.create(TOKEN, &Collection::Contacts);
    settle(&env.fake).await;
    let hits = receiver.notifications();
    assert_eq!(hits.len(), 3);
    for hit in &hits[1..] {
        assert_eq!(hit.body, hits[0].body);
        assert_eq!(hit.header("x-aurinko-signature"), hits[0].header("x-aurinko-signature"));
        assert_eq!(hit.timestamp(), hits[0].timestamp());
        assert!(hit.signed_with(SECRET));
    }
    let flags: Vec<bool> = env.fake.deliveries().iter().map(|d| d.duplicate).collect();
    assert_eq!(flags, [false, true, true]);

    // Fractions roll per notification.
    receiver.clear();
    env.fake.set_webhook_faults(WebhookFaults { bad_signature: 0.5, ..WebhookFaults::default() });
    env.fake.generate(TOKEN, &Collection::Contacts, 40);
    settle(&env.fake).await;
    let bad = receiver.notifications().iter().filter(|hit| !hit.signed_with(SECRET)).count();
    assert!((5..=35).contains(&bad), "{bad}");
    env.server.shutdown().await;
}

/// What the receiver got, as (subscription, resource, first payload's id).
fn notified(receiver: &Receiver) -> Vec<(i64, String, String)> {
    receiver
        .notifications()
        .iter()
        .map(Hit::json)
        .map(|body| {
            let sub = body["subscription"].as_i64().unwrap();
            (sub, body["resource"].as_str().unwrap().to_string(), body["payloads"][0]["id"].as_str().unwrap().into())
        })
        .collect()
}

#[tokio::test]
async fn primary_alias_follows_the_primary_calendar() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    let receiver = Receiver::start().await;
    let primary = subscribed(&env, "/calendars/primary/events", &receiver).await;
    let by_id = subscribed(&env, "/calendars/cal-1/events", &receiver).await;

    let event = env.fake.create_event(TOKEN, "cal-1");
    env.fake.create_event(TOKEN, "cal-2");
    settle(&env.fake).await;
    let mut got = notified(&receiver);
    got.sort();
    assert_eq!(
        got,
        vec![
            (primary, "/calendars/primary/events".to_string(), event.clone()),
            (by_id, "/calendars/cal-1/events".to_string(), event.clone()),
        ]
    );

    // Changes through the alias itself, and after the primary moves to cal-2.
    receiver.clear();
    env.fake.update_event(TOKEN, "primary", &event);
    env.fake.add_calendar(TOKEN, "cal-2", "Home", true);
    let moved = env.fake.create_event(TOKEN, "cal-2");
    settle(&env.fake).await;
    let got: Vec<(i64, String)> = receiver
        .notifications()
        .iter()
        .map(Hit::json)
        .map(|body| (body["subscription"].as_i64().unwrap(), body["payloads"][0]["id"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got.contains(&(primary, event.clone())) && got.contains(&(by_id, event)));
    assert!(got.contains(&(primary, moved)));
    env.server.shutdown().await;
}

#[tokio::test]
async fn failing_receiver_marks_the_subscription_and_lifecycle_events() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    let receiver = Receiver::start().await;
    let id = subscribed(&env, "/contacts", &receiver).await;

    receiver.set_notification_status(500);
    env.fake.create(TOKEN, &Collection::Contacts);
    settle(&env.fake).await;
    assert_eq!(env.fake.deliveries()[0].status, Some(500));
    let (_, sub) = env.get(&format!("/subscriptions/{id}"), &[]).await;
    assert_eq!(sub["active"], true);
    chrono::DateTime::parse_from_rfc3339(sub["failSince"].as_str().unwrap()).unwrap();
    assert!(sub["failDescription"].as_str().unwrap().contains("500"));

    receiver.set_notification_status(200);
    env.fake.create(TOKEN, &Collection::Contacts);
    settle(&env.fake).await;
    let (_, sub) = env.get(&format!("/subscriptions/{id}"), &[]).await;
    assert_eq!((sub["failSince"].clone(), sub["failDescription"].clone()), (Value::Null, Value::Null));

    receiver.clear();
    assert_eq!(env.fake.send_lifecycle(TOKEN, id, "error").await, Some(200));
    let hit = receiver.notifications().pop().unwrap();
    assert!(hit.signed_with(SECRET));
    let body = hit.json();
    assert_eq!(body["lifecycleEvent"], "error");
    assert_eq!((body["subscription"].as_i64(), body["accountId"].as_i64()), (Some(id), Some(1000)));
    assert_eq!(body["resource"], "/contacts");
    assert!(body["error"].is_string());
    assert!(body.get("payloads").is_none());
    assert!(env.fake.subscriptions(TOKEN)[0]["failSince"].is_string());

    assert_eq!(env.fake.send_lifecycle(TOKEN, id, "active").await, Some(200));
    let body = receiver.notifications().pop().unwrap().json();
    assert_eq!(body["lifecycleEvent"], "active");
    assert!(body.get("error").is_none());
    assert!(env.fake.subscriptions(TOKEN)[0]["failSince"].is_null());
    assert_eq!(env.fake.send_lifecycle(OTHER, id, "active").await, None);
    env.server.shutdown().await;
}

#[test]
fn mutations_outside_a_runtime_send_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (env, receiver) = runtime.block_on(async {
        let env = env(FakeOptions::default()).await;
        let receiver = Receiver::start().await;
        subscribed(&env, "/contacts", &receiver).await;
        (env, receiver)
    });
    env.fake.generate(TOKEN, &Collection::Contacts, 3);
    runtime.block_on(async {
        settle(&env.fake).await;
        // Later changes inside the runtime are notified; the earlier ones are not replayed.
        env.fake.create(TOKEN, &Collection::Contacts);
        settle(&env.fake).await;
        assert_eq!(receiver.notifications().len(), 1);
        env.server.shutdown().await;
    });
}

#[tokio::test]
async fn task_list_resources_notify_and_the_default_alias_follows_the_default_list() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_signing_secret(SECRET);
    env.fake.add_task_list(TOKEN, "list-1", "Tasks", true);
    env.fake.add_task_list(TOKEN, "list-2", "Errands", false);
    let receiver = Receiver::start().await;
    let default = subscribed(&env, "/tasklists/default/tasks", &receiver).await;
    let by_id = subscribed(&env, "/tasklists/list-2/tasks", &receiver).await;

    let first = env.fake.create(TOKEN, &Collection::Tasks("list-1".into()));
    let second = env.fake.create(TOKEN, &Collection::Tasks("list-2".into()));
    // The default moves to list-2: its changes now reach both subscriptions.
    env.fake.add_task_list(TOKEN, "list-2", "Errands", true);
    assert!(env.fake.update(TOKEN, &Collection::Tasks("list-2".into()), &second));
    settle(&env.fake).await;
    let mut got = notified(&receiver);
    got.sort();
    let mut expected = vec![
        (default, "/tasklists/default/tasks".to_string(), first),
        (by_id, "/tasklists/list-2/tasks".to_string(), second.clone()),
        (by_id, "/tasklists/list-2/tasks".to_string(), second.clone()),
        (default, "/tasklists/default/tasks".to_string(), second),
    ];
    expected.sort();
    assert_eq!(got, expected);
    env.server.shutdown().await;
}
