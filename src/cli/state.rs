//! `state`: what the store knows, read-only, failures first.

mod accounts;
mod instances;
mod runs;

use std::path::{Path, PathBuf};

use super::output::{self, outln};
use super::table::{self, Column};
use super::{Exit, complain};
use crate::config::Config;
use crate::model::text::{inert, inert_json};
use crate::store::{AccountReport, CollectionReport, Report};

/// The default table's width: a terminal's 80 columns and some, and what
/// fits in an e-mail or a ticket. `--wide` has no limit.
pub const TABLE_WIDTH: usize = 100;

/// What `state` was asked for.
pub struct StateArgs {
    /// Read this store, without a configuration.
    pub db: Option<PathBuf>,
    pub json: bool,
    pub wide: bool,
    pub check: bool,
    /// The last runs instead, this many.
    pub runs: Option<u32>,
}

pub fn state(config_path: &Path, args: StateArgs) -> Exit {
    let store = match args.db {
        Some(path) => super::open_store::sqlite_for_reading(&path),
        None => match Config::load_without_tokens(config_path) {
            Ok(config) => super::open_store::for_reading(&config.store),
            Err(e) => {
                complain(e);
                return Exit::Usage;
            }
        },
    };
    if let Some(limit) = args.runs {
        return show_runs(store.and_then(|s| s.runs(limit)), args.json, args.wide);
    }
    let mut report = match store.and_then(|s| s.report()) {
        Ok(report) => report,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    make_inert(&mut report);
    if args.check {
        let summary = summary(&report);
        let failing = summary.failing();
        outln!("{}", summary.check_line(&report));
        return if failing { Exit::Failed } else { Exit::Ok };
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => outln!("{}", inert_json(&text)),
            Err(e) => {
                complain(e);
                return Exit::Failed;
            }
        }
    } else {
        output::out(format_args!("{}", render_table(&report, args.wide)));
    }
    Exit::Ok
}

