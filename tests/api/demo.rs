//! `demo` does what its options say: each changes what is synced or where.

use std::process::Stdio;

/// Events per calendar of each calendar in the store at `db`.
fn events_per_calendar(db: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut query = conn.prepare("SELECT count(*) FROM events GROUP BY calendar_id ORDER BY calendar_id").unwrap();
    query.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[tokio::test]
async fn demo_uses_each_of_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"))
        .args(["demo", "--events", "7", "--calendars", "2", "--db", "elsewhere.db"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("aurinko-demo.db").exists(), "--db is where the store goes");
    assert_eq!(events_per_calendar(&dir.path().join("elsewhere.db")), vec![7, 7], "--calendars 2 of --events 7");
}
