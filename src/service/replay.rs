//! Replayed notifications: the signatures of recently accepted ones.
//!
//! A signature covers the timestamp and the body, so two requests with the
//! same one are the same notification: a redelivery, or a captured request
//! sent again. The first wakes its collection; the others within
//! [`WINDOW`] change nothing and are only answered. Only validly signed
//! requests get here, so entries grow with Aurinko's own traffic, never an
//! attacker's; [`CAPACITY`] bounds them anyway, evicting the oldest first
//! (which can only let an old duplicate through, never drop a new
//! notification).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a notification is remembered.
pub const WINDOW: Duration = Duration::from_secs(300);

/// At most this many notifications are remembered (about 100 KiB).
pub const CAPACITY: usize = 2048;

type Signature = [u8; 32];

#[derive(Default)]
pub struct ReplayFilter {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Oldest first; `at` never decreases along the queue.
    order: VecDeque<(Instant, Signature)>,
    signatures: HashSet<Signature>,
}

impl ReplayFilter {
    /// True the first time `signature` is seen within [`WINDOW`] of `now`,
    /// and remembers it; false for a repeat.
    pub fn first_seen(&self, signature: Signature, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Seen { order, signatures } = &mut *seen;
        while order.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= WINDOW) {
            forget_oldest(order, signatures);
        }
        if signatures.contains(&signature) {
            return false;
        }
        if order.len() >= CAPACITY {
            forget_oldest(order, signatures);
        }
        signatures.insert(signature);
        // `now` comes from the caller: keep the queue ordered even if two
        // callers' clocks were read out of order.
        let at = order.back().map_or(now, |(last, _)| now.max(*last));
        order.push_back((at, signature));
        true
    }
}

fn forget_oldest(order: &mut VecDeque<(Instant, Signature)>, signatures: &mut HashSet<Signature>) {
    if let Some((_, oldest)) = order.pop_front() {
        signatures.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(n: usize) -> Signature {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&(n as u64).to_le_bytes());
        s
    }

    #[test]
    fn a_repeat_within_the_window_is_not_first_and_one_after_it_is() {
        let filter = ReplayFilter::default();
        let t0 = Instant::now();
        assert!(filter.first_seen(sig(1), t0));
        assert!(!filter.first_seen(sig(1), t0 + WINDOW / 2));
        assert!(filter.first_seen(sig(2), t0 + WINDOW / 2), "another signature is new");
        assert!(filter.first_seen(sig(1), t0 + WINDOW), "forgotten after the window");
        assert!(!filter.first_seen(sig(2), t0 + WINDOW), "remembered from its own arrival");
    }

    #[test]
    fn entries_stay_bounded_and_the_oldest_go_first() {
        let filter = ReplayFilter::default();
        let t0 = Instant::now();
        for n in 0..CAPACITY * 3 {
            assert!(filter.first_seen(sig(n), t0));
        }
        let seen = filter.seen.lock().unwrap();
        assert_eq!((seen.order.len(), seen.signatures.len()), (CAPACITY, CAPACITY));
        drop(seen);
        assert!(!filter.first_seen(sig(CAPACITY * 3 - 1), t0), "the newest is remembered");
        assert!(filter.first_seen(sig(0), t0), "the oldest was evicted");
    }
}
