//! Several accounts, one of them with a dead token.

use crate::helpers::{Setup, StoreKind, assert_exit, spawn_app_on, text};

on_each_store!(
    a_dead_token_on_one_account_leaves_the_other_syncing_and_exits_1,
    a_dead_token_on_one_account_leaves_the_other_syncing_and_exits_1_on_postgresql,
    dead_token_on
);

async fn dead_token_on(kind: StoreKind, test: &str) {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 60), ("w-2", 40)]), ("home", vec![("h-1", 50), ("h-2", 30)])],
        ..Setup::default()
    };
    let Some(app) = spawn_app_on(setup, kind, test).await else { return };
    assert_exit(&app.catch_up().await, 0);
    let home_before = app.stored("home");

    let work = app.token("work").to_string();
    let home = app.token("home").to_string();
    app.fake.kill_token(&home);
    app.fake.mutate_random(&work, 20);
    app.fake.mutate_random(&home, 20);

    let out = app.catch_up().await;
    assert_exit(&out, 1);
    app.assert_store_equals_truth("work");
    assert_eq!(app.stored("home"), home_before, "nothing of the refused account is lost");
    let stderr = text(&out.stderr);
    assert!(stderr.lines().any(|l| l.contains("home") && l.contains("auth")), "{stderr}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("failed") && l.contains("work/")),
        "the healthy account did not fail: {stderr}"
    );

    let state = app.state_json().await;
    let accounts = state["accounts"].as_array().unwrap();
    let home_state = accounts.iter().find(|a| a["name"] == "home").unwrap();
    assert!(home_state["auth_error"].as_str().unwrap().contains("401"), "{home_state}");
    let work_state = accounts.iter().find(|a| a["name"] == "work").unwrap();
    assert!(work_state["auth_error"].is_null());
    assert!(text(&app.run_binary(&["state"]).await.stdout).contains("account home: token refused"));
    let check = app.run_binary(&["state", "--check"]).await;
    assert_exit(&check, 1);
    assert!(text(&check.stdout).starts_with("FAILING: 1 of 2 accounts and "), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("account home"), "{}", text(&check.stdout));
}
