//! What a fleet ([fleet]: several instances on one PostgreSQL store) needs
//! from the store: registering the instance and its heartbeat, leasing
//! accounts, and fencing, the check every commit makes that this instance
//! still holds the lease it wrote under.
//!
//! [`Fences`] is this instance's side of the fencing: the epoch of each
//! lease it holds. A commit of an account's data carries that epoch into
//! its transaction, where the store compares it with the lease's row; a
//! refusal means another instance has taken the account over, and the
//! account is reported on the `lost` channel so the fleet stops it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::StoreError;
use crate::model::{CollectionKey, Kind};

/// This instance's leases, as commits check them.
pub struct Fences {
    pub instance: String,
    /// Random per process: tells this process from an earlier one with the
    /// same instance id.
    pub session: String,
    held: Mutex<HashMap<String, i64>>,
    lost: UnboundedSender<String>,
}

impl Fences {
    /// Fences for `instance`, and the channel on which accounts whose
    /// commit was refused (the lease taken over) are reported.
    pub fn new(instance: &str) -> (Fences, UnboundedReceiver<String>) {
        let (lost, receiver) = unbounded_channel();
        let session = new_session();
        (Fences { instance: instance.to_string(), session, held: Mutex::new(HashMap::new()), lost }, receiver)
    }

    /// Records the lease of `account` at `epoch` as held.
    pub fn hold(&self, account: &str, epoch: i64) {
        self.lock().insert(account.to_string(), epoch);
    }

    /// Forgets a lease (released, or found lost).
    pub fn forget(&self, account: &str) {
        self.lock().remove(account);
    }

    /// The epoch of the lease held on `account`, if any.
    pub fn epoch(&self, account: &str) -> Option<i64> {
        self.lock().get(account).copied()
    }

    /// A commit of `account` was refused: the lease is gone.
    pub(super) fn refused(&self, account: &str) {
        if self.lock().remove(account).is_some() {
            let _ = self.lost.send(account.to_string());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 128 random bits, hex: a process's session id.
fn new_session() -> String {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{a:016x}{b:016x}")
}

/// What the instance learns at each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetView {
    /// The leases this session still holds, renewed, with their epochs.
    pub held: Vec<(String, i64)>,
    /// The ids of the instances whose heartbeat is younger than a lease,
    /// this one included, in order.
    pub live: Vec<String>,
}

/// The fleet's operations on the store, each one short transaction (and
/// blocking: call them off the runtime's threads).
pub trait Fleet: Send + Sync {
    /// Registers this instance; refused while another live process (a
    /// heartbeat younger than `lease`) holds the same id.
    fn register(&self, host: &str, pid: u32, version: &str, lease: Duration) -> Result<(), StoreError>;

    /// Renews the heartbeat and every lease this session holds for another
    /// `lease`, and counts the live instances.
    fn heartbeat(&self, lease: Duration) -> Result<FleetView, StoreError>;

    /// Makes sure each of `accounts` has a lease row (free until claimed).
    fn add_accounts(&self, accounts: &[String]) -> Result<(), StoreError>;

    /// Claims up to `want` of `accounts` that nobody holds (or whose lease
    /// expired), for `lease`; returns them with their new epochs. Accounts
    /// without a lease row ([`add_accounts`](Fleet::add_accounts)) are not
    /// claimed.
    fn claim(&self, accounts: &[String], want: usize, lease: Duration) -> Result<Vec<(String, i64)>, StoreError>;

    /// Gives leases up at once, so another instance may claim them.
    fn release(&self, accounts: &[String]) -> Result<(), StoreError>;

    /// A clean stop: every lease released and the instance unregistered.
    fn leave(&self) -> Result<(), StoreError>;

    /// Tells every instance (this one too) `signal`, at once.
    fn publish(&self, signal: &Signal) -> Result<(), StoreError>;

    /// What the instances publish, from a connection of its own that is
    /// made again when lost; ends when the receiver is dropped.
    fn subscribe(&self) -> Result<UnboundedReceiver<Signal>, StoreError>;
}

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Leases were released or an instance came or went: claim now rather
    /// than at the next tick.
    LeasesChanged,
    /// A webhook notification for a collection, received by some instance:
    /// its holder syncs it now.
    Nudge(CollectionKey),
}

impl Signal {
    /// The payload as sent: `leases`, or `nudge` and the key as JSON.
    pub(super) fn encode(&self) -> String {
        match self {
            Signal::LeasesChanged => "leases".to_string(),
            Signal::Nudge(key) => {
                format!("nudge {}", serde_json::json!([key.account, key.kind.as_str(), key.id]))
            }
        }
    }

    /// `None` for a payload this version does not know.
    pub(super) fn decode(payload: &str) -> Option<Signal> {
        if payload == "leases" {
            return Some(Signal::LeasesChanged);
        }
        let json = payload.strip_prefix("nudge ")?;
        let (account, kind, id): (String, String, String) = serde_json::from_str(json).ok()?;
        Some(Signal::Nudge(CollectionKey { account, kind: Kind::parse(&kind)?, id }))
    }
}
