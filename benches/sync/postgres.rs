//! Scenario 7: the full sync into PostgreSQL, against a PostgreSQL floor
//! measured in the same run. A private server (`private-postgres`) holds a
//! schema per run. The floor: the same rows, parsed beforehand, upserted
//! over one connection by the simplest loop that is still fast, one
//! multi-row `INSERT ... ON CONFLICT DO UPDATE` per page of 100 rows,
//! committing 1, 10 or 100 pages per transaction; the fastest is the floor.
//! Instants and JSON are cast by the server (`::timestamptz`, `::jsonb`),
//! so the floor's client does no more than send text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use private_postgres::PrivatePostgres;

use crate::data::Dataset;
use crate::floor::{PAGES_PER_TRANSACTION, Prepared};
use crate::{Outcome, Problems, ROUNDS, median, row};

/// What scenario 7 measured.
pub struct PostgresRun {
    pub full: Outcome,
    pub floor_rate: f64,
    pub floor_pages: usize,
}

impl PostgresRun {
    pub fn share(&self) -> f64 {
        self.full.events_per_sec() / self.floor_rate
    }
}

/// Runs scenario 7; `None` (said) where PostgreSQL's binaries are missing
/// outside CI.
pub fn scenario(
    runtime: &tokio::runtime::Runtime,
    data: &Arc<Dataset>,
    prepared: &Prepared,
    problems: &mut Problems,
) -> Option<PostgresRun> {
    let server = PrivatePostgres::start("the benchmark's PostgreSQL scenario")?;
    let mut fulls = Vec::with_capacity(ROUNDS);
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); PAGES_PER_TRANSACTION.len()];
    for round in 0..ROUNDS {
        let schema = format!("sync_{round}");
        let (full, _ws, _double) = crate::full_sync_into(runtime, data.clone(), "postgres", &schema, &server, problems);
        let stored = server.psql(&format!("SELECT count(*) FROM {schema}.events"));
        problems.expect_eq("postgres: rows stored", stored.parse().unwrap_or(0), data.events as u64);
        fulls.push(full);
        for (variant, pages) in PAGES_PER_TRANSACTION.iter().enumerate() {
            let schema = format!("floor_{round}_{pages}");
            let (wall, rows) = runtime.block_on(floor(&server, &schema, prepared, *pages));
            problems.expect_eq("postgres floor rows", rows, data.events as u64);
            walls[variant].push(wall);
        }
    }
    let full_walls: Vec<Duration> = fulls.iter().map(|f| f.run.wall).collect();
    let median_wall = median(&full_walls);
    let full = fulls.into_iter().find(|f| f.run.wall == median_wall).expect("the median is one of the runs");
    full.print(&format!(
        "PostgreSQL: full sync of {} events over {} calendars (a fresh schema; the median of {ROUNDS} runs)",
        data.events,
        data.calendars.len()
    ));
    let rate = |wall: Duration| prepared.rows as f64 / wall.as_secs_f64();
    println!("== PostgreSQL floor: the same {} rows, one connection, a multi-row upsert per page", prepared.rows);
    let mut strongest = 0;
    for (variant, pages) in PAGES_PER_TRANSACTION.iter().enumerate() {
        let runs: Vec<String> = walls[variant].iter().map(|w| format!("{:.0}", rate(*w))).collect();
        row(
            &format!("{pages} page(s) per transaction"),
            format!("{:.0} rows/s median (runs: {} rows/s)", rate(median(&walls[variant])), runs.join(", ")),
        );
        if median(&walls[variant]) < median(&walls[strongest]) {
            strongest = variant;
        }
    }
    let floor_rate = rate(median(&walls[strongest]));
    let run = PostgresRun { full, floor_rate, floor_pages: PAGES_PER_TRANSACTION[strongest] };
    row("the floor (fastest median)", format!("{} page(s) per transaction, {floor_rate:.0} rows/s", run.floor_pages));
    row("full sync / floor", format!("{:.1}% (medians)", 100.0 * run.share()));
    println!();
    Some(run)
}

/// The floor's loop into a fresh schema (the store's own migration makes
/// its tables): the elapsed time and the rows stored.
async fn floor(
    server: &PrivatePostgres,
    schema: &str,
    prepared: &Prepared,
    pages_per_transaction: usize,
) -> (Duration, u64) {
    let url = server.url();
    let (url_, schema_) = (url.clone(), schema.to_string());
    tokio::task::spawn_blocking(move || {
        drop(aurinko_sync::store::Postgres::open(&url_, None, &schema_).expect("schema"))
    })
    .await
    .expect("the schema is made");
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connects");
    let connection = tokio::spawn(connection);
    client.batch_execute(&format!("SET search_path = {schema}")).await.expect("search path");
    let synced_at = chrono::Utc::now();
    let mut statements = std::collections::HashMap::new();
    let started = Instant::now();
    let order: Vec<usize> = prepared.in_order();
    for pages in order.chunks(pages_per_transaction) {
        let tx = client.transaction().await.expect("begin");
        for page in pages.iter().map(|i| &prepared.pages[*i]) {
            let n = page.rows.len();
            if let std::collections::hash_map::Entry::Vacant(e) = statements.entry(n) {
                e.insert(tx.prepare(&upsert(n)).await.expect("prepare"));
            }
            let texts: Vec<[Option<&str>; 6]> =
                page.rows.iter().map(|r| [0, 1, 2, 4, 5, 6].map(|i| r.text(i))).collect();
            let flags: Vec<bool> = page.rows.iter().map(|r| r.flag(3).unwrap_or(false)).collect();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(n * 11 + 1);
            params.push(&synced_at);
            for ((r, text), flag) in page.rows.iter().zip(&texts).zip(&flags) {
                params.extend([&page.calendar as &(dyn tokio_postgres::types::ToSql + Sync), &r.id, &r.etag]);
                params.extend([&text[0], &text[1], &text[2]].map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
                params.push(flag);
                params.extend([&text[3], &text[4], &text[5]].map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
                params.push(&r.raw);
            }
            tx.execute(&statements[&n], &params).await.expect("upsert");
        }
        tx.commit().await.expect("commit");
    }
    let wall = started.elapsed();
    let rows: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("count").get(0);
    drop(client);
    let _ = connection.await;
    (wall, rows as u64)
}

/// A multi-row upsert of `n` event rows: `$1` is `synced_at`, then 11
/// values a row (calendar, id, etag, the 7 typed columns, raw).
fn upsert(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|r| {
            let p = |i: usize| format!("${}", 2 + r * 11 + i);
            format!(
                "('bench', {}, {}, {}, {}, {}::text::timestamptz, {}::text::timestamptz, {}, {}::text::timestamptz, {}, {}, {}::text::jsonb, 1, $1)",
                p(0),
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(9),
                p(10)
            )
        })
        .collect();
    format!(
        "INSERT INTO events (account, calendar_id, event_id, etag, subject, start_time, end_time, all_day,
                             last_modified, ical_uid, recurrence_type, raw, generation, synced_at)
         VALUES {}
         ON CONFLICT (account, calendar_id, event_id) DO UPDATE SET
            etag = excluded.etag, subject = excluded.subject, start_time = excluded.start_time,
            end_time = excluded.end_time, all_day = excluded.all_day, last_modified = excluded.last_modified,
            ical_uid = excluded.ical_uid, recurrence_type = excluded.recurrence_type, raw = excluded.raw,
            generation = excluded.generation, synced_at = excluded.synced_at",
        rows.join(", ")
    )
}
