//! A fleet: several daemons (real processes) on one private PostgreSQL,
//! sharing the accounts of an app through leases. The fake tells the
//! instances apart by their `User-Agent` (`(instance a)`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aurinko_fake::{Endpoint, FakeOptions, RequestRecord};
use private_postgres::PrivatePostgres;

use crate::daemon::Daemon;
use crate::helpers::{Setup, StoreKind, TestApp, assert_exit, spawn_app_on, text};
use crate::sys::{Sig, signal};

const ACCOUNTS: usize = 30;
const LEASE_SECS: u64 = 3;
const POLL_SECS: u64 = 2;

fn fleet_setup() -> Setup {
    let accounts = (0..ACCOUNTS)
        .map(|i| {
            let name: &'static str = Box::leak(format!("acct{i:02}").into_boxed_str());
            let calendar: &'static str = Box::leak(format!("cal{i:02}").into_boxed_str());
            (name, vec![(calendar, 20)])
        })
        .collect();
    Setup {
        accounts,
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        sync_extra: Box::leak(
            format!("poll_interval_secs = {POLL_SECS}\ndiscovery_interval_secs = 2\n").into_boxed_str(),
        ),
        app: true,
        ..Setup::default()
    }
}

/// The instance a request came from, by its `User-Agent`.
fn instance_of(r: &RequestRecord) -> Option<String> {
    let ua = r.user_agent.as_deref()?;
    let (_, rest) = ua.split_once("(instance ")?;
    Some(rest.trim_end_matches(')').to_string())
}

/// How many times each account's lease has been claimed (its epoch),
/// whether it is held at the moment or not: a lease that lapsed under load
/// a moment ago keeps its epoch.
fn claims(server: &PrivatePostgres) -> BTreeMap<String, i64> {
    server
        .psql("SELECT account || ' ' || epoch FROM fleet_leases")
        .lines()
        .filter_map(|l| {
            let (account, epoch) = l.split_once(' ')?;
            Some((account.to_string(), epoch.trim().parse().ok()?))
        })
        .collect()
}

/// Who holds each account's lease, and its epoch, as the store says: only
/// leases of a registered process (the session of its instance's row).
fn leases(server: &PrivatePostgres) -> BTreeMap<String, (String, i64)> {
    server
        .psql(
            "SELECT l.account || ' ' || i.id || ' ' || l.epoch FROM fleet_leases l
             JOIN fleet_instances i ON i.session = l.session WHERE l.expires_at > now()",
        )
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), (parts.next()?.to_string(), parts.next()?.parse().ok()?)))
        })
        .collect()
}

/// How many accounts each live instance holds.
fn shares(server: &PrivatePostgres) -> BTreeMap<String, usize> {
    let mut shares = BTreeMap::new();
    for (owner, _) in leases(server).into_values() {
        *shares.entry(owner).or_default() += 1;
    }
    shares
}

struct Fleet {
    app: TestApp,
    server: Arc<PrivatePostgres>,
}

impl Fleet {
    fn start(&self, instance: &str) -> Daemon {
        let mut command = self.app.command(&["run", "--instance", instance]);
        command.env("RUST_LOG", "aurinko_sync=info");
        Daemon::start(command)
    }

    /// Waits until the live instances named hold every account, each within
    /// one of the others.
    async fn wait_even(&self, instances: &[&str], limit: Duration, what: &str) -> Duration {
        self.app
            .wait_for(limit, what, || {
                let shares = shares(&self.server);
                let held: usize = shares.values().sum();
                let counts: Vec<usize> = instances.iter().map(|i| shares.get(*i).copied().unwrap_or(0)).collect();
                held == ACCOUNTS
                    && shares.keys().all(|owner| instances.contains(&owner.as_str()))
                    && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
            })
            .await
    }

