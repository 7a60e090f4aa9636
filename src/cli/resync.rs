//! `resync`: asks for collections to be provisioned again. The rows stay
//! until the new provisioning's first full pass sweeps what it did not
//! return. Safe while the daemon runs: one short transaction, a column only
//! this command writes (see `store::resync`).

use std::path::Path;
use std::sync::Arc;

use clap::ValueEnum;

use super::output::outln;
use super::{Exit, complain};
use crate::config::Config;
use crate::model::Kind;
use crate::model::text::inert;
use crate::store::{Backend, ResyncFilter};

/// A collection kind as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Calendar,
    Email,
    Contacts,
    Tasks,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Calendar => Kind::Calendar,
            KindArg::Email => Kind::Email,
            KindArg::Contacts => Kind::Contacts,
            KindArg::Tasks => Kind::Tasks,
        }
    }
}

pub fn resync(config_path: &Path, filter: ResyncFilter) -> Exit {
    let Some((config, store)) = open_store(config_path) else { return Exit::Usage };
    if let Some(account) = &filter.account
        && !config.accounts.iter().any(|a| &a.name == account)
    {
        complain(format!("resync: no account {} in the configuration{}", inert(account), configured(&config)));
        return Exit::Usage;
    }
    let marked = match store.request_resync(&filter, chrono::Utc::now()) {
        Ok(marked) => marked,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    if marked.is_empty() {
        complain(format!(
            "resync: no synced collection matches{}; `aurinko-sync state` lists them (a collection never synced \
             needs no resync: its first pass provisions it)",
            describe(&filter)
        ));
        return Exit::Usage;
    }
    let noun = if marked.len() == 1 { "collection" } else { "collections" };
    outln!(
        "marked {} {noun} for resync: the next pass (of the running daemon, or the next `run --catch-up`) \
         provisions each again; rows stay until its sweep",
        marked.len()
    );
    for key in &marked {
        outln!("  {}  {}  {}", key.account, key.kind, inert(&key.id));
    }
    Exit::Ok
}

/// The configuration (without reading tokens: none are needed) and the
/// store, opened for writing; a failure is reported.
pub(super) fn open_store(config_path: &Path) -> Option<(Config, Arc<dyn Backend>)> {
    let config = Config::load_without_tokens(config_path).map_err(complain).ok()?;
    let store = super::open_store::for_writing(&config.store, None, config.sync.keep_deleted).map_err(complain).ok()?;
    Some((config, store))
}

/// `(configured: a, b)` for an error about an account name.
pub(super) fn configured(config: &Config) -> String {
    let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    format!(" (configured: {})", names.join(", "))
}

fn describe(filter: &ResyncFilter) -> String {
    let mut text = String::new();
    if let Some(account) = &filter.account {
        text.push_str(&format!(" --account {}", inert(account)));
    }
    if let Some(kind) = filter.kind {
        text.push_str(&format!(" --kind {kind}"));
    }
    if let Some(id) = &filter.collection {
        text.push_str(&format!(" --collection {}", inert(id)));
    }
    if text.is_empty() { " (no collection is synced yet)".to_string() } else { text }
}
