//! `reset`: drops an account's data from the store, in one transaction.
//! Without `--yes` it only says what it would delete.

use std::path::Path;

use super::output::outln;
use super::resync::{configured, open_store};
use super::{Exit, complain};
use crate::model::text::inert;

pub fn reset(config_path: &Path, account: &str, yes: bool) -> Exit {
    let Some((config, store)) = open_store(config_path) else { return Exit::Usage };
    let is_configured = config.accounts.iter().any(|a| a.name == account);
    let name = inert(account);
    let rows = match store.account_rows(account, is_configured) {
        Ok(rows) => rows,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    if !is_configured && rows.is_empty() {
        complain(format!(
            "reset: the store holds nothing of account {name}, and it is not configured{}",
            configured(&config)
        ));
        return Exit::Usage;
    }
    if !yes {
        outln!("reset would delete from the store, for account {name}:");
        print_rows(&rows.tables);
        print_what_follows(&name, is_configured, rows.collections_reset);
        complain("reset: nothing deleted; run again with --yes to delete");
        return Exit::Usage;
    }
    let deleted = match store.reset_account(account, is_configured, chrono::Utc::now()) {
        Ok(rows) => rows,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    outln!("deleted from the store, for account {name}:");
    print_rows(&deleted.tables);
    print_what_follows(&name, is_configured, deleted.collections_reset);
    Exit::Ok
}

fn print_rows(tables: &[(&str, u64)]) {
    for (table, n) in tables {
        outln!("  {table:<13} {n:>9} rows");
    }
}

fn print_what_follows(name: &str, configured: bool, collections: u64) {
    if configured {
        outln!(
            "account {name} is still configured: its {collections} collections start over, and the next pass (of the \
             running daemon, or the next `run --catch-up`) syncs them afresh"
        );
    } else {
        outln!(
            "account {name} is not configured: nothing of it stays (its webhook subscriptions at Aurinko, if any, \
             are not cancelled)"
        );
    }
}