    fn all_synced(&self) -> bool {
        self.app.accounts.iter().all(|a| self.app.store_matches_truth(a.name))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_thirty_accounts_and_survive_kills_pauses_joins_and_a_rolling_restart() {
    let test = "three_instances_share_thirty_accounts_and_survive_kills_pauses_joins_and_a_rolling_restart";
    let Some(app) = spawn_app_on(fleet_setup(), StoreKind::Postgres, test).await else { return };
    let server = app.postgres.clone().expect("a PostgreSQL store");
    let mut config = std::fs::read_to_string(&app.config_path).unwrap();
    config.push_str(&format!("\n[fleet]\nlease_secs = {LEASE_SECS}\n"));
    std::fs::write(&app.config_path, config).unwrap();
    // Migrated before the daemons start, so the lease table can be read.
    drop(tokio::task::block_in_place(|| app.store_at.open()).expect("the store opens"));
    let fleet = Fleet { app, server };
    let app = &fleet.app;
    let minute = Duration::from_secs(60);

    // Mutations throughout, on random accounts.
    let mutating = Arc::new(AtomicBool::new(true));
    let mutator = {
        let (fake, tokens, mutating) =
            (app.fake.clone(), app.accounts.iter().map(|a| a.token.clone()).collect::<Vec<_>>(), mutating.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while mutating.load(Ordering::SeqCst) {
                fake.mutate_random(&tokens[(i * 7) % tokens.len()], 2);
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut daemons: BTreeMap<&str, Daemon> = BTreeMap::new();
    for id in ["a", "b", "c"] {
        daemons.insert(id, fleet.start(id));
    }
    let took = fleet.wait_even(&["a", "b", "c"], minute, "three instances holding ten accounts each").await;
    eprintln!("three instances: even shares after {took:?}: {:?}", shares(&fleet.server));

    // A fourth joins: the shares even out within a minute.
    daemons.insert("d", fleet.start("d"));
    let took = fleet.wait_even(&["a", "b", "c", "d"], minute, "four even shares").await;
    eprintln!("a fourth instance: even shares after {took:?}: {:?}", shares(&fleet.server));

    // SIGKILL one: its accounts resume elsewhere within a lease and a poll.
    let before = leases(&fleet.server);
    let orphans: BTreeSet<String> = before.iter().filter(|(_, (o, _))| o == "d").map(|(a, _)| a.clone()).collect();
    assert!(!orphans.is_empty());
    let killed_at = Instant::now();
    daemons.remove("d").unwrap().kill_and_wait().await;
    let resumed = |account: &String| {
        app.requests().iter().rev().take_while(|r| r.at >= killed_at).any(|r| {
            r.endpoint == Endpoint::SyncUpdated
                && r.status == 200
                && instance_of(r).is_some_and(|i| i != "d")
                && app.local_name(r.account.as_deref().unwrap_or("")) == *account
        })
    };
    app.wait_for(minute, "the killed instance's accounts polled by another", || orphans.iter().all(resumed)).await;
    let failover = killed_at.elapsed();
    eprintln!(
        "failover after SIGKILL: {failover:?} for {} accounts (lease {LEASE_SECS} s, poll {POLL_SECS} s)",
        orphans.len()
    );
    assert!(
        failover < Duration::from_secs(LEASE_SECS + POLL_SECS + 10),
        "resumed within the lease and a poll (and slack for a busy machine): {failover:?}"
    );
    fleet.wait_even(&["a", "b", "c"], minute, "three even shares after the kill").await;

    // SIGSTOP one past its lease; its accounts are taken over; SIGCONT: it
    // stops them, and no commit of its lands after the takeover.
    let b = daemons.get("b").unwrap();
    let held_by_b: BTreeSet<String> =
        leases(&fleet.server).into_iter().filter(|(_, (o, _))| o == "b").map(|(a, _)| a).collect();
    let stopped_at = Instant::now();
    signal(b.id(), Sig::STOP);
    app.wait_for(minute, "b's accounts taken over", || {
        let now = leases(&fleet.server);
        held_by_b.iter().all(|a| now.get(a).is_some_and(|(o, _)| o != "b"))
    })
    .await;
    let skip = b.lines().len();
    signal(b.id(), Sig::CONT);
    for account in &held_by_b {
        b.wait_for_line(skip, minute, "b stopping each taken-over account", |l| {
            l.contains("stopping the account") && l.contains(account.as_str())
        })
        .await;
    }
    // Requests b had under way when it was paused finish after it wakes;
    // they are left out of the overlap check below.
    let paused = (stopped_at, Instant::now());
    // Each of b's former accounts was last committed under its successor's
    // lease: a stale write of b's would have put its older epoch back.
    app.wait_for(minute, "the successors' commits", || {
        let epochs = fleet.server.psql(
            "SELECT s.account || ' ' || coalesce(s.lease_epoch, -1) || ' ' || l.epoch FROM sync_state s
             JOIN fleet_leases l ON l.account = s.account WHERE s.kind = 'calendar'",
        );
        epochs.lines().filter(|l| held_by_b.iter().any(|a| l.starts_with(&format!("{a} ")))).all(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[1] == parts[2]
        })
    })
    .await;
    fleet.wait_even(&["a", "b", "c"], minute, "b back in the fleet").await;

    // A rolling restart: each instance stopped (SIGTERM) and started again
    // in turn; its leases are released at once and taken over.
    let restart_from = Instant::now();
    for id in ["a", "b", "c"] {
        let daemon = daemons.remove(id).unwrap();
        daemon.terminate();
        assert_exit(&daemon.wait_with_output().await, 0);
        let daemon = fleet.start(id);
        daemon.wait_for_line(0, minute, "joining again", |l| l.contains("joined the fleet")).await;
        daemons.insert(id, daemon);
        fleet.wait_even(&["a", "b", "c"], minute, "even shares after a restart").await;
    }
    // Then a poll interval, so every account's next poll is in the log.
    let restart_end = Instant::now();
    app.wait_for(minute, "a poll interval after the restarts", || {
        restart_end.elapsed() > Duration::from_secs(POLL_SECS)
    })
    .await;
    // No account went unpolled, across the restarts, for longer than a poll
    // interval beyond its normal one.
    let mut polls: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for r in app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncUpdated && r.status == 200) {
        if let Some(account) = r.account.clone() {
            polls.entry(account).or_default().push(r.at);
        }
    }
    // An account not polled since counts as idle until now.
    let now = Instant::now();
    for times in polls.values_mut() {
        times.push(now);
    }
    let mut worst = (Duration::ZERO, String::new());
    for (account, times) in &polls {
        for pair in times.windows(2) {
            // Gaps that overlap the restarts.
            if pair[1] >= restart_from && pair[0] <= restart_end && pair[1] - pair[0] > worst.0 {
                worst = (pair[1] - pair[0], account.clone());
            }
        }
    }
    eprintln!(
        "rolling restart: longest gap between an account's polls {:?} ({}; poll {POLL_SECS} s)",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= Duration::from_secs(2 * POLL_SECS),
        "{} idle for {:?} during the rolling restart",
        worst.1,
        worst.0
    );

    // Mutations stop; every account catches up; the store equals the truth.
    mutating.store(false, Ordering::SeqCst);
    mutator.await.unwrap();
    app.wait_for(minute, "every account equal to the truth", || fleet.all_synced()).await;
    for a in &app.accounts {
        app.assert_store_equals_truth(a.name);
    }

    // Every handover (joins, the kill, the pause, the restarts) resumed
    // from the stored tokens: each account was provisioned once.
    let starts = app.requests().iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, ACCOUNTS, "one provisioning per account, whoever synced it after");

    // `state` shows the instances and who holds each account.
    let state = app.state_json().await;
    let instances = state["instances"].as_array().unwrap();
    let live: BTreeMap<&str, i64> = instances
        .iter()
        .filter(|i| i["live"] == true)
        .map(|i| (i["id"].as_str().unwrap(), i["leases"].as_i64().unwrap()))
        .collect();
    assert_eq!(live.keys().copied().collect::<Vec<_>>(), ["a", "b", "c"], "{instances:?}");
    assert_eq!(live.values().sum::<i64>(), ACCOUNTS as i64, "{instances:?}");
    let accounts = state["accounts"].as_array().unwrap();
    assert!(accounts.iter().all(|a| a["lease_owner"].as_str().is_some_and(|o| live.contains_key(o))), "{accounts:?}");
    let table = text(&app.run_binary(&["state"]).await.stdout);
    assert!(table.contains("INSTANCE") && table.contains(" @a"), "{table}");

    // Never two instances on one account at once: per account, the runs of
    // requests by one instance are no more than its lease claims.
    let claims = claims(&fleet.server);
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in app.requests() {
        let (Some(account), Some(instance)) = (r.account.clone(), instance_of(&r)) else { continue };
        if instance == "b" && r.at >= paused.0 && r.at <= paused.1 {
            continue;
        }
        let list = runs.entry(app.local_name(&account)).or_default();
        if list.last() != Some(&instance) {
            list.push(instance);
        }
    }
    for (account, list) in &runs {
        let epoch = claims.get(account).copied().unwrap_or_default();
        assert!(
            list.len() as i64 <= epoch,
            "{account}: {} runs of requests by one instance ({list:?}) but {epoch} claims",
            list.len()
        );
    }
    for (_, daemon) in daemons {
        daemon.terminate();
        let out = daemon.wait_with_output().await;
        assert_exit(&out, 0);
        assert!(text(&out.stderr).contains("left the fleet"), "{}", text(&out.stderr));
    }
    assert_eq!(fleet.server.psql("SELECT count(*) FROM fleet_leases WHERE owner IS NOT NULL"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_needs_postgresql_and_refuses_a_catch_up_and_a_second_process_under_one_id() {
    let test = "a_fleet_needs_postgresql_and_refuses_a_catch_up_and_a_second_process_under_one_id";
    // SQLite: refused when the configuration is read.
    let sqlite = crate::helpers::spawn_app(Setup { app: true, ..Setup::default() }).await;
    let mut config = std::fs::read_to_string(&sqlite.config_path).unwrap();
    config.push_str("\n[fleet]\n");
    std::fs::write(&sqlite.config_path, config).unwrap();
    let out = sqlite.run_binary(&["run"]).await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("only through PostgreSQL"), "{}", text(&out.stderr));

    let Some(app) = spawn_app_on(Setup { app: true, ..Setup::default() }, StoreKind::Postgres, test).await else {
        return;
    };
    let mut config = std::fs::read_to_string(&app.config_path).unwrap();
    config.push_str("\n[fleet]\nlease_secs = 3\n");
    std::fs::write(&app.config_path, config).unwrap();
    let out = app.catch_up().await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("does not lease accounts"), "{}", text(&out.stderr));

    let first = Daemon::start(app.command(&["run", "--instance", "one"]));
    first.wait_for_line(0, Duration::from_secs(30), "joining", |l| l.contains("joined the fleet")).await;
    // A second live process under the id waits two leases, then is refused.
    let second = app.command(&["run", "--instance", "one"]).output().await.unwrap();
    assert_exit(&second, 2);
    assert!(text(&second.stderr).contains("instance id one is in use"), "{}", text(&second.stderr));
    // After a crash, the same id starts again once its heartbeat is old.
    first.kill_and_wait().await;
    let again = Daemon::start(app.command(&["run", "--instance", "one"]));
    again.wait_for_line(0, Duration::from_secs(30), "joining again", |l| l.contains("joined the fleet")).await;
    let first = again;
    let bad = app.command(&["run", "--instance", "no spaces"]).output().await.unwrap();
    assert_exit(&bad, 2);
    first.terminate();
    assert_exit(&first.wait_with_output().await, 0);
}

/// A webhook notification reaching an instance that does not hold the
/// account is passed on (`NOTIFY`) and synced by the one that does, long
/// before its poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_received_by_one_instance_is_synced_by_the_holder() {
    let test = "a_notification_received_by_one_instance_is_synced_by_the_holder";
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 20)]), ("home", vec![("h-1", 20)])],
        sync_extra: "poll_interval_secs = 3600\n",
        app: true,
        webhook: true,
        ..Setup::default()
    };
    let Some(app) = spawn_app_on(setup, StoreKind::Postgres, test).await else { return };
    let server = app.postgres.clone().unwrap();
    let mut config = std::fs::read_to_string(&app.config_path).unwrap();
    config.push_str("\n[fleet]\nlease_secs = 3\n");
    std::fs::write(&app.config_path, config).unwrap();
    drop(tokio::task::block_in_place(|| app.store_at.open()).expect("the store opens"));
    // a alone first: it syncs both accounts, then hands one to b, so its
    // actors for that one are gone (a notification must not go to them).
    let minute = Duration::from_secs(60);
    let a = Daemon::start(app.command(&["run", "--instance", "a"]));
    let a_addr = a.listening_address().await;
    app.wait_for(minute, "a syncing both", || {
        shares(&server).get("a") == Some(&2) && app.store_matches_truth("work") && app.store_matches_truth("home")
    })
    .await;
    let b = Daemon::start(app.command(&["run", "--instance", "b"]));
    app.wait_for(minute, "one account each, both synced", || {
        let shares = shares(&server);
        shares.get("a") == Some(&1)
            && shares.get("b") == Some(&1)
            && app.store_matches_truth("work")
            && app.store_matches_truth("home")
    })
    .await;
    // The account b holds, notified to a.
    let held_by_b = leases(&server).into_iter().find(|(_, (o, _))| o == "b").map(|(account, _)| account).unwrap();
    let name = if app.local_name("work") == held_by_b { "work" } else { "home" };
    let calendar = if name == "work" { "w-1" } else { "h-1" };
    let token = app.token(name).to_string();
    app.fake.update_event(&token, calendar, &app.fake.truth(&token)[0].id);
    assert!(!app.store_matches_truth(name));
    let body = serde_json::to_vec(&serde_json::json!({
        "subscription": 1,
        "resource": format!("/calendars/{calendar}/events"),
        "accountId": app.fake.account_id(&token).unwrap(),
        "payloads": [{"id": "x", "changeType": "updated"}],
    }))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let posted_at = Instant::now();
    let client = aurinko_sync::http_client::builder().build().unwrap();
    let status = client
        .post(format!("http://{a_addr}/hook"))
        .header("X-Aurinko-Request-Timestamp", now.to_string())
        .header("X-Aurinko-Signature", crate::webhooks::sign(now, &body))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    app.wait_for(minute, "the holder's pass", || app.store_matches_truth(name)).await;
    let synced_by: BTreeSet<String> = app
        .requests()
        .iter()
        .filter(|r| r.at >= posted_at && r.endpoint == Endpoint::SyncUpdated && r.account.as_deref() == Some(name))
        .filter_map(instance_of)
        .collect();
    assert_eq!(synced_by, BTreeSet::from(["b".to_string()]), "only the holder synced it after the notification");
    for daemon in [a, b] {
        daemon.terminate();
        assert_exit(&daemon.wait_with_output().await, 0);
    }
}
