//! The fleet's leases and heartbeats in PostgreSQL (see `store::fleet`),
//! and the fencing check each commit makes. Times are the database's
//! (`now()`), so the instances' clocks never have to agree.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_postgres::AsyncMessage;

use super::super::StoreError;
use super::super::fleet::{Fences, Fleet, FleetView, Signal};
use super::{Postgres, refused, tls};

/// A lost `LISTEN` connection is made again after this.
const RELISTEN: Duration = Duration::from_secs(1);

impl Postgres {
    /// The channel the fleet's signals go on: one per schema.
    fn channel(&self) -> String {
        format!("aurinko_sync_{}", self.schema)
    }

    /// Turns fencing on: from now on every commit checks the lease of its
    /// account against `fences`. Once per store.
    pub(super) fn install_fences(&self, fences: Arc<Fences>) -> Result<(), StoreError> {
        self.fences.set(fences).map_err(|_| refused("the store already belongs to a fleet instance".into()))
    }

    pub(super) fn fences(&self) -> Result<&Fences, StoreError> {
        self.fences.get().map(|f| &**f).ok_or_else(|| refused("the store has not joined a fleet".into()))
    }
}

/// The epoch under which `account` may be written in the caller's
/// transaction, or `None` outside a fleet. The lease row is locked (`FOR
/// SHARE`) until the transaction ends, so a takeover waits for this commit
/// and the commit never lands after it; a lease this session no longer
/// holds refuses the write and reports the account lost.
pub(super) async fn check(
    c: &impl GenericClient,
    fences: Option<&Fences>,
    account: &str,
) -> Result<Option<i64>, StoreError> {
    let Some(fences) = fences else { return Ok(None) };
    let fenced = || StoreError::Fenced(account.to_string());
    let Some(epoch) = fences.epoch(account) else { return Err(fenced()) };
    let held = c
        .query_opt(
            "SELECT 1 FROM fleet_leases WHERE account = $1 AND session = $2 AND epoch = $3 FOR SHARE",
            &[&account, &fences.session, &epoch],
        )
        .await?;
    match held {
        Some(_) => Ok(Some(epoch)),
        None => {
            fences.refused(account);
            Err(fenced())
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Fleet for Postgres {
    fn register(&self, host: &str, pid: u32, version: &str, lease: Duration) -> Result<(), StoreError> {
        let fences = self.fences()?;
        let registered = self.block_on(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "INSERT INTO fleet_instances (id, session, host, pid, version, lease_ms, started_at, heartbeat_at)
                     VALUES ($1, $2, $3, $4, $5, $6, now(), now())
                     ON CONFLICT (id) DO UPDATE SET session = excluded.session, host = excluded.host,
                        pid = excluded.pid, version = excluded.version, lease_ms = excluded.lease_ms,
                        started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                     WHERE fleet_instances.session = excluded.session
                        OR fleet_instances.heartbeat_at < now() - $6::bigint * interval '1 millisecond'
                     RETURNING id",
                    &[&fences.instance, &fences.session, &host, &i64::from(pid), &version, &millis(lease)],
                )
                .await?;
            Ok::<_, StoreError>(row.is_some())
        })?;
        match registered {
            true => Ok(()),
            false => Err(StoreError::InstanceIdInUse(fences.instance.clone())),
        }
    }

    fn heartbeat(&self, lease: Duration) -> Result<FleetView, StoreError> {
        let fences = self.fences()?;
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let beat = tx
                .execute(
                    "UPDATE fleet_instances SET heartbeat_at = now() WHERE id = $1 AND session = $2",
                    &[&fences.instance, &fences.session],
                )
                .await?;
            if beat == 0 {
                return Err(refused(format!(
                    "instance {} was unregistered, its id taken by another process",
                    fences.instance
                )));
            }
            let held = tx
                .query(
                    "UPDATE fleet_leases SET expires_at = now() + $2::bigint * interval '1 millisecond',
                        renewed_at = now()
                     WHERE session = $1 RETURNING account, epoch",
                    &[&fences.session, &millis(lease)],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
            let live = tx
                .query(
                    "SELECT id FROM fleet_instances
                     WHERE heartbeat_at > now() - $1::bigint * interval '1 millisecond' ORDER BY id",
                    &[&millis(lease)],
                )
                .await?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect::<Result<Vec<String>, StoreError>>()?;
            tx.commit().await?;
            Ok(FleetView { held, live })
        })
    }

    fn claim(&self, accounts: &[String], want: usize, lease: Duration) -> Result<Vec<(String, i64)>, StoreError> {
        let fences = self.fences()?;
        if want == 0 || accounts.is_empty() {
            return Ok(Vec::new());
        }
        let want = i64::try_from(want).unwrap_or(i64::MAX);
        self.block_on(async {
            let c = self.client().await?;
            // Free leases first, then those expired longest ago; rows
            // another instance is claiming or committing under are skipped.
            let claimed = c
                .query(
                    "WITH free AS (
                        SELECT account FROM fleet_leases
                        WHERE account = ANY($1) AND (session IS NULL OR expires_at < now())
                        ORDER BY expires_at NULLS FIRST, account
                        LIMIT $2
                        FOR UPDATE SKIP LOCKED
                     )
                     UPDATE fleet_leases l SET owner = $3, session = $4, epoch = l.epoch + 1,
                        expires_at = now() + $5::bigint * interval '1 millisecond',
                        acquired_at = now(), renewed_at = now()
                     FROM free WHERE l.account = free.account
                     RETURNING l.account, l.epoch",
                    &[&accounts, &want, &fences.instance, &fences.session, &millis(lease)],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
            for (account, epoch) in &claimed {
                fences.hold(account, *epoch);
            }
            Ok(claimed)
        })
    }

    fn add_accounts(&self, accounts: &[String]) -> Result<(), StoreError> {
        self.block_on(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO fleet_leases (account) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                    &[&accounts],
                )
                .await?;
            Ok(())
        })
    }

    fn release(&self, accounts: &[String]) -> Result<(), StoreError> {
        let fences = self.fences()?;
        for account in accounts {
            fences.forget(account);
        }
        self.block_on(async {
            self.client()
                .await?
                .execute(
                    "UPDATE fleet_leases SET owner = NULL, session = NULL, expires_at = NULL
                     WHERE session = $1 AND account = ANY($2)",
                    &[&fences.session, &accounts],
                )
                .await?;
            Ok(())
        })
    }

    fn leave(&self) -> Result<(), StoreError> {
        let fences = self.fences()?;
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE fleet_leases SET owner = NULL, session = NULL, expires_at = NULL WHERE session = $1",
                &[&fences.session],
            )
            .await?;
            tx.execute(
                "DELETE FROM fleet_instances WHERE id = $1 AND session = $2",
                &[&fences.instance, &fences.session],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn publish(&self, signal: &Signal) -> Result<(), StoreError> {
        let (channel, payload) = (self.channel(), signal.encode());
        self.block_on(async {
            self.client().await?.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]).await?;
            Ok(())
        })
    }

    fn subscribe(&self) -> Result<UnboundedReceiver<Signal>, StoreError> {
        let (sender, receiver) = unbounded_channel();
        let (config, channel, tls) = (self.config.clone(), self.channel(), tls()?);
        let runtime = self.runtime.as_ref().expect("the runtime lives until the store is dropped");
        runtime.spawn(async move {
            // Until nobody listens: each round one connection, until it fails.
            while !sender.is_closed() {
                let connected = config.connect(tls.clone()).await;
                let (client, mut connection) = match connected {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(
                            "fleet: cannot listen for the other instances' signals: {}",
                            super::describe(&e)
                        );
                        tokio::time::sleep(RELISTEN).await;
                        continue;
                    }
                };
                let (messages_to, mut messages) = unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = stream.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if messages_to.send(n.payload().to_string()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                });
                if client.batch_execute(&format!("LISTEN {channel}")).await.is_ok() {
                    // A signal may have gone while no connection listened.
                    let _ = sender.send(Signal::LeasesChanged);
                    while let Some(payload) = messages.recv().await {
                        if let Some(signal) = Signal::decode(&payload)
                            && sender.send(signal).is_err()
                        {
                            break;
                        }
                    }
                }
                pump.abort();
                if !sender.is_closed() {
                    tokio::time::sleep(RELISTEN).await;
                }
            }
        });
        Ok(receiver)
    }
}
