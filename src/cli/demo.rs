//! `demo`: the product working on a fresh machine, against a fake Aurinko on
//! loopback. Nothing leaves the machine.

use std::path::Path;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::output::{self, outln};
use super::run::{catch_up_with_progress, open_engine, print_summary};
use super::state::render_table;
use super::{Exit, complain};
use crate::config::Config;
use aurinko_fake::{Endpoint, FakeAurinko};

pub async fn demo(events: usize, calendars: usize, db: &Path) -> Exit {
    let (fake, token) = FakeAurinko::demo(events, calendars.max(1), 7);
    let server = match fake.spawn(([127, 0, 0, 1], 0).into()).await {
        Ok(server) => server,
        Err(e) => {
            complain(format!("cannot start the fake Aurinko: {e}"));
            return Exit::Failed;
        }
    };
    // The demo store belongs to the demo: start from nothing each time.
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let text = format!(
        "[api]\nbase_url = {}\nrequests_per_second = 1000\n[store]\npath = {}\n[[accounts]]\nname = \"demo\"\ntoken_env = \"DEMO_TOKEN\"\nemail = {{ days_within = 90, body = \"text\" }}\ncontacts = true\ntasks = {{ completed_within_days = 365 }}\n",
        toml::Value::String(server.base_url()),
        toml::Value::String(db.display().to_string()),
    );
    let config = match Config::parse(&text, |_| Some(token.clone())) {
        Ok(config) => config,
        Err(e) => {
            complain(e);
            return Exit::Failed;
        }
    };
    let Some(engine) = open_engine(config).await else { return Exit::Failed };
    outln!(
        "Fake Aurinko on {} with {} calendars of {} events, a mailbox, an address book and two task lists; syncing into {}\n",
        server.base_url(),
        calendars.max(1),
        events,
        db.display()
    );
    let started = Instant::now();
    let report = catch_up_with_progress(&engine, &CancellationToken::new()).await;
    let elapsed = started.elapsed();
    print_summary(&report);
    let stored: u64 = report.results.iter().map(|r| r.report.stats.upserted).sum();
    let requests = fake.requests();
    let count = |e: Endpoint| requests.iter().filter(|r| r.endpoint == e).count();
    outln!(
        "\n{stored} records in {:.2}s: {:.0} records/s; {} requests ({} calendar lists, {} sync starts, {} updated pages, {} deleted pages)\n",
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64().max(1e-9),
        requests.len(),
        count(Endpoint::ListCalendars),
        count(Endpoint::SyncStart),
        count(Endpoint::SyncUpdated),
        count(Endpoint::SyncDeleted),
    );
    // Read off the runtime's threads: the store's calls block.
    let store = engine.store().clone();
    let read = tokio::task::spawn_blocking(move || (store.report(), store.events("demo"))).await;
    let Ok((state, events)) = read else {
        complain("demo: reading the store failed");
        return Exit::Failed;
    };
    match state {
        Ok(state) => output::out(format_args!("{}", render_table(&state, false))),
        Err(e) => complain(e),
    }
    if let Ok(events) = events {
        outln!("\nA few events:");
        for e in events.iter().take(5) {
            outln!(
                "  {:<12} {:<25} {}{}",
                e.calendar_id,
                e.start_time.as_deref().unwrap_or("-"),
                e.subject.as_deref().unwrap_or("(no subject)"),
                if e.all_day { " [all day]" } else { "" }
            );
        }
    }
    outln!("\nInspect it: sqlite3 {} 'SELECT subject, start_time FROM events LIMIT 10'", db.display());
    engine.writer().close().await;
    server.shutdown().await;
    if report.all_succeeded() { Exit::Ok } else { Exit::Failed }
}
