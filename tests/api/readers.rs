//! The README's "Where the data goes next": its pandas and DuckDB code, run
//! as written (the store's path put in) against a synced store, print what
//! the store holds. Needs a Python with `pandas`, `duckdb` and DuckDB's
//! SQLite scanner (`AURINKO_TEST_PYTHON`, default `python3`; `.ci/run`
//! makes one); without it, outside CI, the test says it skipped.
//!
//! DuckDB fetches its SQLite scanner with `INSTALL sqlite`; this machine
//! has no network, so the test puts the scanner from the
//! `duckdb-extension-sqlite-scanner` package (the same signed file) where
//! `INSTALL` finds it already installed, in a home of its own.

use std::path::Path;
use std::process::Command;

use crate::helpers::{Setup, StoreAt, StoreKind, assert_exit, spawn_app_on, text};

const README: &str = include_str!("../../README.md");

/// The ```python block of the README whose first line is `first`.
fn python_block(first: &str) -> String {
    let start = README.find(&format!("```python\n{first}")).unwrap_or_else(|| panic!("README has {first:?}"));
    let body = &README[start + "```python\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

fn python() -> String {
    std::env::var("AURINKO_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the Python has what the README's code imports; under CI it must.
fn python_ready() -> bool {
    let check = "import pandas, duckdb, duckdb_extension_sqlite_scanner";
    let ready = Command::new(python()).args(["-c", check]).output().is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var("CI").is_err(),
            "{} cannot import pandas, duckdb and duckdb_extension_sqlite_scanner (CI must provide them: .ci/run)",
            python()
        );
        eprintln!("*** SKIPPED: {} lacks pandas/duckdb (set AURINKO_TEST_PYTHON) ***", python());
    }
    ready
}

/// Runs `code` with `home` as `HOME`, after putting DuckDB's SQLite
/// scanner where `INSTALL sqlite` finds it installed.
fn run_python(code: &str, home: &Path) -> String {
    let seed = r#"
import os, shutil, duckdb, duckdb_extension_sqlite_scanner as scanner
platform = duckdb.sql("PRAGMA platform").fetchone()[0]
source = os.path.join(os.path.dirname(scanner.__file__), "extensions", "v" + duckdb.__version__,
                      "sqlite_scanner.duckdb_extension")
target = os.path.expanduser(f"~/.duckdb/extensions/v{duckdb.__version__}/{platform}")
os.makedirs(target, exist_ok=True)
shutil.copy(source, target)
"#;
    let seeded = Command::new(python()).args(["-c", seed]).env("HOME", home).output().unwrap();
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let out = Command::new(python()).args(["-c", code]).env("HOME", home).current_dir(home).output().unwrap();
    assert!(out.status.success(), "the README's code failed:\n{code}\n{}", text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_pandas_and_duckdb_code_reads_the_store() {
    if !python_ready() {
        return;
    }
    let Some(app) = spawn_app_on(Setup::default(), StoreKind::Sqlite, "readers").await else { return };
    assert_exit(&app.catch_up().await, 0);
    let StoreAt::Sqlite(path) = &app.store_at else { unreachable!() };
    let db = path.display().to_string();
    let home = tempfile::tempdir().unwrap();
    let store = rusqlite::Connection::open(path).unwrap();
    let count = |sql: &str| -> i64 { store.query_row(sql, [], |r| r.get(0)).unwrap() };

    let pandas = python_block("# pandas").replace("aurinko-sync.db", &db);
    let out = run_python(&pandas, home.path());
    let week = count(
        "SELECT count(*) FROM event_instances WHERE start_time >= date('now', 'weekday 1')
           AND start_time < date('now', 'weekday 1', '+7 days')",
    );
    let attendees = count("SELECT count(*) FROM event_attendees");
    assert!(week > 0 && attendees > 0);
    assert_eq!(out.trim(), format!("{week} instances next week; {attendees} attendee rows"));

    let duckdb = python_block("# DuckDB").replace("aurinko-sync.db", &db);
    let out = run_python(&duckdb, home.path());
    let mut per_calendar = store
        .prepare("SELECT calendar_id || ' ' || count(*) FROM event_instances GROUP BY calendar_id ORDER BY calendar_id")
        .unwrap();
    let expected: Vec<String> = per_calendar.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(!expected.is_empty());
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);

    // DuckDB runs the views' SQL itself: each reads as in SQLite.
    let views = ["event_instances", "event_attendees", "message_recipients", "contact_emails"];
    let every_view = format!(
        "import duckdb\ncon = duckdb.connect()\ncon.load_extension('sqlite')\n\
         con.execute(\"ATTACH '{db}' AS store (TYPE sqlite, READ_ONLY)\")\n\
         for view in {views:?}:\n    print(view, con.sql(f'SELECT count(*) FROM store.{{view}}').fetchone()[0])\n"
    );
    let out = run_python(&every_view, home.path());
    let expected: Vec<String> =
        views.iter().map(|v| format!("{v} {}", count(&format!("SELECT count(*) FROM {v}")))).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}
