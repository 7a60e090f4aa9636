//! `state` for people: any store without a configuration, a table that fits
//! and aligns, failures first, and `--check` for monitoring.

use std::process::Output;

use aurinko_fake::Collection;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};

/// Wide characters: emoji and CJK take two columns each, `é` one.
const WIDE_NAME: &str = "📅 チーム予定 Équipe 日本語のカレンダー for the whole team and its guests";
const CJK_NAME: &str = "日本";

async fn app_with_wide_names() -> TestApp {
    let app = spawn_app(Setup::default()).await;
    let token = app.token("work").to_string();
    for (id, name) in [("cal-wide", WIDE_NAME), ("cal-cjk", CJK_NAME)] {
        app.fake.add_calendar(&token, id, name, false);
        app.fake.generate_events(&token, id, 30);
    }
    assert_exit(&app.catch_up().await, 0);
    app
}

/// The display column each header starts at (headers are ASCII).
fn header_columns(header: &str) -> Vec<(String, usize)> {
    let mut columns = Vec::new();
    let mut at = 0;
    for word in header.split("  ").map(str::trim).filter(|w| !w.is_empty()) {
        let start = at + header[at..].find(word).unwrap();
        columns.push((word.to_string(), start));
        at = start + word.len();
    }
    columns
}

/// The text of `line` between two display columns.
fn between(line: &str, from: usize, to: usize) -> String {
    let mut column = 0;
    let mut out = String::new();
    for c in line.chars() {
        if column >= from && column < to {
            out.push(c);
        }
        column += UnicodeWidthChar::width(c).unwrap_or(0);
    }
    out.trim().to_string()
}

/// Each row's cells, read at the header's display columns.
fn cells(table: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = table.lines().skip_while(|l| !(l.starts_with("ACCOUNT") && l.contains("KIND")));
    let columns = header_columns(lines.next().expect("a header"));
    lines
        .map(|line| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (name, from))| {
                    let to = columns.get(i + 1).map_or(usize::MAX, |(_, next)| *next);
                    (name.clone(), between(line, *from, to))
                })
                .collect()
        })
        .collect()
}

fn cell<'a>(row: &'a [(String, String)], column: &str) -> &'a str {
    &row.iter().find(|(name, _)| name == column).unwrap_or_else(|| panic!("a {column} column")).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_db_reads_a_store_without_a_configuration_and_creates_nothing() {
    let app = app_with_wide_names().await;
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(app.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let before = (files(), std::fs::read(&app.db_path).unwrap());
    // No configuration in the working directory, and one that cannot be
    // read where the environment points: `--db` reads neither.
    let elsewhere = tempfile::tempdir().unwrap();
    let state = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"));
        cmd.args(args).current_dir(elsewhere.path()).env_remove("RUST_LOG");
        cmd.env("AURINKO_SYNC_CONFIG", elsewhere.path().join("no-such.toml"));
        cmd.output().expect("binary runs")
    };
    let db = app.db_path.to_str().unwrap();
    let out = state(&["state", "--db", db]);
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    assert!(table.contains("cal-1") && table.contains("日本") && table.contains("📅"), "{table}");
    let json = state(&["state", "--db", db, "--json"]);
    assert_exit(&json, 0);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["collections"].as_array().unwrap().len(), 4);
    assert_eq!((files(), std::fs::read(&app.db_path).unwrap()), before, "reading created or changed nothing");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    let missing = state(&["state", "--db", "missing.db"]);
    assert_exit(&missing, 2);
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("missing.db") && stderr.contains("does not exist"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "no store was created");
}

async fn state(app: &TestApp, args: &[&str]) -> Output {
    app.run_binary(&[&["state"], args].concat()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_fits_in_100_columns_aligns_wide_characters_and_shows_failures_first() {
    let app = app_with_wide_names().await;
    let token = app.token("work").to_string();
    app.fake.set_delta_refused(&token, &Collection::Calendar("cal-2".into()), true);
    assert_exit(&app.catch_up().await, 1);

    let out = state(&app, &[]).await;
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("1 of 4 collections failing"), "{table}");
    let failure = lines.next().unwrap();
    assert!(failure.starts_with("work/calendar/Calendar cal-2 (1 in a row, last success 20"), "{table}");
    let error = lines.next().unwrap();
    assert!(error.starts_with("    ") && error.contains("HTTP 400"), "the error is right under it:\n{table}");
    for line in table.lines() {
        assert!(line.width() <= 100, "{} columns: {line}\n{table}", line.width());
    }
    let rows = cells(&table);
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(cell(&rows[0], "NAME"), "Calendar cal-2", "the failing one comes first:\n{table}");
    assert_eq!(cell(&rows[0], "FAILURES"), "1", "{table}");
    // Read at the header's display columns, every cell is what it should
    // be: the wide names did not push the columns after them.
    for row in &rows {
        assert_eq!(cell(row, "ACCOUNT"), "work", "{table}");
        assert_eq!(cell(row, "KIND"), "calendar", "{table}");
        assert!(["idle", "draining_updated"].contains(&cell(row, "PHASE")), "{row:?}\n{table}");
        assert!(cell(row, "RECORDS").parse::<u64>().is_ok(), "{row:?}\n{table}");
        assert!(cell(row, "LAST SUCCESS").starts_with("20"), "{row:?}\n{table}");
    }
    let name_of = |id: &str| {
        let row = rows.iter().find(|r| cell(r, "NAME").starts_with(id)).unwrap();
        cell(row, "NAME").to_string()
    };
    assert_eq!(name_of(CJK_NAME), CJK_NAME);
    let cut = name_of("📅");
    assert!(cut.ends_with('…') && WIDE_NAME.starts_with(cut.trim_end_matches('…')), "{cut}\n{table}");
    let (wide_line, plain_line) = (
        table.lines().find(|l| l.contains(CJK_NAME)).unwrap(),
        table.lines().find(|l| l.contains("Calendar cal-1")).unwrap(),
    );
    let phase_at = |line: &str| line.find(" idle ").unwrap();
    assert_ne!(phase_at(wide_line), phase_at(plain_line), "the byte positions differ");
    assert_eq!(wide_line[..phase_at(wide_line)].width(), plain_line[..phase_at(plain_line)].width());

    let wide = text(&state(&app, &["--wide"]).await.stdout);
    assert!(wide.contains(WIDE_NAME) && wide.contains("COLLECTION") && wide.contains("NEXT ATTEMPT"), "{wide}");
    assert!(wide.lines().any(|l| l.width() > 100), "{wide}");
    let rows = cells(&wide);
    assert_eq!(cell(&rows[0], "COLLECTION"), "cal-2", "{wide}");
    assert!(cell(&rows[0], "LAST ERROR").contains("400"), "{wide}");
    assert!(rows[1..].iter().all(|r| cell(r, "PHASE") == "idle" && cell(r, "LAST ERROR") == "-"), "{wide}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_check_exits_1_while_a_collection_fails_and_0_once_none_does() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let out = state(&app, &["--check"]).await;
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "OK: 0 of 2 collections failing\n");

    let token = app.token("work").to_string();
    let cal_1 = Collection::Calendar("cal-1".into());
    app.fake.set_delta_refused(&token, &cal_1, true);
    assert_exit(&app.catch_up().await, 1);
    let out = state(&app, &["--check"]).await;
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "FAILING: 1 of 2 collections failing: work/calendar/Calendar cal-1\n");

    app.fake.set_delta_refused(&token, &cal_1, false);
    assert_exit(&app.catch_up().await, 0);
    assert_exit(&state(&app, &["--check"]).await, 0);
}
