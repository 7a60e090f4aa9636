//! The daemon's file descriptors: how many it may open, and how many of
//! them the listener may take.
//!
//! systemd starts services with a soft `RLIMIT_NOFILE` of 1,024 and a hard
//! limit far above it; raising the soft limit to the hard one needs no
//! privilege. The listener then gets at most half of the limit, so however
//! many peers connect, the other half stays for what the service cannot do
//! without: the API client's connections, the store's files and the runtime.

/// The share of the descriptor limit the listener may use: 1 in this many.
const LISTENER_SHARE: u64 = 2;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit where allowed, and
/// returns the soft limit in force (None where it cannot be read).
pub fn raise_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            let current = rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft);
            tracing::warn!(error = %e, limit = ?current, "cannot raise the file descriptor limit; keeping it");
            current
        }
    }
}

/// The listener's connection cap: the configured one, but at most half of
/// the descriptor limit.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else { return configured };
    let share = usize::try_from(limit / LISTENER_SHARE).unwrap_or(usize::MAX).max(1);
    if share < configured {
        tracing::warn!(
            max_connections = configured,
            fd_limit = limit,
            cap = share,
            "server.max_connections is above half the file descriptor limit; the listener takes at most half \
             (raise LimitNOFILE= to allow more)"
        );
    }
    configured.min(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_gets_at_most_half_of_the_descriptors() {
        assert_eq!(connection_cap(1024, Some(1024)), 512);
        assert_eq!(connection_cap(1024, Some(8192)), 1024);
        assert_eq!(connection_cap(100, Some(1024)), 100);
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(1)), 1);
    }
}
