//! Per-account politeness: a client-side rate limit and the pause a 429 sets.
//!
//! Aurinko's limits are shared by every collection of an account, so both the
//! token bucket and the "not before" instant live per account and every
//! request of that account waits on them.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// Longest pause a Retry-After may impose; a larger value is a server
/// mistake we should not obey for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(crate) struct Politeness {
    limiter: DefaultDirectRateLimiter,
    not_before: Mutex<Option<Instant>>,
}

impl Politeness {
    pub(crate) fn new(requests_per_second: u32) -> Self {
        let rps = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
        Politeness { limiter: RateLimiter::direct(Quota::per_second(rps)), not_before: Mutex::new(None) }
    }

    /// Waits until this account may send its next request.
    pub(crate) async fn wait_turn(&self) {
        loop {
            let until = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    /// Holds back every request of the account for `delay`.
    pub(crate) fn pause_for(&self, delay: Duration) {
        let until = Instant::now() + delay.min(MAX_RETRY_AFTER);
        let mut slot = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none_or(|t| t < until) {
            *slot = Some(until);
        }
    }
}

/// Reads a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn a_pause_holds_every_request_back() {
        let p = Politeness::new(1000);
        // Taken before the pause starts: a thread descheduled between the
        // two (a busy machine) would otherwise see less than the pause.
        let started = Instant::now();
        p.pause_for(Duration::from_millis(80));
        p.wait_turn().await;
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}
