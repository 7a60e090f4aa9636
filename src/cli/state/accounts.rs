//! `state`'s accounts section: per account, whether its latest discovery
//! (calendar, task list and mail folder lists) worked, since when it fails,
//! and why. Above the collections, since an account that cannot reach
//! Aurinko may have no collection at all. `SYNC` says whether the account
//! is configured, found in the app's list, or listed but stopped (a token
//! that is not active, removed from the app), and in a fleet which instance
//! holds it (`app @sync-a-1`); a line under the table says why each stopped
//! one is.

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
    let headers = ["ACCOUNT", "SYNC", "DISCOVERY", "FAILING SINCE", "FAILURES", "LAST SUCCESS", "LAST ERROR"];
    let shown = if wide { headers.len() } else { headers.len() - 1 };
    let columns: Vec<Column> = headers[..shown]
        .iter()
        .map(|&header| Column { header, shrinks: matches!(header, "ACCOUNT" | "SYNC") })
        .collect();
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let discovery = match (&a.discovery_error, &a.discovery_success_at) {
                (Some(_), _) => "failing",
                (None, Some(_)) => "ok",
                (None, None) => "-",
            };
            let sync = match (&a.app_stopped, a.app_listed) {
                (Some(_), _) => "stopped",
                (None, true) => "app",
                (None, false) => "configured",
            };
            // In a fleet, the instance holding it.
            let sync = match &a.lease_owner {
                Some(owner) => format!("{sync} @{}", one_line(owner)),
                None => sync.to_string(),
            };
            let mut row = vec![
                a.name.clone(),
                sync,
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
    let mut text = table::render(&columns, &rows, (!wide).then_some(super::TABLE_WIDTH));
    for a in accounts {
        if let Some(why) = &a.app_stopped {
            let email = a.email.as_deref().map(|e| format!(" ({})", one_line(e))).unwrap_or_default();
            text.push_str(&format!("account {}{email}: not synced by the app: {}\n", a.name, one_line(why)));
        }
    }
    text + "\n"
}
