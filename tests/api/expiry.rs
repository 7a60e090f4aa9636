//! Expired tokens: re-provisioning and reconciliation.

use aurinko_sync::fake::Endpoint;

use crate::helpers::{Setup, assert_exit, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_token_expiry_with_deletions_between_the_store_is_reconciled() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.expire_tokens(&token);
    // Deletions made now are not in the new provisioning's deleted stream:
    // only the reconciling sweep can remove them.
    let victims: Vec<String> =
        app.truth("work").iter().filter(|(cal, _, _)| cal == "cal-1").take(7).map(|t| t.1.clone()).collect();
    for id in &victims {
        assert!(app.fake.delete_event(&token, "cal-1", id));
    }
    app.fake.mutate_random(&token, 10);
    app.fake.clear_requests();

    let out = app.catch_up().await;
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
    assert!(app.stored("work").iter().all(|(_, id, _)| !victims.contains(id)));
    let requests = app.requests();
    assert!(requests.iter().any(|r| r.status == 410), "the old tokens were refused");
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 2, "each calendar re-provisioned once");
    let swept: u64 = crate::helpers::text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(", ").find(|p| p.ends_with(" swept")))
        .filter_map(|p| p.trim_end_matches(" swept").parse::<u64>().ok())
        .sum();
    assert!(swept >= victims.len() as u64, "the sweep removed the deleted events ({swept})");

    // The tokens stored after reconciling work: the next pass is deltas only.
    app.fake.clear_requests();
    assert_exit(&app.catch_up().await, 0);
    assert!(app.requests().iter().all(|r| r.status == 200 && r.endpoint != Endpoint::SyncStart));
}
