//! `state`: what the store knows, read-only.

mod accounts;

use std::path::Path;

use super::{Exit, complain};
use crate::config::Config;
use crate::store::{Report, Store};
use crate::text::{inert, inert_json};

pub fn state(config_path: &Path, json: bool) -> Exit {
    let config = match Config::load_without_tokens(config_path) {
        Ok(config) => config,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    let mut report = match Store::open_read_only(&config.store.path).and_then(|s| s.report()) {
        Ok(report) => report,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    make_inert(&mut report);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{}", inert_json(&text)),
            Err(e) => {
                complain(e);
                return Exit::Failed;
            }
        }
    } else {
        print!("{}", render_table(&report));
    }
    Exit::Ok
}

/// Server text the store holds (errors, names, subscription states),
/// escaped for display: the client escapes it as it arrives, and this
/// covers rows written before it did. Ids stay exact in `--json` (JSON
/// escapes their control characters) and are escaped in the table.
fn make_inert(report: &mut Report) {
    let clean = |text: &mut Option<String>| {
        if let Some(t) = text {
            *t = inert(t).into_owned();
        }
    };
    for account in &mut report.accounts {
        clean(&mut account.auth_error);
        clean(&mut account.discovery_error);
    }
    for c in &mut report.collections {
        clean(&mut c.name);
        clean(&mut c.last_error);
        clean(&mut c.subscription_status);
    }
}

pub(super) fn render_table(report: &Report) -> String {
    let mut out = String::new();
    for account in report.accounts.iter().filter(|a| a.auth_error.is_some()) {
        out.push_str(&format!(
            "account {}: token refused since {}: {}\n",
            account.name,
            account.auth_error_at.as_deref().unwrap_or("?"),
            account.auth_error.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&accounts::render(&report.accounts));
    let header = [
        "ACCOUNT",
        "KIND",
        "COLLECTION",
        "NAME",
        "PHASE",
        "RECORDS",
        "OUTSIDE",
        "WINDOW",
        "LAST SUCCESS",
        "FAILURES",
        "NEXT ATTEMPT",
        "REPROVISIONED",
        "WEBHOOK",
        "LAST ERROR",
    ];
    let dash = || "-".to_string();
    let rows: Vec<[String; 14]> = report
        .collections
        .iter()
        .map(|c| {
            [
                c.account.clone(),
                c.kind.clone(),
                inert(&c.id).into_owned(),
                c.name.clone().unwrap_or_else(dash),
                c.phase.clone(),
                c.records.to_string(),
                c.outside_window.map(|n| n.to_string()).unwrap_or_else(dash),
                match (&c.window_min, &c.window_max) {
                    (Some(a), Some(b)) => format!("{}..{}", &a[..a.len().min(10)], &b[..b.len().min(10)]),
                    _ => dash(),
                },
                c.last_success_at.clone().unwrap_or_else(dash),
                c.consecutive_failures.to_string(),
                c.next_attempt_at.clone().unwrap_or_else(dash),
                match (&c.reprovision_reason, &c.reprovisioned_at) {
                    (Some(why), Some(at)) => format!("{at} {why}"),
                    _ => dash(),
                },
                c.subscription_status.as_deref().map(|s| one_line(s, 40)).unwrap_or_else(dash),
                c.last_error.as_deref().map(|e| one_line(e, 80)).unwrap_or_else(dash),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&header.map(String::from)));
    for row in &rows {
        out.push_str(&line(row));
    }
    if rows.is_empty() {
        out.push_str("(nothing synced yet)\n");
    }
    out
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() > max { flat.chars().take(max - 1).collect::<String>() + "…" } else { flat }
}
