//! The history of runs (`runs`, `run_collections`): a run is stored in one
//! transaction with its collections, and runs older than their
//! `keep_days` go with it. The statements are SQLite's; PostgreSQL's store
//! runs them with its parameters numbered.

use rusqlite::params;

use super::write::timestamp;
use super::{Store, StoreError};
use crate::model::RunRecord;

pub(super) const INSERT_RUN: &str =
    "INSERT INTO runs (mode, instance, started_at, ended_at, outcome, passes, pages, requests)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING run_id";
pub(super) const INSERT_COLLECTION: &str = "INSERT INTO run_collections (run_id, account, kind, collection_id,
     passes, upserted, deleted, swept, pages, requests, outcome, error)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
/// Their collections go with them (`ON DELETE CASCADE`).
pub(super) const PRUNE: &str = "DELETE FROM runs WHERE ended_at < ?1";

/// The last runs, newest first, with their collections' counts added up.
pub(super) const LAST_RUNS: &str = "SELECT r.run_id, r.mode, r.instance, r.started_at, r.ended_at, r.outcome, r.passes,
       r.pages, r.requests, count(c.run_id), CAST(coalesce(sum(c.upserted), 0) AS BIGINT),
       CAST(coalesce(sum(c.deleted), 0) AS BIGINT), CAST(coalesce(sum(c.swept), 0) AS BIGINT)
     FROM runs r LEFT JOIN run_collections c ON c.run_id = r.run_id
     GROUP BY r.run_id, r.mode, r.instance, r.started_at, r.ended_at, r.outcome, r.passes, r.pages, r.requests
     ORDER BY r.run_id DESC LIMIT ?1";
pub(super) const FAILED_IN_RUN: &str = "SELECT account, kind, collection_id, error FROM run_collections
     WHERE run_id = ?1 AND outcome = 'failed' ORDER BY account, kind, collection_id";

/// One stored run, as `state --runs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredRun {
    pub run_id: i64,
    pub mode: String,
    pub instance: Option<String>,
    pub started_at: String,
    pub ended_at: String,
    pub outcome: String,
    pub passes: i64,
    pub pages: i64,
    pub requests: i64,
    /// Collections with a row: every one of a catch-up; a daemon batch's
    /// that changed something or failed.
    pub collections: i64,
    pub upserted: i64,
    pub deleted: i64,
    pub swept: i64,
    /// The collections whose last pass in the run failed: (account, kind,
    /// collection id, error).
    pub failed: Vec<(String, String, String, Option<String>)>,
}

/// The oldest end a run may have and stay.
pub(super) fn cutoff(run: &RunRecord) -> chrono::DateTime<chrono::Utc> {
    run.ended - chrono::Duration::days(run.keep_days.into())
}

impl Store {
    pub(super) fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(PRUNE, params![timestamp(cutoff(run))])?;
        let run_id: i64 = tx.query_row(
            INSERT_RUN,
            params![
                run.mode.as_str(),
                run.instance,
                timestamp(run.started),
                timestamp(run.ended),
                run.outcome(),
                run.passes as i64,
                run.pages as i64,
                run.requests as i64
            ],
            |r| r.get(0),
        )?;
        {
            let mut insert = tx.prepare(INSERT_COLLECTION)?;
            for c in &run.collections {
                insert.execute(params![
                    run_id,
                    c.key.account,
                    c.key.kind.as_str(),
                    c.key.id,
                    c.passes as i64,
                    c.upserted as i64,
                    c.deleted as i64,
                    c.swept as i64,
                    c.pages as i64,
                    c.requests as i64,
                    c.outcome.as_str(),
                    c.error
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The last `limit` runs, newest first.
    pub fn runs(&self, limit: u32) -> Result<Vec<StoredRun>, StoreError> {
        let conn = self.conn();
        let mut runs = conn
            .prepare(LAST_RUNS)?
            .query_map(params![limit], |r| {
                Ok(StoredRun {
                    run_id: r.get(0)?,
                    mode: r.get(1)?,
                    instance: r.get(2)?,
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    outcome: r.get(5)?,
                    passes: r.get(6)?,
                    pages: r.get(7)?,
                    requests: r.get(8)?,
                    collections: r.get(9)?,
                    upserted: r.get(10)?,
                    deleted: r.get(11)?,
                    swept: r.get(12)?,
                    failed: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut failed = conn.prepare(FAILED_IN_RUN)?;
        for run in &mut runs {
            run.failed = failed
                .query_map(params![run.run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
        }
        Ok(runs)
    }
}
