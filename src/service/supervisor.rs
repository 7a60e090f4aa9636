//! One supervisor per account: refreshes the calendar and task lists every
//! `discovery_interval`, starts an actor for each new collection and stops
//! the actors of calendars and task lists that are gone. A refused token stops the whole
//! account until the next start.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::actor;
use super::health::Health;
use super::nudge::Nudges;
use crate::aurinko::AccountClient;
use crate::config::{AccountConfig, Credential};
use crate::model::CollectionKey;
use crate::store::Change;
use crate::sync::Engine;

pub async fn supervise(
    engine: Arc<Engine>,
    account: AccountConfig,
    client: AccountClient,
    health: Arc<Health>,
    nudges: Arc<Nudges>,
    cancel: CancellationToken,
) {
    let (account, client) = (&account, &client);
    let mut account_id_known = engine.config().webhook.is_none();
    if let Credential::App { account_id } = account.credential {
        // The app acts for it by this id: no need to ask.
        nudges.learn_account(account_id, &account.name);
        account_id_known = true;
    }
    // Cancelled by shutdown, or by an actor whose pass found the token refused.
    let account_cancel = cancel.child_token();
    let actors = TaskTracker::new();
    // Each actor's stop token, its task to wait for before a purge, and its
    // nudge, to take back when it stops.
    let mut running: HashMap<CollectionKey, (CancellationToken, JoinHandle<()>, Arc<Notify>)> = HashMap::new();
    let interval = engine.config().sync.discovery_interval;
    loop {
        let plan = engine.plan(account, client).await;
        health.discovered(&account.name, plan.discovery_error.as_ref().map(ToString::to_string));
        if plan.auth_refused().is_some() {
            account_cancel.cancel();
            break;
        }
        if !account_id_known {
            // Notifications name accounts by Aurinko's id; learn it once.
            account_id_known = learn_account_id(&engine, account, client, &nudges).await;
        }
        for collection in &plan.collections {
            if running.contains_key(&collection.key) {
                continue;
            }
            let stop = account_cancel.child_token();
            let nudge = nudges.register(&collection.key);
            let task = actors.spawn(actor::run(
                engine.clone(),
                collection.clone(),
                client.clone(),
                health.clone(),
                nudge.clone(),
                account_cancel.clone(),
                stop.clone(),
            ));
            running.insert(collection.key.clone(), (stop, task, nudge));
        }
        // Calendars and task lists no longer listed: stop their actors, and
        // once they have stopped (every write of theirs sent to the writer),
        // purge them. A kind whose listing failed keeps its actors.
        let gone =
            running.extract_if(|key, _| plan.is_complete(key.kind) && !plan.collections.iter().any(|c| &c.key == key));
        let mut stopping = Vec::new();
        for (key, (stop, task, nudge)) in gone {
            tracing::info!(collection = %key, "{} gone: stopping its actor", key.kind.noun());
            stop.cancel();
            health.forget(&key);
            nudges.unregister_own(&key, &nudge);
            stopping.push(task);
        }
        for task in stopping {
            let _ = task.await;
        }
        engine.purge(&plan.vanished).await;
        tokio::select! {
            _ = account_cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    if !cancel.is_cancelled() && account_cancel.is_cancelled() {
        tracing::error!(account = %account.name, "token refused: the account's collections stop until restart");
        health.account_refused(&account.name);
    }
    actors.close();
    actors.wait().await;
    // Notifications for a stopped account must not go to its dead actors:
    // in a fleet they go on to the instance holding it now.
    for (key, (_, _, nudge)) in running {
        nudges.unregister_own(&key, &nudge);
    }
}

async fn learn_account_id(engine: &Engine, account: &AccountConfig, client: &AccountClient, nudges: &Nudges) -> bool {
    match client.account_id().await {
        Ok(id) => {
            nudges.learn_account(id, &account.name);
            let change = Change::AccountId { account: account.name.clone(), aurinko_id: id };
            if let Err(e) = engine.writer().change(change).await {
                tracing::error!(account = %account.name, "cannot store the account id: {e}");
            }
            true
        }
        Err(e) => {
            tracing::warn!(account = %account.name, "cannot learn the Aurinko account id (webhooks for it wait): {e}");
            false
        }
    }
}
