//! A request held on purpose: the next `GET .../sync/updated` of one
//! calendar waits until the test releases it, so a test can act while a
//! pass is known to be under way (see [`FakeAurinko::hold_next_page`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::FakeAurinko;

#[derive(Default)]
struct HoldState {
    arrived: AtomicBool,
    arrival: Notify,
    released: AtomicBool,
    release: Notify,
    /// The client hung up while the request was held (hyper dropped it).
    abandoned: AtomicBool,
}

/// The test's side of a held request.
#[derive(Clone)]
pub struct PageHold(Arc<HoldState>);

/// The fake's side: which calendar's next page is held.
pub(crate) struct Held {
    calendar_id: String,
    state: Arc<HoldState>,
}

impl PageHold {
    /// Waits until the held request has arrived.
    pub async fn arrived(&self) {
        until(&self.0.arrived, &self.0.arrival).await;
    }

    /// Lets the held request be answered.
    pub fn release(&self) {
        self.0.released.store(true, Ordering::SeqCst);
        self.0.release.notify_waiters();
    }

    /// Whether the client hung up on the held request before its answer.
    pub fn abandoned(&self) -> bool {
        self.0.abandoned.load(Ordering::SeqCst)
    }
}

/// Sets `abandoned` when dropped before the request was released: hyper
/// drops a handler whose client hung up.
struct OnAbandon(Arc<HoldState>);

impl Drop for OnAbandon {
    fn drop(&mut self) {
        if !self.0.released.load(Ordering::SeqCst) {
            self.0.abandoned.store(true, Ordering::SeqCst);
        }
    }
}

impl FakeAurinko {
    /// Holds the next `GET /v1/calendars/{calendar_id}/sync/updated` (with
    /// a delta or a page token) until [`PageHold::release`]; later requests
    /// pass.
    pub fn hold_next_page(&self, calendar_id: &str) -> PageHold {
        let state = Arc::new(HoldState::default());
        self.with(|s| s.held = Some(Held { calendar_id: calendar_id.to_string(), state: state.clone() }));
        PageHold(state)
    }

    /// Waits here if this request is the held one.
    pub(crate) async fn wait_if_held(&self, calendar_id: Option<&str>, page: bool) {
        let Some(calendar_id) = calendar_id.filter(|_| page) else { return };
        let state = self.with(|s| match &s.held {
            Some(held) if held.calendar_id == calendar_id => s.held.take().map(|h| h.state),
            _ => None,
        });
        let Some(state) = state else { return };
        let guard = OnAbandon(state.clone());
        state.arrived.store(true, Ordering::SeqCst);
        state.arrival.notify_waiters();
        until(&state.released, &state.release).await;
        drop(guard);
    }
}

/// Waits until `flag` is set; whoever sets it then wakes `notify`'s waiters.
async fn until(flag: &AtomicBool, notify: &Notify) {
    loop {
        // Registered before the check, so a wake-up between the two is kept.
        let notified = notify.notified();
        if flag.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}
