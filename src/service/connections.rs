//! The listener's connections: at most `cap` open at once, and room for a
//! newcomer even when a flood of idle ones holds them all.
//!
//! A connection is *waiting* while no request of it is being handled: just
//! accepted, idle between keep-alive requests, still dribbling its request
//! head (slowloris), or with a webhook request queued for its turn. When a connection arrives at the cap, the one
//! that has waited longest is closed to make room, as nginx does with idle
//! keep-alive connections. A peer holding any number of idle connections
//! therefore cannot keep `/healthz` or a notification out: those send their
//! request at once and are handled before the flood cycles through the cap.
//! Connections whose request is being handled are never closed this way
//! (those are bounded in time and number by the router's layers); if every
//! connection is in one, the newcomer is turned away.
//!
//! When a burst of connections has drained, the memory it used is given back
//! to the system: glibc keeps freed memory inside its heaps for reuse, so
//! without this a flood would leave the daemon as large as at its peak.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// A burst: at least this many connections open at once...
const BURST: usize = 64;
/// ...that is over once no more than this many are.
const CALM: usize = 8;

pub struct Connections {
    cap: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Ids and waiting turns both come from this counter, so they only grow.
    next: u64,
    open: HashMap<u64, Entry>,
    /// Waiting connections by the turn they started waiting at: oldest first.
    waiting: BTreeMap<u64, u64>,
    /// Whether a burst is under way (see [`BURST`]).
    burst: bool,
}

struct Entry {
    requests: usize,
    /// The key of this connection in `waiting`, while it waits.
    turn: Option<u64>,
    close: CancellationToken,
}

/// An admitted connection. Dropping it gives its place back.
pub struct Conn {
    id: u64,
    connections: Arc<Connections>,
    /// Cancelled when the connection is closed to make room.
    pub closed: CancellationToken,
}

/// One request being handled; the connection waits again when the last
/// of its requests (HTTP/2 has several) is dropped.
pub struct Request {
    conn: Arc<Conn>,
}

/// Why a connection was shed, for `aurinko_sync_listener_shed_total`.
fn count_shed(reason: &'static str) {
    metrics::counter!("aurinko_sync_listener_shed_total", "reason" => reason).increment(1);
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections { cap: cap.max(1), state: Mutex::new(State::default()) })
    }

    /// A place for a new connection: a free one, or the one of the
    /// connection that has waited longest, which is closed. None if every
    /// connection is handling a request.
    pub fn admit(self: &Arc<Self>) -> Option<Conn> {
        let mut state = self.lock();
        if state.open.len() >= self.cap {
            let Some((_, oldest)) = state.waiting.pop_first() else {
                count_shed("refused");
                return None;
            };
            if let Some(entry) = state.open.remove(&oldest) {
                entry.close.cancel();
            }
            count_shed("idle_closed");
        }
        let id = state.next;
        state.next += 1;
        let closed = CancellationToken::new();
        state.open.insert(id, Entry { requests: 0, turn: Some(id), close: closed.clone() });
        state.waiting.insert(id, id);
        state.burst |= state.open.len() >= BURST;
        metrics::gauge!("aurinko_sync_listener_connections").set(state.open.len() as f64);
        Some(Conn { id, connections: self.clone(), closed })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Conn {
    /// Marks a request of this connection as being handled until the
    /// returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> Request {
        let mut state = self.connections.lock();
        let state = &mut *state;
        if let Some(entry) = state.open.get_mut(&self.id) {
            entry.requests += 1;
            if let Some(turn) = entry.turn.take() {
                state.waiting.remove(&turn);
            }
        }
        Request { conn: self.clone() }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let mut state = self.conn.connections.lock();
        let state = &mut *state;
        let turn = state.next;
        if let Some(entry) = state.open.get_mut(&self.conn.id) {
            entry.requests -= 1;
            if entry.requests == 0 {
                entry.turn = Some(turn);
                state.waiting.insert(turn, self.conn.id);
                state.next += 1;
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut state = self.connections.lock();
        if let Some(entry) = state.open.remove(&self.id)
            && let Some(turn) = entry.turn
        {
            state.waiting.remove(&turn);
        }
        metrics::gauge!("aurinko_sync_listener_connections").set(state.open.len() as f64);
        if state.burst && state.open.len() <= CALM {
            state.burst = false;
            drop(state);
            give_memory_back();
        }
    }
}

/// Returns the free memory of the allocator's heaps to the system, off the
/// runtime's threads (it walks every heap).
fn give_memory_back() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(heap_trim::give_back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_waiting_connection_makes_room() {
        let connections = Connections::new(2);
        let first = Arc::new(connections.admit().unwrap());
        let second = Arc::new(connections.admit().unwrap());
        // The first is busy with a request, so the second (waiting) goes.
        let busy = first.request();
        let third = connections.admit().unwrap();
        assert!(second.closed.is_cancelled());
        assert!(!first.closed.is_cancelled());
        // Open now: the first (busy) and the third (waiting), so the third goes.
        let fourth = connections.admit().unwrap();
        assert!(third.closed.is_cancelled());
        // Once the first's request ends it waits again, after the fourth.
        drop(busy);
        let _fifth = connections.admit().unwrap();
        assert!(fourth.closed.is_cancelled());
        assert!(!first.closed.is_cancelled());
    }

    #[test]
    fn when_every_connection_is_handling_a_request_a_newcomer_is_refused() {
        let connections = Connections::new(1);
        let only = Arc::new(connections.admit().unwrap());
        let busy = only.request();
        assert!(connections.admit().is_none());
        drop(busy);
        assert!(connections.admit().is_some());
        assert!(only.closed.is_cancelled());
    }

    #[test]
    fn a_closed_connection_gives_its_place_back() {
        let connections = Connections::new(1);
        let only = connections.admit().unwrap();
        drop(only);
        let next = connections.admit().unwrap();
        assert!(!next.closed.is_cancelled());
    }
}
