//! systemd notifications. Without `NOTIFY_SOCKET` (not under systemd, or
//! `Type=simple`) every call is a no-op.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::health::Health;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("systemd notification failed: {e}");
    }
}

/// Configuration loaded, store open and migrated, listener bound.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The service loop's pulse: the heartbeat `/healthz` reads, `WATCHDOG=1`
/// at half the watchdog interval when `WatchdogSec` is set, and `STATUS=`
/// whenever the summary changes.
pub async fn tick(health: Arc<Health>, cancel: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let period = watchdog.map_or(Duration::from_secs(1), |w| w.min(Duration::from_secs(1)));
    let mut last_status = String::new();
    let mut interval = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        health.beat();
        if watchdog.is_some() {
            send(&[NotifyState::Watchdog]);
        }
        let status = health.status_line();
        if status != last_status {
            send(&[NotifyState::Status(&status)]);
            last_status = status;
        }
    }
}
