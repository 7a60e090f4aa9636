//! `state`'s accounts section: per account, whether its latest discovery
//! (calendar, task list and mail folder lists) worked, since when it fails,
//! and why. Above the collections, since an account that cannot reach
//! Aurinko may have no collection at all.

use super::table::{self, Column};
use super::{dash, one_line};
use crate::store::AccountReport;

/// The section with its header and a blank line after it; empty when the
/// store knows no account yet. The error is a column with `wide` only: the
/// default view shows it whole above the tables.
pub(super) fn render(accounts: &[AccountReport], wide: bool) -> String {
    if accounts.is_empty() {
        return String::new();
    }
    let headers = ["ACCOUNT", "DISCOVERY", "FAILING SINCE", "FAILURES", "LAST SUCCESS", "LAST ERROR"];
    let shown = if wide { headers.len() } else { headers.len() - 1 };
    let columns: Vec<Column> =
        headers[..shown].iter().map(|&header| Column { header, shrinks: header == "ACCOUNT" }).collect();
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let discovery = match (&a.discovery_error, &a.discovery_success_at) {
                (Some(_), _) => "failing",
                (None, Some(_)) => "ok",
                (None, None) => "-",
            };
            let mut row = vec![
                a.name.clone(),
                discovery.to_string(),
                a.discovery_failing_since.clone().unwrap_or_else(dash),
                a.discovery_failures.to_string(),
                a.discovery_success_at.clone().unwrap_or_else(dash),
                a.discovery_error.as_deref().map(one_line).unwrap_or_else(dash),
            ];
            row.truncate(shown);
            row
        })
        .collect();
    table::render(&columns, &rows, (!wide).then_some(super::TABLE_WIDTH)) + "\n"
}
