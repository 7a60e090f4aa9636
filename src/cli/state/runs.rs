//! `state --runs`: the last runs the store keeps (`runs`), newest first:
//! when, what made it, how it ended, what it did, and which collections
//! failed in it.

use super::table::{self, Column};
use super::{dash, one_line};
use crate::model::text::inert;
use crate::store::StoredRun;

pub(super) fn render(runs: &[StoredRun], wide: bool) -> String {
    if runs.is_empty() {
        return "no runs stored yet: `run --catch-up` and the daemon's batches (sync.run_batch_secs) add them\n"
            .to_string();
    }
    let headers = [
        "RUN", "STARTED", "ENDED", "MODE", "OUTCOME", "PASSES", "UPSERTED", "DELETED", "SWEPT", "PAGES", "REQUESTS",
        "FAILED",
    ];
    let columns: Vec<Column> = headers.iter().map(|&header| Column { header, shrinks: header == "FAILED" }).collect();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mode = match &r.instance {
                Some(instance) => format!("{} @{}", r.mode, one_line(instance)),
                None => r.mode.clone(),
            };
            let failed: Vec<String> = r
                .failed
                .iter()
                .map(|(account, kind, id, error)| {
                    let what = format!("{}/{}/{}", one_line(account), kind, one_line(id));
                    match error {
                        Some(e) => format!("{what}: {}", one_line(&inert(e))),
                        None => what,
                    }
                })
                .collect();
            vec![
                r.run_id.to_string(),
                r.started_at.clone(),
                r.ended_at.clone(),
                mode,
                r.outcome.clone(),
                r.passes.to_string(),
                r.upserted.to_string(),
                r.deleted.to_string(),
                r.swept.to_string(),
                r.pages.to_string(),
                r.requests.to_string(),
                if failed.is_empty() { dash() } else { failed.join("; ") },
            ]
        })
        .collect();
    table::render(&columns, &rows, (!wide).then_some(super::TABLE_WIDTH)) + "\n"
}
