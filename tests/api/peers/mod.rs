//! The hostile-peer suite (issue 12): floods and hostile answers against the
//! real binary, from both sides of it. Each case states what a peer tries,
//! and asserts what must hold while it does: bounded memory (VmRSS read from
//! `/proc`), a working `/healthz` and sync, and a clear error where the
//! peer's input is refused.
//!
//! - `listener`: connection floods, slowloris, oversized and h2c requests.
//! - `responses`: unbounded, endless and compressed-bomb API answers, server
//!   text with control characters, identifiers that are not path segments.
//! - `files`: secrets files and store files that are not what they seem.
//! - `webhook`: validation replies and replayed notifications.

mod files;
mod listener;
mod responses;
mod webhook;

/// The number on a line of `/proc/<pid>/status`, as written there
/// (`VmRSS:` and `VmHWM:` in KiB, `Threads:` a count); `None` once the
/// process is gone.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
