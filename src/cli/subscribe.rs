//! `subscribe`: webhook subscriptions for every synced collection.

use std::path::Path;

use super::output::{errln, outln};
use super::run::open_engine;
use super::{Exit, complain};
use crate::config::Config;

pub async fn subscribe(config_path: &Path) -> Exit {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    let Some(url) = config.webhook.as_ref().and_then(|w| w.public_url.clone()) else {
        complain("webhook.public_url: needed by subscribe (the URL Aurinko posts notifications to)");
        return Exit::Usage;
    };
    let Some(engine) = open_engine(config).await else { return Exit::Usage };
    let summaries = crate::service::subscribe(&engine, &url).await;
    let mut exit = Exit::Ok;
    for s in &summaries {
        match &s.error {
            None => outln!(
                "ok       {}: {} subscriptions to {url} ({} kept, {} created, {} deleted)",
                s.account,
                s.kept + s.created,
                s.kept,
                s.created,
                s.deleted
            ),
            Some(e) => {
                errln!(
                    "failed   {}: {e} ({} kept, {} created, {} deleted before the error)",
                    s.account,
                    s.kept,
                    s.created,
                    s.deleted
                );
                exit = Exit::Failed;
            }
        }
    }
    exit
}
