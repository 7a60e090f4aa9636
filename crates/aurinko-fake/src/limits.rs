//! Server-side rate limit per account token, so clients prove they honour 429 + Retry-After.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A fixed one-second window per token: simple and predictable in tests.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    /// Counts one request of `token`; false when it exceeds `per_sec` in the current window.
    pub fn admit(&mut self, token: &str, per_sec: u32, now: Instant) -> bool {
        let window = self.windows.entry(token.to_string()).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= per_sec {
            return false;
        }
        window.1 += 1;
        true
    }
}
