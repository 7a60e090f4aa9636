//! Refused webhook requests: every one counted, few logged.
//!
//! Anyone who reaches the listener can send refused requests as fast as it
//! likes, so a line per request would let them flood the journal. Each
//! refusal is counted in `aurinko_sync_webhook_refused_total{reason}`; the
//! log gets at most one line per reason every [`LOG_EVERY`], saying how many
//! refusals for that reason went unlogged since the previous line.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

/// At most one log line per reason this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Refusals {
    /// Per reason (a fixed set of names): when it was last logged, and how
    /// many refusals were not logged since.
    logged: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Refusals {
    pub fn record(&self, status: StatusCode, reason: &'static str) {
        metrics::counter!("aurinko_sync_webhook_refused_total", "reason" => reason).increment(1);
        if let Some(unlogged) = self.due(reason, Instant::now()) {
            tracing::warn!(status = status.as_u16(), reason, unlogged, "webhook request refused");
        }
    }

    /// `Some(refusals not logged since the last line)` when this one is to
    /// be logged.
    fn due(&self, reason: &'static str, now: Instant) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        match logged.get_mut(reason) {
            Some((last, unlogged)) if now.saturating_duration_since(*last) < LOG_EVERY => {
                *unlogged += 1;
                None
            }
            Some((last, unlogged)) => {
                *last = now;
                Some(std::mem::take(unlogged))
            }
            None => {
                logged.insert(reason, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_period_with_the_count_it_left_out() {
        let refusals = Refusals::default();
        let t0 = Instant::now();
        assert_eq!(refusals.due("bad_signature", t0), Some(0));
        for _ in 0..500 {
            assert_eq!(refusals.due("bad_signature", t0 + LOG_EVERY / 2), None);
        }
        assert_eq!(refusals.due("unsigned", t0 + LOG_EVERY / 2), Some(0), "reasons are apart");
        assert_eq!(refusals.due("bad_signature", t0 + LOG_EVERY), Some(500));
        assert_eq!(refusals.due("bad_signature", t0 + LOG_EVERY), None);
        assert_eq!(refusals.due("bad_signature", t0 + LOG_EVERY * 3), Some(1));
    }
}
