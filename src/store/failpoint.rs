//! A test-only crash point between a page's rows and its token, so the
//! integration tests can prove every time (not only when a SIGKILL happens
//! to land there) that a page's rows and the token after it commit together.
//!
//! `AURINKO_SYNC_FAILPOINT=<point>:<n>` kills the process with SIGKILL (no
//! unwinding, no destructors, no rollback: as an operator's `kill -9` or the
//! OOM killer would) the n-th time the process reaches `point`:
//!
//! - `after-rows`: right after a page's rows (upserts or deletions) are
//!   written;
//! - `before-token`: right before a collection's state (its tokens) is
//!   written.
//!
//! Both sit in the functions that do those writes, not in the order a
//! commit calls them, so they stay between the rows and the token however
//! the two are split: a token committed on its own before the rows shows at
//! `after-rows`, rows committed on their own before the token at
//! `before-token`. If a page and its token share one transaction, neither
//! crash leaves a trace of the page.
//!
//! Only debug builds (what `cargo test` runs) have it: in a release build
//! [`reached`] is empty and the variable is not read, nor its name in the
//! binary.

/// Where in a page's write the process may be killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Point {
    AfterRows,
    BeforeToken,
}

#[cfg(debug_assertions)]
pub(super) fn reached(point: Point) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static ARMED: OnceLock<Option<(Point, u64)>> = OnceLock::new();
    static PAGES: AtomicU64 = AtomicU64::new(0);
    // Read once: an unknown or malformed value arms nothing (the tests that
    // set it assert the process died by SIGKILL).
    let armed = ARMED.get_or_init(|| {
        let value = std::env::var("AURINKO_SYNC_FAILPOINT").ok()?;
        let (name, n) = value.split_once(':')?;
        let point = match name {
            "after-rows" => Point::AfterRows,
            "before-token" => Point::BeforeToken,
            _ => return None,
        };
        Some((point, n.parse().ok()?))
    });
    let Some((armed, n)) = *armed else { return };
    if armed == point && PAGES.fetch_add(1, Ordering::Relaxed) + 1 == n {
        die();
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(super) fn reached(_point: Point) {}

#[cfg(debug_assertions)]
fn die() -> ! {
    #[cfg(unix)]
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}
