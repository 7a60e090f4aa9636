//! Scenario 8 (issue 17): app mode with many accounts on one PostgreSQL,
//! one instance against a fleet of three. The fake Aurinko (it serves the
//! app's account list and app credentials; the minimal double does not)
//! holds `accounts` accounts of one calendar each. For each fleet size, in
//! a schema of its own: the time until every event is stored; then, idle,
//! the requests per collection per poll and the statements on the fleet's
//! tables per second (table scans of `fleet_leases` and `fleet_instances`,
//! from `pg_stat_user_tables`), and each instance's peak RSS; with three,
//! the failover after a SIGKILL (until every account of the killed one is
//! polled by another).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aurinko_fake::{Endpoint, FakeAurinko, FakeOptions};
use private_postgres::PrivatePostgres;

use crate::process::{Watched, binary};
use crate::{Problems, row};

const SECRET: &str = "bench-app-secret";

/// The scenario's size and clock.
pub struct FleetScale {
    pub accounts: usize,
    pub events: usize,
    pub poll_secs: u64,
    pub lease_secs: u64,
}

/// One fleet size's figures.
pub struct FleetRun {
    pub instances: usize,
    pub full_sync: Duration,
    /// From the start until the shares were even and stable for a lease.
    pub settled: Duration,
    pub requests_per_collection_per_poll: f64,
    /// Passes per collection per poll interval in the idle window (about 1).
    pub passes_per_poll: f64,
    pub lease_statements_per_sec: f64,
    pub transactions_per_sec: f64,
    /// WAL written per second while idle (`pg_stat_wal`).
    pub wal_kib_per_sec: f64,
    pub peak_rss_mib: Vec<f64>,
    pub failover: Option<Duration>,
}