fn show_runs(runs: Result<Vec<crate::store::StoredRun>, crate::store::StoreError>, json: bool, wide: bool) -> Exit {
    let runs = match runs {
        Ok(runs) => runs,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    if json {
        match serde_json::to_string_pretty(&runs) {
            Ok(text) => outln!("{}", inert_json(&text)),
            Err(e) => {
                complain(e);
                return Exit::Failed;
            }
        }
    } else {
        output::out(format_args!("{}", runs::render(&runs, wide)));
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

/// An account whose collections cannot sync (its token is refused) or
/// whose latest discovery failed.
fn account_failing(account: &AccountReport) -> bool {
    account.auth_error.is_some() || account.discovery_error.is_some()
}

/// A collection whose last pass failed (removed ones are done).
fn collection_failing(c: &CollectionReport) -> bool {
    c.consecutive_failures > 0 && c.phase != "removed"
}

struct Summary {
    accounts: usize,
    failing_accounts: usize,
    collections: usize,
    failing_collections: usize,
}

fn summary(report: &Report) -> Summary {
    Summary {
        accounts: report.accounts.len(),
        failing_accounts: report.accounts.iter().filter(|a| account_failing(a)).count(),
        collections: report.collections.len(),
        failing_collections: report.collections.iter().filter(|c| collection_failing(c)).count(),
    }
}

impl Summary {
    fn failing(&self) -> bool {
        self.failing_accounts + self.failing_collections > 0
    }

    /// "2 of 40 collections failing", with the accounts when any fails.
    fn line(&self) -> String {
        let collections = format!("{} of {} collections failing", self.failing_collections, self.collections);
        if self.failing_accounts == 0 {
            return collections;
        }
        format!("{} of {} accounts and {collections}", self.failing_accounts, self.accounts)
    }

    /// `state --check`'s one line: OK or FAILING, the counts, and the
    /// first few failing accounts and collections by name.
    fn check_line(&self, report: &Report) -> String {
        if !self.failing() {
            return format!("OK: {}", self.line());
        }
        const NAMED: usize = 3;
        let mut names: Vec<String> = report
            .accounts
            .iter()
            .filter(|a| account_failing(a))
            .map(|a| format!("account {}", a.name))
            .chain(report.collections.iter().filter(|c| collection_failing(c)).map(|c| label(c, 30)))
            .collect();
        let more = names.len().saturating_sub(NAMED);
        names.truncate(NAMED);
        if more > 0 {
            names.push(format!("{more} more"));
        }
        format!("FAILING: {}: {}", self.line(), names.join(", "))
    }
}

/// A collection as people know it: its name, else its id.
fn display_name(c: &CollectionReport) -> String {
    c.name.clone().unwrap_or_else(|| inert(&c.id).into_owned())
}

/// `account/kind/name`, the name cut to `max` columns.
fn label(c: &CollectionReport, max: usize) -> String {
    format!("{}/{}/{}", c.account, c.kind, table::truncate(&display_name(c), max))
}

/// The summary; what fails, one entry each, its error whole (wrapped to
/// [`TABLE_WIDTH`] unless `wide`); the accounts' discovery; then one row per
/// collection, failing ones first. Fits in [`TABLE_WIDTH`] columns unless
/// `wide`, which shows every column whole. The default tables have no error
/// column: the errors are above, with the width of the screen for them.
pub(super) fn render_table(report: &Report, wide: bool) -> String {
    let max_width = (!wide).then_some(TABLE_WIDTH);
    let mut out = summary(report).line() + "\n";
    for (what, error) in failures(report) {
        out.push_str(&match max_width {
            Some(max) => table::truncate(&what, max).into_owned(),
            None => what,
        });
        out.push('\n');
        let indent = "    ";
        match max_width {
            Some(max) => {
                let options = textwrap::Options::new(max).initial_indent(indent).subsequent_indent(indent);
                for line in textwrap::wrap(&error, options) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            None => out.push_str(&format!("{indent}{error}\n")),
        }
    }
    out.push('\n');
    out.push_str(&instances::render(&report.instances, wide));
    out.push_str(&accounts::render(&report.accounts, wide));
    if report.collections.is_empty() {
        out.push_str("(nothing synced yet)\n");
        return out;
    }
    let mut collections: Vec<&CollectionReport> = report.collections.iter().collect();
    // Stable: within each group, the store's order (account, kind, id).
    collections.sort_by_key(|c| !collection_failing(c));
    let (columns, rows) = if wide { wide_rows(&collections) } else { narrow_rows(&collections) };
    out.push_str(&table::render(&columns, &rows, max_width));
    out
}

/// One entry per failing account and collection: what and since when, and
/// why (the error, on lines of its own).
fn failures(report: &Report) -> Vec<(String, String)> {
    let error = |e: &Option<String>| one_line(e.as_deref().unwrap_or("failed"));
    let mut failures = Vec::new();
    for a in &report.accounts {
        if a.auth_error.is_some() {
            let since = a.auth_error_at.as_deref().unwrap_or("?");
            failures.push((format!("account {}: token refused since {since}:", a.name), error(&a.auth_error)));
        }
        if a.discovery_error.is_some() {
            let since = a.discovery_failing_since.as_deref().unwrap_or("?");
            let what =
                format!("account {}: discovery failing since {since} ({} in a row):", a.name, a.discovery_failures);
            failures.push((what, error(&a.discovery_error)));
        }
    }
    for c in report.collections.iter().filter(|c| collection_failing(c)) {
        let last = c.last_success_at.as_deref().map_or("never".to_string(), to_the_minute);
        let what = format!("{} ({} in a row, last success {last}):", label(c, 40), c.consecutive_failures);
        failures.push((what, error(&c.last_error)));
    }
    failures
}

fn dash() -> String {
    "-".to_string()
}

/// What tells a working collection from a broken one; its error is above.
fn narrow_rows(collections: &[&CollectionReport]) -> (Vec<Column>, Vec<Vec<String>>) {
    let columns = vec![
        Column { header: "ACCOUNT", shrinks: true },
        Column { header: "KIND", shrinks: false },
        Column { header: "NAME", shrinks: true },
        Column { header: "PHASE", shrinks: false },
        Column { header: "RECORDS", shrinks: false },
        Column { header: "FAILURES", shrinks: false },
        Column { header: "LAST SUCCESS", shrinks: false },
    ];
    let rows = collections
        .iter()
        .map(|c| {
            vec![
                c.account.clone(),
                c.kind.clone(),
                display_name(c),
                c.phase.clone(),
                c.records.to_string(),
                c.consecutive_failures.to_string(),
                c.last_success_at.as_deref().map(to_the_minute).unwrap_or_else(dash),
            ]
        })
        .collect();
    (columns, rows)
}

/// Every column the store has, each cell whole.
fn wide_rows(collections: &[&CollectionReport]) -> (Vec<Column>, Vec<Vec<String>>) {
    let columns = [
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
    ]
    .into_iter()
    .map(|header| Column { header, shrinks: false })
    .collect();
    let rows = collections
        .iter()
        .map(|c| {
            vec![
                c.account.clone(),
                c.kind.clone(),
                inert(&c.id).into_owned(),
                c.name.clone().unwrap_or_else(dash),
                c.phase.clone(),
                c.records.to_string(),
                c.outside_window.map(|n| n.to_string()).unwrap_or_else(dash),
                match (&c.window_min, &c.window_max) {
                    (Some(a), Some(b)) => format!("{}..{}", day(a), day(b)),
                    _ => dash(),
                },
                c.last_success_at.clone().unwrap_or_else(dash),
                c.consecutive_failures.to_string(),
                c.next_attempt_at.clone().unwrap_or_else(dash),
                match (&c.reprovision_reason, &c.reprovisioned_at) {
                    (Some(why), Some(at)) => format!("{at} {why}"),
                    _ => dash(),
                },
                c.subscription_status.as_deref().map(one_line).unwrap_or_else(dash),
                c.last_error.as_deref().map(one_line).unwrap_or_else(dash),
            ]
        })
        .collect();
    (columns, rows)
}

/// `2026-12-01T00:25:28Z` as `2026-12-01 00:25` (UTC, as every time here).
fn to_the_minute(t: &str) -> String {
    t.get(..16).map_or_else(|| t.to_string(), |minute| minute.replacen('T', " ", 1))
}

/// The date of a timestamp.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

/// Escaped text holds no controls; whitespace runs are one space here.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
