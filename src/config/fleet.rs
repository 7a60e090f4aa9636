//! `[fleet]`: several `aurinko-sync run` instances on one PostgreSQL store
//! share the accounts, each leasing some for `lease_secs` at a time.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, StoreConfig, positive};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// How long a lease lasts unless renewed; renewed every third of it.
    pub lease: Duration,
    /// This instance's id: `run --instance`, else the host name.
    pub instance: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    lease_secs: Option<i64>,
}

pub(super) fn validate_fleet(raw: RawFleet, store: &StoreConfig) -> Result<FleetConfig, ConfigError> {
    if store.sqlite_path().is_some() {
        return Err(ConfigError::at(
            "fleet",
            "several instances share accounts only through PostgreSQL: set store.url (one instance needs no [fleet])",
        ));
    }
    let lease_secs = positive("fleet.lease_secs", raw.lease_secs, 30)?;
    if lease_secs < 3 {
        // Renewed every third of it: a second between renewals at least.
        return Err(ConfigError::at("fleet.lease_secs", format!("must be at least 3, got {lease_secs}")));
    }
    Ok(FleetConfig { lease: Duration::from_secs(lease_secs.into()), instance: default_instance_id() })
}

/// A checked instance id: what the log, `state` and the lease table call
/// this process.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("instance id {:?}: 1 to 64 characters", crate::model::text::inert(id)));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')) {
        return Err(format!(
            "instance id {:?}: use letters, digits, '-', '_', '.' or '@' only",
            crate::model::text::inert(id)
        ));
    }
    Ok(())
}

/// The default instance id: the host name (systemd's `%H`), as the kernel
/// has it.
pub fn default_instance_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| check_instance_id(name).is_ok())
        .unwrap_or_else(|| "aurinko-sync".to_string())
}
