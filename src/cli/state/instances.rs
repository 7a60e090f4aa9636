//! `state`'s fleet section: each instance registered in the store, whether
//! it is live (its heartbeat younger than a lease), how many leases it
//! holds, and its last heartbeat. Empty outside a fleet.

use super::table::{self, Column};
use super::{dash, one_line};
use crate::store::InstanceReport;

pub(super) fn render(instances: &[InstanceReport], wide: bool) -> String {
    if instances.is_empty() {
        return String::new();
    }
    let headers = ["INSTANCE", "LIVE", "LEASES", "HEARTBEAT", "STARTED", "HOST", "PID", "VERSION"];
    let columns: Vec<Column> =
        headers.iter().map(|&header| Column { header, shrinks: matches!(header, "INSTANCE" | "HOST") }).collect();
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            vec![
                one_line(&i.id),
                if i.live { "yes" } else { "no" }.to_string(),
                i.leases.to_string(),
                i.heartbeat_at.clone().unwrap_or_else(dash),
                i.started_at.clone().unwrap_or_else(dash),
                i.host.as_deref().map(one_line).unwrap_or_else(dash),
                i.pid.map(|p| p.to_string()).unwrap_or_else(dash),
                i.version.as_deref().map(one_line).unwrap_or_else(dash),
            ]
        })
        .collect();
    table::render(&columns, &rows, (!wide).then_some(super::TABLE_WIDTH)) + "\n"
}
