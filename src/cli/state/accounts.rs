//! `state`'s accounts section: per account, whether its latest discovery
//! (calendar, task list and mail folder lists) worked, since when it fails,
//! and why. Above the collections, since an account that cannot reach
//! Aurinko may have no collection at all.

use super::one_line;
use crate::store::AccountReport;

const HEADER: [&str; 6] = ["ACCOUNT", "DISCOVERY", "FAILING SINCE", "FAILURES", "LAST SUCCESS", "LAST ERROR"];

/// The section with its header and a blank line after it; empty when the
/// store knows no account yet.
pub(super) fn render(accounts: &[AccountReport]) -> String {
    if accounts.is_empty() {
        return String::new();
    }
    let dash = || "-".to_string();
    let rows: Vec<[String; 6]> = accounts
        .iter()
        .map(|a| {
            let discovery = match (&a.discovery_error, &a.discovery_success_at) {
                (Some(_), _) => "failing",
                (None, Some(_)) => "ok",
                (None, None) => "-",
            };
            [
                a.name.clone(),
                discovery.to_string(),
                a.discovery_failing_since.clone().unwrap_or_else(dash),
                a.discovery_failures.to_string(),
                a.discovery_success_at.clone().unwrap_or_else(dash),
                a.discovery_error.as_deref().map(|e| one_line(e, 120)).unwrap_or_else(dash),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(HEADER.map(String::from)).chain(rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push('\n');
    out
}
