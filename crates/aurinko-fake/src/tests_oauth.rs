//! The account OAuth flow, over real HTTP: authorize, consent (given or refused), the code's
//! exchange, and the new account's token at work.

use serde_json::Value;

use super::tests::env;
use super::*;

const CLIENT: &str = "app-client";
const SECRET: &str = "app secret +/=%\"";
const RETURN: &str = "http://127.0.0.1:9/callback?keep=1";

fn no_redirects() -> reqwest::Client {
    crate::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// `GET /v1/auth/authorize` with `query`: the status, and the redirect's query pairs.
async fn authorize(base: &str, query: &[(&str, &str)]) -> (u16, Vec<(String, String)>) {
    let response = no_redirects().get(format!("{base}/auth/authorize")).query(query).send().await.expect("send");
    let status = response.status().as_u16();
    let pairs = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| reqwest::Url::parse(l).ok())
        .map(|url| {
            assert_eq!(url.path(), "/callback", "the redirect goes to returnUrl");
            url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
        })
        .unwrap_or_default();
    (status, pairs)
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn params<'a>(state: &'a str, scopes: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("clientId", CLIENT),
        ("serviceType", "Google"),
        ("scopes", scopes),
        ("responseType", "code"),
        ("returnUrl", RETURN),
        ("state", state),
    ]
}

async fn exchange(base: &str, code: &str, secret: &str) -> (u16, Value) {
    let response = no_redirects()
        .post(format!("{base}/auth/token/{code}"))
        .basic_auth(CLIENT, Some(secret))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn consent_redirects_with_a_single_use_code_that_makes_a_working_account() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_app_credentials(CLIENT, SECRET);
    env.fake.set_authorized_events(7);
    let (status, pairs) = authorize(&env.base, &params("st-1 +&", "Calendar.Read Mail.Read")).await;
    assert_eq!(status, 303);
    assert_eq!(value(&pairs, "keep"), Some("1"), "returnUrl's own query stays");
    assert_eq!(value(&pairs, "state"), Some("st-1 +&"), "state comes back as sent");
    assert_eq!(value(&pairs, "status"), Some("success"));
    let code = value(&pairs, "code").expect("a code").to_string();
    let asked = env.fake.authorizations();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].service_type.as_str(), asked[0].scopes.clone()),
        ("Google", vec!["Calendar.Read".to_string(), "Mail.Read".to_string()])
    );

    // A wrong secret is refused and leaves the code usable; the right one gets the account.
    let (status, body) = exchange(&env.base, &code, "wrong").await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Invalid client credentials")));
    assert_eq!(env.fake.pending_codes(), 1);
    let (status, body) = exchange(&env.base, &code, SECRET).await;
    assert_eq!(status, 200, "{body}");
    let token = body["accessToken"].as_str().expect("accessToken").to_string();
    assert_eq!(body["accountId"].as_i64(), env.fake.account_id(&token));
    // Single use.
    let (status, _) = exchange(&env.base, &code, SECRET).await;
    assert_eq!(status, 400);
    assert_eq!(env.fake.pending_codes(), 0);

    // The new token works on the data endpoints, with a primary calendar of 7 events.
    let response = env.http.get(format!("{}/calendars", env.base)).bearer_auth(&token).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let calendars: Value = response.json().await.expect("json");
    assert_eq!(calendars["records"][0]["primary"], true);
    assert_eq!(env.fake.truth(&token).len(), 7);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_refused_consent_redirects_with_the_error_and_no_code() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_app_credentials(CLIENT, SECRET);
    env.fake.set_consent_denied(true);
    let (status, pairs) = authorize(&env.base, &params("st-2", "Calendar.Read")).await;
    assert_eq!(status, 303);
    assert_eq!(value(&pairs, "code"), None);
    assert_eq!(value(&pairs, "error"), Some("access_denied"));
    assert_eq!(value(&pairs, "status"), Some("error"));
    assert_eq!(value(&pairs, "state"), Some("st-2"));
    assert_eq!(env.fake.pending_codes(), 0);
    env.server.shutdown().await;
}

#[tokio::test]
async fn bad_authorize_requests_are_refused_without_a_redirect() {
    let env = env(FakeOptions::default()).await;
    env.fake.set_app_credentials(CLIENT, SECRET);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("unknown app", vec![("clientId", "other"), ("serviceType", "Google"), ("returnUrl", RETURN)]),
        ("no returnUrl", vec![("clientId", CLIENT), ("serviceType", "Google")]),
        ("bad service", vec![("clientId", CLIENT), ("serviceType", "Fax"), ("returnUrl", RETURN)]),
        ("bad scope", vec![("clientId", CLIENT), ("serviceType", "IMAP"), ("returnUrl", RETURN), ("scopes", "All")]),
        (
            "token flow",
            vec![("clientId", CLIENT), ("serviceType", "EWS"), ("returnUrl", RETURN), ("responseType", "token")],
        ),
        ("not a URL", vec![("clientId", CLIENT), ("serviceType", "Office365"), ("returnUrl", "callback")]),
    ];
    for (what, query) in cases {
        let (status, pairs) = authorize(&env.base, &query).await;
        assert_eq!((status, pairs.len()), (400, 0), "{what}");
    }
    assert!(env.fake.authorizations().is_empty());
    // An unknown code, and an exchange without the app's credentials.
    let (status, _) = exchange(&env.base, "code-nope", SECRET).await;
    assert_eq!(status, 400);
    let response = env.http.post(format!("{}/auth/token/code-x", env.base)).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 401);
    env.server.shutdown().await;
}
