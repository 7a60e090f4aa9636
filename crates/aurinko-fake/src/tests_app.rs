//! App-level authentication and `GET /v1/am/accounts`, over real HTTP.

use serde_json::Value;

use super::tests::{OTHER, TOKEN, env};
use super::*;

const CLIENT: &str = "app-client";
const SECRET: &str = "app secret +/=%\"";

/// A request with app credentials (`secret` as given), for `account` when set.
async fn app_call(
    env: &tests::Env,
    path: &str,
    secret: &str,
    account: Option<&str>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = env.http.get(format!("{}{path}", env.base)).basic_auth(CLIENT, Some(secret)).query(query);
    if let Some(account) = account {
        request = request.header("X-Aurinko-Account-Id", account);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.expect("json body"))
}

#[tokio::test]
async fn the_app_acts_for_an_account_by_its_id_and_a_wrong_secret_is_refused() {
    let env = env(FakeOptions::default()).await;
    let alice = env.fake.account_id(TOKEN).expect("alice's id").to_string();
    // Before the app's credentials are set, no Basic request is accepted.
    let (status, _) = app_call(&env, "/calendars", SECRET, Some(&alice), &[]).await;
    assert_eq!(status, 401);
    env.fake.set_app_credentials(CLIENT, SECRET);
    let (status, body) = app_call(&env, "/calendars", SECRET, Some(&alice), &[]).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["records"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cal-1", "cal-2"]);
    // A wrong secret, an unknown account, and no account header are refused.
    let (status, body) = app_call(&env, "/calendars", "wrong", Some(&alice), &[]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Invalid client credentials")));
    let (status, _) = app_call(&env, "/calendars", SECRET, Some("999999"), &[]).await;
    assert_eq!(status, 401);
    let (status, _) = app_call(&env, "/calendars", SECRET, None, &[]).await;
    assert_eq!(status, 401);
    // The bearer token still works beside it, and the log names the account either way.
    let (status, _) = env.get("/calendars", &[]).await;
    assert_eq!(status, 200);
    let accounts: Vec<Option<String>> = env.fake.requests().into_iter().map(|r| r.account).collect();
    assert_eq!(accounts[1].as_deref(), Some("alice"));
    assert_eq!(accounts.last().unwrap().as_deref(), Some("alice"));
    env.server.shutdown().await;
}

#[tokio::test]
async fn the_apps_accounts_are_listed_in_pages_with_their_token_status() {
    let env = env(FakeOptions { page_size: 2, ..FakeOptions::default() }).await;
    env.fake.set_app_credentials(CLIENT, SECRET);
    env.fake.add_account("carol", "token-carol");
    env.fake.set_token_status(OTHER, TokenStatus::Invalid);
    // An account's token cannot list the app's accounts.
    let (status, _) = env.get("/am/accounts", &[]).await;
    assert_eq!(status, 401);
    let (status, _) = app_call(&env, "/am/accounts", "wrong", None, &[]).await;
    assert_eq!(status, 401);

    let mut listed = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = app_call(&env, "/am/accounts", SECRET, None, &[("offset", &offset.to_string())]).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totalSize"], 3);
        let records = page["records"].as_array().unwrap().clone();
        assert!(records.len() <= 2, "the page size caps the limit");
        offset += records.len();
        listed.extend(records);
        if page["done"] == true {
            break;
        }
    }
    let summary: Vec<(i64, &str, &str)> = listed
        .iter()
        .map(|a| (a["id"].as_i64().unwrap(), a["email"].as_str().unwrap(), a["tokenStatus"].as_str().unwrap()))
        .collect();
    let id = |token| env.fake.account_id(token).unwrap();
    assert_eq!(
        summary,
        [
            (id(TOKEN), "alice@example.com", "active"),
            (id(OTHER), "bob@example.com", "invalid"),
            (id("token-carol"), "carol@example.com", "active")
        ]
    );
    // Aurinko still tries an invalid token's provider; a dead one is refused; a disconnected
    // account leaves the list.
    let (status, _) = app_call(&env, "/calendars", SECRET, Some(&id(OTHER).to_string()), &[]).await;
    assert_eq!(status, 200);
    env.fake.set_token_status(OTHER, TokenStatus::Dead);
    let (status, body) = app_call(&env, "/calendars", SECRET, Some(&id(OTHER).to_string()), &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token.dead")));
    env.fake.disconnect_account(TOKEN);
    let (_, page) = app_call(&env, "/am/accounts", SECRET, None, &[("limit", "10")]).await;
    assert_eq!(page["totalSize"], 2);
    let (status, _) = env.get("/calendars", &[]).await;
    assert_eq!(status, 401);
    let (status, body) = app_call(&env, "/am/accounts", SECRET, None, &[("limit", "-1")]).await;
    assert_eq!(status, 400, "{body}");
    env.server.shutdown().await;
}