pub fn scenario(runtime: &tokio::runtime::Runtime, scale: &FleetScale, problems: &mut Problems) -> Vec<FleetRun> {
    let FleetScale { accounts, events, poll_secs, lease_secs } = *scale;
    // The idle window: two polls.
    let idle_window = Duration::from_secs(2 * poll_secs);
    // pg_stat_statements counts the statements on the fleet's tables.
    // And a production server's durability (the tests' servers run without
    // fsync and full page writes), so the WAL figures are a real server's.
    let settings = [
        ("shared_preload_libraries", "pg_stat_statements"),
        ("pg_stat_statements.track", "all"),
        ("fsync", "on"),
        ("full_page_writes", "on"),
    ];
    let Some(server) = PrivatePostgres::start_with("the benchmark's fleet scenario", &settings) else {
        return Vec::new();
    };
    server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    let fake = FakeAurinko::new(FakeOptions { page_size: 100, seed: 17, ..FakeOptions::default() });
    fake.set_app_credentials("bench-app", SECRET);
    let mut tokens = Vec::with_capacity(accounts);
    for i in 0..accounts {
        let token = format!("bench-token-{i}");
        fake.add_account(&format!("a{i:05}"), &token);
        fake.add_calendar(&token, &format!("c{i}"), "Calendar", true);
        fake.generate_events(&token, &format!("c{i}"), events);
        tokens.push(token);
    }
    let listening = runtime.block_on(fake.spawn(([127, 0, 0, 1], 0).into())).expect("the fake binds");
    let total = (accounts * events) as i64;
    println!(
        "== fleet (issue 17): {accounts} accounts in app mode, one calendar of {events} events each, one PostgreSQL"
    );
    println!("   poll {poll_secs} s, lease {lease_secs} s; idle figures over {} s", idle_window.as_secs());
    let mut runs = Vec::new();
    for instances in [1usize, 3] {
        let schema = format!("fleet_{instances}");
        let dir = tempfile::Builder::new().prefix("bench-fleet-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let config = dir.path().join("aurinko-sync.toml");
        std::fs::write(
            &config,
            format!(
                "[api]\nbase_url = \"{base}\"\nrequests_per_second = 100000\n\n\
                 [store]\nurl = \"{url}\"\nschema = \"{schema}\"\n\n\
                 [sync]\npoll_interval_secs = {poll_secs}\ndiscovery_interval_secs = 3600\nfirst_pass_spread_secs = 0\n\n\
                 [app]\nclient_id = \"bench-app\"\nclient_secret_env = \"BENCH_APP_SECRET\"\naccounts = \"aurinko\"\n\n\
                 [app.each_account]\ncalendars = \"all\"\n\n\
                 [fleet]\nlease_secs = {lease_secs}\n",
                base = listening.base_url(),
                url = server.url(),
            ),
        )
        .unwrap();
        // The schema is made first, so its tables can be watched.
        drop(aurinko_sync::store::Postgres::open(&server.url(), None, &schema).expect("the schema is made"));
        fake.clear_requests();
        let started = Instant::now();
        let mut daemons: Vec<Watched> = (0..instances)
            .map(|i| {
                let log = std::fs::File::create(dir.path().join(format!("i{i}.stderr"))).unwrap();
                let child = Command::new(binary())
                    .arg("--config")
                    .arg(&config)
                    .args(["run", "--instance", &format!("i{i}")])
                    .current_dir(dir.path())
                    .env_remove("RUST_LOG")
                    .env("BENCH_APP_SECRET", SECRET)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::from(log))
                    .spawn()
                    .expect("the daemon starts");
                Watched { child, started: Instant::now(), peak_rss_kib: 0, cpu_ticks: 0, peak_anon_kib: 0 }
            })
            .collect();
        let count = || server.psql(&format!("SELECT count(*) FROM {schema}.events")).parse::<i64>().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(600);
        while count() < total && Instant::now() < deadline {
            for d in &mut daemons {
                d.sample();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let full_sync = started.elapsed();
        problems.expect_eq(&format!("fleet of {instances}: events stored"), count() as u64, total as u64);

        // Idle: requests and the fleet's statements over two polls.
        // Statements naming the fleet's tables (the store's are in this
        // schema alone; the benchmark's own queries name the schema).
        let scans = || {
            server
                .psql(&format!(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                     WHERE query LIKE '%fleet\\_%' AND query NOT LIKE '%{schema}.%'"
                ))
                .parse::<i64>()
                .unwrap_or(0)
        };
        let commits = || {
            server
                .psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                .parse::<i64>()
                .unwrap_or(0)
        };
        let wal = || server.psql("SELECT wal_bytes FROM pg_stat_wal").parse::<i64>().unwrap_or(0);
        // Idle means settled: the shares even (within one) and unchanged
        // for a lease, so no rebalancing falls into the window.
        let shares = || {
            server.psql(&format!(
                "SELECT string_agg(n::text, ',' ORDER BY owner) FROM
                 (SELECT owner, count(*) n FROM {schema}.fleet_leases WHERE owner IS NOT NULL GROUP BY owner) s"
            ))
        };
        let settled_by = Instant::now() + Duration::from_secs(300);
        let (mut last, mut since) = (String::new(), Instant::now());
        while Instant::now() < settled_by {
            let now: Vec<i64> = shares().split(',').filter_map(|n| n.parse().ok()).collect();
            let text = format!("{now:?}");
            if text != last {
                (last, since) = (text, Instant::now());
            }
            let even = now.len() == instances
                && now.iter().sum::<i64>() == accounts as i64
                && now.iter().max().unwrap_or(&0) - now.iter().min().unwrap_or(&0) <= 1;
            if even && since.elapsed() >= Duration::from_secs(lease_secs) {
                break;
            }
            for d in &mut daemons {
                d.sample();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let settled = started.elapsed();
        // The statistics reach the view within a second of a transaction.
        std::thread::sleep(Duration::from_secs(2));
        fake.clear_requests();
        let (scans_before, commits_before, wal_before, idle_from) = (scans(), commits(), wal(), Instant::now());
        while idle_from.elapsed() < idle_window {
            for d in &mut daemons {
                d.sample();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(1));
        let idle = idle_from.elapsed();
        let lease_statements_per_sec = (scans() - scans_before) as f64 / idle.as_secs_f64();
        if std::env::var("BENCH_FLEET_DEBUG").is_ok() {
            println!(
                "{}",
                server.psql(
                    "SELECT calls || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements
                     WHERE query LIKE '%fleet\\_%' ORDER BY calls DESC LIMIT 8"
                )
            );
        }
        let transactions_per_sec = (commits() - commits_before) as f64 / idle.as_secs_f64();
        let wal_kib_per_sec = (wal() - wal_before) as f64 / 1024.0 / idle.as_secs_f64();
        // A pass begins with a delta-token request to /sync/updated; what a
        // pass asks in all, and how many passes each collection had.
        let requests = fake.requests();
        let sync_requests =
            requests.iter().filter(|r| matches!(r.endpoint, Endpoint::SyncUpdated | Endpoint::SyncDeleted)).count();
        let passes = requests.iter().filter(|r| r.endpoint == Endpoint::SyncUpdated && r.delta_token.is_some()).count();
        let requests_per_collection_per_poll = sync_requests as f64 / passes.max(1) as f64;
        let passes_per_poll = passes as f64 / accounts as f64 / (idle.as_secs_f64() / poll_secs as f64);

        // Failover: SIGKILL one of three; until another polls each of its accounts.
        let failover = (instances > 1).then(|| {
            let victim = "i1";
            let held: BTreeSet<String> = server
                .psql(&format!("SELECT account FROM {schema}.fleet_leases WHERE owner = '{victim}'"))
                .lines()
                .map(str::to_string)
                .collect();
            let killed_at = Instant::now();
            let mut dead = daemons.remove(1);
            let _ = dead.child.kill();
            let _ = dead.child.wait();
            let name_of = |fake_name: &str| {
                let i: usize = fake_name.trim_start_matches('a').parse().unwrap_or(usize::MAX);
                tokens.get(i).and_then(|t| fake.account_id(t)).map(|id| format!("aurinko-{id}")).unwrap_or_default()
            };
            loop {
                let polled: BTreeSet<String> = fake
                    .requests()
                    .iter()
                    .filter(|r| r.at >= killed_at && r.endpoint == Endpoint::SyncUpdated)
                    .filter(|r| r.user_agent.as_deref().is_some_and(|ua| !ua.contains(&format!("(instance {victim})"))))
                    .filter_map(|r| r.account.as_deref().map(name_of))
                    .collect();
                if held.iter().all(|a| polled.contains(a)) || killed_at.elapsed() > Duration::from_secs(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            killed_at.elapsed()
        });
        let peak_rss_mib: Vec<f64> = daemons
            .into_iter()
            .map(|d| {
                let finished = d.stop(Duration::from_secs(15));
                problems.expect(&format!("fleet of {instances}: a clean stop"), finished.status.success(), || {
                    format!("{}", finished.status)
                });
                finished.peak_rss_kib as f64 / 1024.0
            })
            .collect();
        let run = FleetRun {
            instances,
            full_sync,
            settled,
            requests_per_collection_per_poll,
            passes_per_poll,
            lease_statements_per_sec,
            transactions_per_sec,
            wal_kib_per_sec,
            peak_rss_mib,
            failover,
        };
        run.print(scale);
        runs.push(run);
    }
    println!();
    runs
}

impl FleetRun {
    fn print(&self, scale: &FleetScale) {
        let (accounts, events) = (scale.accounts, scale.events);
        println!("   -- {} instance(s)", self.instances);
        row(
            "full sync",
            format!(
                "{:.1} s ({:.0} events/s, {:.0} accounts/s)",
                self.full_sync.as_secs_f64(),
                (accounts * events) as f64 / self.full_sync.as_secs_f64(),
                accounts as f64 / self.full_sync.as_secs_f64()
            ),
        );
        row(
            "shares settled",
            format!("{:.1} s after the start (even, and unchanged for a lease)", self.settled.as_secs_f64()),
        );
        row(
            "idle requests",
            format!(
                "{:.3} per collection per poll ({:.2} passes per collection per poll interval)",
                self.requests_per_collection_per_poll, self.passes_per_poll
            ),
        );
        row(
            "lease statements",
            format!(
                "{:.1} per second (pg_stat_statements: those naming the fleet's tables)",
                self.lease_statements_per_sec
            ),
        );
        row("all transactions", format!("{:.1} per second (pg_stat_database, idle)", self.transactions_per_sec));
        row("WAL", format!("{:.1} KiB per second (pg_stat_wal, idle)", self.wal_kib_per_sec));
        let rss: Vec<String> = self.peak_rss_mib.iter().map(|m| format!("{m:.1}")).collect();
        row("peak RSS", format!("{} MiB", rss.join(", ")));
        if let Some(failover) = self.failover {
            row(
                "failover after SIGKILL",
                format!("{:.1} s (lease {} s, poll {} s)", failover.as_secs_f64(), scale.lease_secs, scale.poll_secs),
            );
        }
    }
}
