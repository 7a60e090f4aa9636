//! The per-collection sync protocol as a state machine without I/O.
//!
//! A [`Pass`] is one run from the stored state to the end of both delta
//! streams. The driver asks it for the [`Action`] to perform, performs it, and
//! reports the outcome back (`on_provision`, `on_page`, `on_error`). Whatever
//! must be persisted comes back as a [`Commit`], which the store applies in
//! one transaction together with the page's records. Because the machine
//! never touches the network or the disk, every path, crash recovery
//! included, is a plain unit test.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    Commit, Cursor, ErrorClass, Phase, Provision, RangeDays, Reprovision, Stream, Sweep, SyncState, TokenRef, Window,
};

/// After this many consecutive passes whose delta requests failed as
/// permanent, the collection is provisioned again (once, until it catches
/// up): a token Aurinko refuses without saying it expired is not retried
/// forever.
pub const PERMANENT_FAILURES_BEFORE_REPROVISIONING: u32 = 3;

/// The generation of a collection's first provisioning (a new state holds
/// 0): every stored row has this generation or a later one.
const FIRST_GENERATION: i64 = 1;

/// How long to keep asking while a provisioning answers `ready: false`.
#[derive(Debug, Clone, Copy)]
pub struct ReadyPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl ReadyPolicy {
    /// The first ask again: a new collection is often ready within moments,
    /// and its first page should not wait a second for nothing.
    pub const FIRST_DELAY: Duration = Duration::from_millis(250);
    /// The cap of the doubling: a long preparation (a big mailbox) is asked
    /// about every 8 s, about 40 requests in the default 300 s, which the
    /// account's rate limit hardly notices.
    pub const MAX_DELAY: Duration = Duration::from_secs(8);

    /// 250 ms, doubling to 8 s, both at most `cap` (the configured retry
    /// cap), for at most `timeout`.
    pub fn new(cap: Duration, timeout: Duration) -> ReadyPolicy {
        let max_delay = Self::MAX_DELAY.min(cap);
        ReadyPolicy { first_delay: Self::FIRST_DELAY.min(max_delay), max_delay, timeout }
    }
}

/// What the driver should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// `POST .../sync` with the collection's start parameters, after
    /// `delay` (zero the first time).
    Provision { delay: Duration },
    /// `GET .../sync/{stream}` with this token.
    Fetch { stream: Stream, token: TokenRef<'a> },
    /// `GET {root}`: a sync request answered 404; is the collection gone?
    /// Answered with [`Pass::on_confirm`].
    ConfirmGone,
    /// The pass is over.
    Finish(&'a Finish),
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Both streams drained to a fresh delta token.
    CaughtUp,
    /// The collection is gone upstream and was purged.
    Removed,
    Failed {
        class: ErrorClass,
        message: String,
    },
}

pub struct Pass {
    state: SyncState,
    /// The range a provisioning in this pass covers, recorded with it.
    window: Option<Window>,
    /// The configured day counts behind `window`, recorded with it.
    range: Option<RangeDays>,
    ready: ReadyPolicy,
    /// Delay before the next provisioning request, and the total waited.
    provision_delay: Duration,
    waited_for_ready: Duration,
    /// The current stream already fell back from an expired page token to
    /// its delta token once.
    page_token_retried: bool,
    /// This pass already re-provisioned after an expired delta token; a
    /// second expiry in the same pass is an error rather than a loop.
    reprovisioned: bool,
    /// The collection can be deleted upstream (a calendar), so a 404 is
    /// worth confirming; otherwise it only means refused access.
    can_vanish: bool,
    /// A sync request answered 404 (this message) and the collection's
    /// existence is being checked.
    confirming: Option<String>,
    /// The pass resumed a drain interrupted earlier (a stored page token, or
    /// the deleted stream still to drain). That drain ends at delta tokens
    /// fixed before the interruption, so changes made since are only behind
    /// them: the pass drains both streams once more before it is caught up.
    resumed_drain: bool,
    /// The last page ended its stream (it carried no page token).
    page_ended_stream: bool,
    /// Provisionings of this pass that replaced an earlier generation.
    reprovisions: u64,
    finish: Option<Finish>,
}

/// A collection gone upstream: its state marked removed (no cursors, not
/// reconciling) and its rows purged. One transition, whoever finds it gone:
/// a second 404 in a pass ([`Pass::on_confirm`]) or a listing that no
/// longer names it (the engine, once the collection's passes have stopped).
pub fn removal(state: &SyncState) -> Commit {
    let mut state = state.clone();
    state.phase = Phase::Removed;
    state.updated = Cursor::default();
    state.deleted = Cursor::default();
    state.reconciling = false;
    Commit { purge: true, ..Commit::state_only(&state) }
}

impl Pass {
    /// Begins a pass from the stored state. `window` is recorded if the pass
    /// has to provision.
    pub fn new(mut state: SyncState, window: Option<Window>, ready: ReadyPolicy) -> Pass {
        match state.phase {
            Phase::New | Phase::Removed => begin_provisioning(&mut state),
            Phase::Idle => state.phase = Phase::Updated,
            Phase::Provisioning | Phase::Updated | Phase::Deleted => {}
        }
        // A stored state without the delta tokens a drain needs (a damaged
        // row) starts over rather than failing forever. A drain may go back
        // to either stream (a resumed drain, a page without a next token),
        // so both are needed.
        let usable = match state.phase {
            Phase::Updated | Phase::Deleted => {
                state.updated.delta_token.is_some() && state.deleted.delta_token.is_some()
            }
            _ => true,
        };
        if !usable {
            begin_provisioning(&mut state);
        }
        let resumed_drain = state.phase == Phase::Deleted
            || (state.phase == Phase::Updated
                && (state.updated.page_token.is_some() || state.deleted.page_token.is_some()));
        Pass {
            state,
            window,
            range: None,
            ready,
            provision_delay: Duration::ZERO,
            waited_for_ready: Duration::ZERO,
            page_token_retried: false,
            reprovisioned: false,
            can_vanish: false,
            confirming: None,
            resumed_drain,
            page_ended_stream: false,
            reprovisions: 0,
            finish: None,
        }
    }

    /// Whether the commit of the page just seen (`records` on it) may be
    /// kept back and stored with the next write of the collection (its next
    /// page, or how the pass ended) instead of on its own: what a crash may
    /// lose. Only an empty page that ends a stream, with no sweep and no
    /// purge: losing it loses nothing stored, the next pass asks the same
    /// empty page again from the token before it. An idle poll's two empty
    /// pages then cost no transaction of their own.
    pub fn may_keep_back(&self, commit: &Commit, records: usize) -> bool {
        records == 0 && self.page_ended_stream && commit.sweep.is_none() && !commit.purge
    }

    /// How many provisionings of this pass replaced an earlier generation
    /// (an expired token, a window that rolled, a changed range, an
    /// operator's resync, a token given up): the first provisioning of a
    /// collection is not counted.
    pub fn reprovisions(&self) -> u64 {
        self.reprovisions
    }

    /// The collection can be deleted upstream (calendars, task lists): a 404
    /// on its sync endpoints is confirmed with `GET {root}` and, if that
    /// answers 404 too, the collection is removed and purged.
    pub fn can_vanish(mut self, can_vanish: bool) -> Pass {
        self.can_vanish = can_vanish;
        self
    }

    /// The configured day counts of the collection's range (see
    /// [`RangeDays`]), recorded with a provisioning. A state stored before
    /// they were recorded takes them as they are now: there is nothing to
    /// compare with.
    pub fn with_range(mut self, range: Option<RangeDays>) -> Pass {
        self.range = range;
        if self.state.range.is_none() && self.state.generation > 0 {
            self.state.range = range;
        }
        self
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// At the start of a pass: `requested` is the store's count of operator
    /// resync requests for the collection. One it has not acted on gives up
    /// the tokens, wherever the last pass stopped, and provisions again,
    /// reconciling as after an expired token: the rows stay until the new
    /// generation's first full pass sweeps what it did not return. The
    /// count acted on is committed with the new phase, so a crash before
    /// that commit leaves the request pending.
    pub fn resync_if_requested(&mut self, requested: i64) -> Option<Commit> {
        if requested <= self.state.resync_handled {
            return None;
        }
        self.state.resync_handled = requested;
        self.reprovisioned = true;
        begin_provisioning(&mut self.state);
        Some(Commit::reprovisioning(&self.state, Reprovision::Requested))
    }

    /// At the start of a pass: when the configured day counts differ from
    /// those the stored tokens were provisioned with, the tokens cover the
    /// wrong range; the collection provisions again with the configured one
    /// and reconciles. Returns the commit and the counts it replaces. A
    /// window that only moved with time is not a change (see
    /// [`roll_window`](Pass::roll_window)).
    pub fn reprovision_if_range_changed(&mut self) -> Option<(Commit, RangeDays)> {
        let (Some(stored), Some(configured)) = (self.state.range, self.range) else { return None };
        if stored == configured || !matches!(self.state.phase, Phase::Updated | Phase::Deleted) {
            return None;
        }
        self.reprovisioned = true;
        begin_provisioning(&mut self.state);
        Some((Commit::reprovisioning(&self.state, Reprovision::RangeChanged), stored))
    }

    /// The window moves with time: at the start of a pass, when less than
    /// half of the future horizon of the stored window is left, the
    /// collection re-provisions with the fresh window and reconciles, exactly
    /// as after an expired token. A pass resumed mid-drain finishes first.
    pub fn roll_window(&mut self, now: DateTime<Utc>) -> Option<Commit> {
        let (Some(stored), Some(fresh)) = (self.state.window, self.window) else { return None };
        let at_pass_start = self.state.phase == Phase::Updated
            && self.state.updated.page_token.is_none()
            && self.state.deleted.page_token.is_none();
        if !at_pass_start || (stored.time_max - now) * 2 >= fresh.time_max - now {
            return None;
        }
        self.reprovisioned = true;
        begin_provisioning(&mut self.state);
        Some(Commit::reprovisioning(&self.state, Reprovision::WindowRolled))
    }

    /// At the start of a pass: after
    /// [`PERMANENT_FAILURES_BEFORE_REPROVISIONING`] passes in a row whose
    /// delta requests failed as permanent, the tokens are given up and the
    /// collection provisions again, reconciling as after an expired token.
    /// Once per run of failures: if the new tokens fail too, the collection
    /// keeps failing (and backing off) until a pass catches up.
    pub fn reprovision_if_stuck(&mut self) -> Option<Commit> {
        let s = &self.state;
        let stuck = s.permanent_failures >= PERMANENT_FAILURES_BEFORE_REPROVISIONING
            && !s.reprovisioned_after_failures
            && matches!(s.phase, Phase::Updated | Phase::Deleted);
        if !stuck {
            return None;
        }
        self.reprovisioned = true;
        self.state.reprovisioned_after_failures = true;
        begin_provisioning(&mut self.state);
        Some(Commit::reprovisioning(&self.state, Reprovision::PermanentFailures))
    }

    pub fn next_action(&self) -> Action<'_> {
        if let Some(finish) = &self.finish {
            return Action::Finish(finish);
        }
        if self.confirming.is_some() {
            return Action::ConfirmGone;
        }
        match self.state.phase {
            Phase::New | Phase::Provisioning | Phase::Removed => Action::Provision { delay: self.provision_delay },
            Phase::Updated | Phase::Deleted => {
                let stream = self.stream();
                let token = self.state.cursor(stream).request().expect("checked when the pass began");
                Action::Fetch { stream, token }
            }
            Phase::Idle => unreachable!("a pass that reaches idle has finished"),
        }
    }

    fn stream(&self) -> Stream {
        if self.state.phase == Phase::Deleted { Stream::Deleted } else { Stream::Updated }
    }

    /// The answer to `POST .../sync`. Ready tokens start a new generation
    /// and a reconciling pass; they are committed at once so a crash does not
    /// provision again.
    pub fn on_provision(&mut self, provision: Provision) -> Option<Commit> {
        match provision {
            Provision::NotReady => {
                let next = if self.provision_delay.is_zero() {
                    self.ready.first_delay
                } else {
                    (self.provision_delay * 2).min(self.ready.max_delay)
                };
                if self.waited_for_ready + next > self.ready.timeout {
                    self.fail(
                        ErrorClass::Transient,
                        format!("sync start not ready after {}s", self.waited_for_ready.as_secs()),
                    );
                } else {
                    self.waited_for_ready += next;
                    self.provision_delay = next;
                }
                None
            }
            Provision::Ready { updated_token, deleted_token } => {
                let s = &mut self.state;
                s.generation += 1;
                if s.generation > FIRST_GENERATION {
                    self.reprovisions += 1;
                }
                s.reconciling = true;
                s.window = self.window;
                s.range = self.range;
                s.updated = Cursor::at_delta(updated_token);
                s.deleted = Cursor::at_delta(deleted_token);
                s.phase = Phase::Updated;
                self.resumed_drain = false;
                self.provision_delay = Duration::ZERO;
                self.waited_for_ready = Duration::ZERO;
                Some(Commit::state_only(&self.state))
            }
        }
    }

    /// A page arrived. The returned commit carries the new cursor (and the
    /// sweep at the end of a reconciling pass); the driver stores it together
    /// with the page's records.
    ///
    /// A last page without `nextDeltaToken` (the spec does not promise one)
    /// ends the stream for this pass at the delta token its drain started
    /// from: the next pass asks from there again, which repeats changes
    /// already stored rather than losing any. A reconciling sweep waits for
    /// a drain that ends with a token.
    pub fn on_page(&mut self, next_page_token: Option<String>, next_delta_token: Option<String>) -> Commit {
        let stream = self.stream();
        self.page_token_retried = false;
        self.page_ended_stream = next_page_token.is_none();
        let mut sweep = None;
        match (next_page_token, next_delta_token) {
            (Some(page), _) => self.state.cursor_mut(stream).page_token = Some(page),
            (None, delta) => {
                let ended_with_a_token = delta.is_some();
                let cursor = self.state.cursor_mut(stream);
                match delta {
                    Some(delta) => *cursor = Cursor::at_delta(delta),
                    None => cursor.page_token = None,
                }
                match stream {
                    Stream::Updated => {
                        if self.state.reconciling && ended_with_a_token {
                            // A collection's first generation has nothing
                            // older to sweep: rows are stored with the
                            // generation of the provisioning they came from,
                            // and the first is 1. Its sweep would read every
                            // row it just wrote (a tenth of a new calendar's
                            // full sync) to delete none.
                            if self.state.generation > FIRST_GENERATION {
                                // The range of the provisioning this pass
                                // drained, as stored with it.
                                sweep = Some(Sweep { below: self.state.generation, window: self.state.window });
                            }
                            self.state.reconciling = false;
                        }
                        self.state.phase = Phase::Deleted;
                    }
                    Stream::Deleted if self.resumed_drain => {
                        // The resumed drain is done; now the changes since.
                        self.resumed_drain = false;
                        self.state.phase = Phase::Updated;
                    }
                    Stream::Deleted => {
                        self.state.phase = Phase::Idle;
                        self.state.permanent_failures = 0;
                        self.state.reprovisioned_after_failures = false;
                        self.finish = Some(Finish::CaughtUp);
                    }
                }
            }
        }
        Commit { sweep, ..Commit::state_only(&self.state) }
    }

    /// A request failed after the client's retries. Returns a commit when the
    /// failure changes what must be remembered (re-provisioning, removal).
    pub fn on_error(&mut self, class: ErrorClass, message: String) -> Option<Commit> {
        match class {
            ErrorClass::ExpiredToken if matches!(self.state.phase, Phase::Updated | Phase::Deleted) => {
                let stream = self.stream();
                let cursor = self.state.cursor_mut(stream);
                if cursor.page_token.is_some() && !self.page_token_retried {
                    // The official client's rule: an invalid page token is
                    // retried once from the delta token it came from.
                    cursor.page_token = None;
                    self.page_token_retried = true;
                    None
                } else if !self.reprovisioned {
                    self.reprovisioned = true;
                    self.page_token_retried = false;
                    begin_provisioning(&mut self.state);
                    Some(Commit::reprovisioning(&self.state, Reprovision::ExpiredToken))
                } else {
                    self.fail(class, format!("token expired again after re-provisioning: {message}"));
                    None
                }
            }
            ErrorClass::NotFound if self.can_vanish => {
                self.confirming = Some(message);
                None
            }
            ErrorClass::NotFound => {
                self.fail(
                    class,
                    format!(
                        "{message}: this collection cannot be deleted upstream, so the 404 means Aurinko refuses \
                         access to it; check the account's scopes and permissions (nothing was removed)"
                    ),
                );
                None
            }
            ErrorClass::Permanent if matches!(self.state.phase, Phase::Updated | Phase::Deleted) => {
                // Remembered, so that a token that keeps failing is given up
                // (see `reprovision_if_stuck`).
                self.state.permanent_failures = self.state.permanent_failures.saturating_add(1);
                self.fail(class, message);
                Some(Commit::state_only(&self.state))
            }
            _ => {
                self.fail(class, message);
                None
            }
        }
    }

    /// The answer to [`Action::ConfirmGone`]: `Ok` when the collection
    /// exists, else the class and message of the failure. Only a second 404
    /// removes the collection and purges its rows; an existing collection or
    /// a failed check fails the pass with nothing removed.
    pub fn on_confirm(&mut self, answer: Result<(), (ErrorClass, String)>) -> Option<Commit> {
        let not_found = self.confirming.take().unwrap_or_default();
        match answer {
            Err((ErrorClass::NotFound, _)) => {
                let commit = removal(&self.state);
                self.state = commit.state.clone();
                self.finish = Some(Finish::Removed);
                return Some(commit);
            }
            Ok(()) => self.fail(
                ErrorClass::NotFound,
                format!(
                    "{not_found}, but the collection itself answers 200: it exists, so nothing was removed; \
                     the token may lack the permission to sync it"
                ),
            ),
            Err((class, message)) => self.fail(
                class,
                format!(
                    "{not_found}; checking whether the collection is gone failed (tried again next pass): {message}"
                ),
            ),
        }
        None
    }

    fn fail(&mut self, class: ErrorClass, message: String) {
        self.finish = Some(Finish::Failed { class, message });
    }
}

/// Clears the tokens so the next action provisions. The rows stay until the
/// new generation's first full pass sweeps what it did not see.
fn begin_provisioning(state: &mut SyncState) {
    state.phase = Phase::Provisioning;
    state.updated = Cursor::default();
    state.deleted = Cursor::default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window() -> Option<Window> {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        Some(Window::around(now, 30, 365))
    }

    fn policy() -> ReadyPolicy {
        ReadyPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            timeout: Duration::from_secs(20),
        }
    }

    fn ready(u: &str, d: &str) -> Provision {
        Provision::Ready { updated_token: u.into(), deleted_token: d.into() }
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// A state as it is stored after a completed pass.
    fn idle(generation: i64) -> SyncState {
        SyncState {
            phase: Phase::Idle,
            window: window(),
            generation,
            reconciling: false,
            updated: Cursor::at_delta("U1".into()),
            deleted: Cursor::at_delta("D1".into()),
            ..SyncState::new()
        }
    }

    fn fetch(pass: &Pass) -> (Stream, TokenRef<'_>) {
        match pass.next_action() {
            Action::Fetch { stream, token } => (stream, token),
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn first_pass_provisions_drains_both_streams_and_has_nothing_to_sweep() {
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        assert_eq!(pass.next_action(), Action::Provision { delay: Duration::ZERO });

        let commit = pass.on_provision(ready("U0", "D0")).expect("ready is committed");
        assert_eq!(commit.state.generation, 1);
        assert!(commit.state.reconciling);
        assert_eq!(commit.state.window, window());
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U0")));

        let commit = pass.on_page(some("P1"), None);
        assert_eq!(commit.sweep.map(|s| s.below), None);
        assert_eq!(commit.state.updated, Cursor { delta_token: some("U0"), page_token: some("P1") });
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Page("P1")));

        let commit = pass.on_page(None, some("U1"));
        // No row is older than the first generation: nothing to sweep.
        assert_eq!(commit.sweep.map(|s| s.below), None, "the first generation's full pass sweeps nothing");
        assert!(!commit.state.reconciling);
        assert_eq!(commit.state.updated, Cursor::at_delta("U1".into()));
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D0")));

        let commit = pass.on_page(None, some("D1"));
        assert_eq!(commit.state.phase, Phase::Idle);
        assert_eq!(commit.sweep.map(|s| s.below), None);
        assert_eq!(pass.next_action(), Action::Finish(&Finish::CaughtUp));
    }

    #[test]
    fn an_idle_collection_drains_from_its_delta_tokens_without_provisioning() {
        let mut pass = Pass::new(idle(3), window(), policy());
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U1")));
        let commit = pass.on_page(None, some("U2"));
        assert_eq!(commit.sweep.map(|s| s.below), None, "an ordinary delta pass sweeps nothing");
        assert_eq!(commit.state.generation, 3);
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D1")));
        pass.on_page(None, some("D2"));
        assert_eq!(pass.next_action(), Action::Finish(&Finish::CaughtUp));
        assert_eq!(pass.state().deleted, Cursor::at_delta("D2".into()));
    }

    #[test]
    fn a_last_page_without_a_delta_token_ends_the_stream_at_the_drains_token() {
        let mut pass = Pass::new(idle(2), window(), policy());
        pass.on_page(some("P1"), None);
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Page("P1")));
        // The follow-up page has no token at all: its records are committed
        // and the stream keeps the token the drain started from.
        let commit = pass.on_page(None, None);
        assert_eq!(commit.state.updated, Cursor::at_delta("U1".into()));
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D1")));
        let commit = pass.on_page(None, None);
        assert_eq!((commit.state.phase, &commit.state.deleted), (Phase::Idle, &Cursor::at_delta("D1".into())));
        assert_eq!(pass.next_action(), Action::Finish(&Finish::CaughtUp));
        // A reconciling full pass that ends so does not sweep: nothing
        // proves it complete. The next pass drains it again from the same
        // token. (A collection back from removal: its second generation.)
        let mut returned = idle(1);
        returned.phase = Phase::Removed;
        let mut pass = Pass::new(returned, window(), policy());
        pass.on_provision(ready("U0", "D0")).unwrap();
        let commit = pass.on_page(None, None);
        assert_eq!((commit.sweep, commit.state.reconciling), (None, true));
        pass.on_page(None, some("D1"));
        let mut next = Pass::new(pass.state().clone(), window(), policy());
        assert_eq!(fetch(&next), (Stream::Updated, TokenRef::Delta("U0")));
        assert_eq!(next.on_page(None, some("U1")).sweep.map(|s| s.below), Some(2));
    }

    #[test]
    fn not_ready_backs_off_then_gives_up_at_the_deadline() {
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        let mut delays = Vec::new();
        for _ in 0..10 {
            assert_eq!(pass.on_provision(Provision::NotReady), None);
            match pass.next_action() {
                Action::Provision { delay, .. } => delays.push(delay.as_secs()),
                Action::Finish(Finish::Failed { class, .. }) => {
                    assert_eq!(*class, ErrorClass::Transient);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, vec![1, 2, 4, 8], "doubling, capped, within the 20 s deadline");
    }

    #[test]
    fn not_ready_is_asked_again_after_250_ms_doubling_to_8_s() {
        let mut pass =
            Pass::new(SyncState::new(), window(), ReadyPolicy::new(Duration::from_secs(30), Duration::from_secs(60)));
        let mut delays = Vec::new();
        for _ in 0..9 {
            pass.on_provision(Provision::NotReady);
            match pass.next_action() {
                Action::Provision { delay } => delays.push(delay.as_millis()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, vec![250, 500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
        let tight = ReadyPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!((tight.first_delay, tight.max_delay), (Duration::from_millis(100), Duration::from_millis(100)));
    }

    #[test]
    fn not_ready_then_ready_proceeds() {
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        pass.on_provision(Provision::NotReady);
        assert!(matches!(pass.next_action(), Action::Provision { delay, .. } if delay == Duration::from_secs(1)));
        pass.on_provision(ready("U0", "D0")).unwrap();
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U0")));
    }

    #[test]
    fn an_expired_page_token_retries_once_from_its_delta_token() {
        let mut state = idle(2);
        state.phase = Phase::Updated;
        state.updated.page_token = some("P5");
        let mut pass = Pass::new(state, window(), policy());
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Page("P5")));
        assert_eq!(pass.on_error(ErrorClass::ExpiredToken, "410".into()), None);
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U1")));
        // The fallback page works and leads on: the retry allowance resets.
        pass.on_page(some("P6"), None);
        assert_eq!(pass.on_error(ErrorClass::ExpiredToken, "410".into()), None);
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U1")));
    }

    /// What a crash may lose is decided here: only an empty page that ends
    /// a stream, without sweep or purge, may be kept back.
    #[test]
    fn only_an_empty_page_that_ends_a_stream_may_be_kept_back() {
        let mut pass = Pass::new(idle(2), window(), policy());
        let commit = pass.on_page(some("P1"), None);
        assert!(!pass.may_keep_back(&commit, 0), "an empty page with more to come moves the cursor");
        let commit = pass.on_page(None, some("U2"));
        assert!(!pass.may_keep_back(&commit, 3), "a page with records is stored with them");
        assert!(pass.may_keep_back(&commit, 0), "an empty last page: the next pass asks it again");
        // The last page of a reconciling drain carries its sweep.
        let mut pass = Pass::new(idle(2), window(), policy());
        pass.on_error(ErrorClass::ExpiredToken, "410".into());
        pass.on_provision(ready("U9", "D9"));
        let commit = pass.on_page(None, some("U10"));
        assert!(commit.sweep.is_some());
        assert!(!pass.may_keep_back(&commit, 0), "a sweep is never kept back");
        // A purge neither.
        assert!(!pass.may_keep_back(&removal(&idle(2)), 0));
    }

    #[test]
    fn a_first_provisioning_is_not_a_reprovision_and_each_later_one_counts() {
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        pass.on_provision(ready("U1", "D1"));
        assert_eq!(pass.reprovisions(), 0, "a new collection's first provisioning");
        let mut pass = Pass::new(idle(2), window(), policy());
        assert_eq!(pass.on_provision(Provision::NotReady), None);
        assert_eq!(pass.reprovisions(), 0, "not ready is not a provisioning");
        pass.on_error(ErrorClass::ExpiredToken, "410".into());
        pass.on_provision(ready("U9", "D9"));
        assert_eq!(pass.reprovisions(), 1);
    }

    /// One "gone" transition, whether a pass finds the collection gone or
    /// a listing no longer names it.
    #[test]
    fn gone_is_one_transition_whoever_finds_it() {
        let mut pass = Pass::new(idle(4), window(), policy()).can_vanish(true);
        pass.on_error(ErrorClass::NotFound, "404".into());
        let confirmed = pass.on_confirm(Err((ErrorClass::NotFound, "404".into()))).unwrap();
        let mut stored = idle(4);
        stored.phase = Phase::Updated;
        let unlisted = removal(&stored);
        assert_eq!(confirmed, unlisted);
        assert!(unlisted.purge);
        assert_eq!(unlisted.state.phase, Phase::Removed);
        assert_eq!((unlisted.state.updated.request(), unlisted.state.deleted.request()), (None, None));
        assert!(!unlisted.state.reconciling);
        assert_eq!(unlisted.state.generation, 4, "the next provisioning starts a new generation");
    }

    #[test]
    fn an_expired_delta_token_reprovisions_and_the_new_generation_reconciles() {
        let mut pass = Pass::new(idle(2), window(), policy());
        let commit = pass.on_error(ErrorClass::ExpiredToken, "410".into()).expect("re-provisioning is remembered");
        assert_eq!(commit.state.phase, Phase::Provisioning);
        assert_eq!(commit.state.updated, Cursor::default());
        assert_eq!(commit.sweep.map(|s| s.below), None, "nothing is removed before the new full pass commits");
        assert!(matches!(pass.next_action(), Action::Provision { .. }));
        let commit = pass.on_provision(ready("U9", "D9")).unwrap();
        assert_eq!(commit.state.generation, 3);
        assert!(commit.state.reconciling);
        let commit = pass.on_page(None, some("U10"));
        assert_eq!(
            commit.sweep,
            Some(Sweep { below: 3, window: window() }),
            "the sweep covers the range of the provisioning that was drained"
        );
    }

    #[test]
    fn a_page_token_that_expires_after_its_retry_reprovisions() {
        let mut state = idle(1);
        state.phase = Phase::Deleted;
        state.deleted.page_token = some("DP");
        let mut pass = Pass::new(state, window(), policy());
        assert_eq!(pass.on_error(ErrorClass::ExpiredToken, "".into()), None);
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D1")));
        let commit = pass.on_error(ErrorClass::ExpiredToken, "".into()).unwrap();
        assert_eq!(commit.state.phase, Phase::Provisioning);
    }

    #[test]
    fn a_second_expiry_in_one_pass_fails_instead_of_looping() {
        let mut pass = Pass::new(idle(1), window(), policy());
        pass.on_error(ErrorClass::ExpiredToken, "".into()).unwrap();
        pass.on_provision(ready("U", "D")).unwrap();
        assert_eq!(pass.on_error(ErrorClass::ExpiredToken, "again".into()), None);
        assert!(matches!(pass.next_action(), Action::Finish(Finish::Failed { class: ErrorClass::ExpiredToken, .. })));
    }

    #[test]
    fn auth_transient_and_permanent_errors_end_the_pass_keeping_the_cursor() {
        for class in [ErrorClass::Auth, ErrorClass::Transient, ErrorClass::Permanent] {
            let mut state = idle(1);
            state.phase = Phase::Updated;
            state.updated.page_token = some("P3");
            let mut pass = Pass::new(state.clone(), window(), policy());
            let commit = pass.on_error(class, "boom".into());
            assert_eq!(pass.next_action(), Action::Finish(&Finish::Failed { class, message: "boom".into() }));
            if class == ErrorClass::Permanent {
                // Only the count of such failures is remembered.
                state.permanent_failures = 1;
                assert_eq!(commit.map(|c| c.state), Some(state.clone()));
            } else {
                assert_eq!(commit, None, "{class}: nothing to commit");
            }
            assert_eq!(pass.state(), &state, "{class}: the stored cursor stays where it was");
        }
    }

    /// A token Aurinko refuses without saying it expired: after three passes
    /// failing as permanent on delta requests the collection provisions
    /// again, once; if the new tokens fail too it does not loop, and a pass
    /// that catches up clears the count.
    #[test]
    fn permanent_delta_failures_reprovision_once_until_the_collection_catches_up() {
        let mut state = idle(2);
        for failures in 1..=PERMANENT_FAILURES_BEFORE_REPROVISIONING {
            let mut pass = Pass::new(state, window(), policy());
            assert_eq!(pass.reprovision_if_stuck(), None, "not after {} failures", failures - 1);
            state = pass.on_error(ErrorClass::Permanent, "HTTP 400".into()).expect("the count is committed").state;
            assert_eq!(state.permanent_failures, failures);
        }
        let mut pass = Pass::new(state, window(), policy());
        let commit = pass.reprovision_if_stuck().expect("the third failure in a row re-provisions");
        assert_eq!(commit.reprovision, Some(Reprovision::PermanentFailures));
        assert_eq!((commit.state.phase, commit.state.updated.request()), (Phase::Provisioning, None));
        assert!(matches!(pass.next_action(), Action::Provision { .. }));
        assert_eq!(pass.on_provision(ready("U9", "D9")).unwrap().state.generation, 3);
        // The new tokens fail too: counted, but no second re-provisioning.
        state = pass.on_error(ErrorClass::Permanent, "HTTP 400".into()).unwrap().state;
        assert_eq!((state.permanent_failures, state.reprovisioned_after_failures), (4, true));
        for _ in 0..3 {
            let mut pass = Pass::new(state.clone(), window(), policy());
            assert_eq!(pass.reprovision_if_stuck(), None, "once per run of failures");
            assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U9")));
            state = pass.on_error(ErrorClass::Permanent, "HTTP 400".into()).unwrap().state;
        }
        // A pass that catches up clears the count.
        let mut pass = Pass::new(state, window(), policy());
        pass.on_page(None, some("U10"));
        let commit = pass.on_page(None, some("D10"));
        assert_eq!((commit.state.permanent_failures, commit.state.reprovisioned_after_failures), (0, false));
        // A permanent failure of a provisioning is not a refused token.
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        assert_eq!(pass.on_error(ErrorClass::Permanent, "HTTP 400".into()), None);
    }

    #[test]
    fn every_reprovisioning_says_why() {
        let mut pass = Pass::new(idle(2), window(), policy());
        let commit = pass.on_error(ErrorClass::ExpiredToken, "410".into()).unwrap();
        assert_eq!(commit.reprovision, Some(Reprovision::ExpiredToken));
        assert_eq!(pass.on_provision(ready("U", "D")).unwrap().reprovision, None);
    }

    #[test]
    fn a_404_confirmed_by_a_second_404_removes_and_purges_the_collection() {
        let mut pass = Pass::new(idle(4), window(), policy()).can_vanish(true);
        assert_eq!(pass.on_error(ErrorClass::NotFound, "404".into()), None, "nothing is removed on one 404");
        assert_eq!(pass.next_action(), Action::ConfirmGone);
        let commit = pass.on_confirm(Err((ErrorClass::NotFound, "404".into()))).unwrap();
        assert!(commit.purge);
        assert_eq!(commit.state.phase, Phase::Removed);
        assert_eq!(commit.state.updated.request(), None);
        assert_eq!(pass.next_action(), Action::Finish(&Finish::Removed));
    }

    #[test]
    fn a_404_on_a_collection_that_still_exists_or_cannot_be_checked_fails_keeping_everything() {
        for (answer, class) in [
            (Ok(()), ErrorClass::NotFound),
            (Err((ErrorClass::Transient, "HTTP 503".to_string())), ErrorClass::Transient),
            (Err((ErrorClass::Auth, "HTTP 401".to_string())), ErrorClass::Auth),
        ] {
            let mut state = idle(4);
            state.phase = Phase::Updated;
            state.updated.page_token = some("P2");
            let mut pass = Pass::new(state.clone(), window(), policy()).can_vanish(true);
            assert_eq!(pass.on_error(ErrorClass::NotFound, "sync_updated: HTTP 404".into()), None);
            assert_eq!(pass.on_confirm(answer.clone()), None, "{answer:?}: nothing to commit, nothing purged");
            match pass.next_action() {
                Action::Finish(Finish::Failed { class: failed, message }) => {
                    assert_eq!(*failed, class, "{answer:?}");
                    assert!(message.starts_with("sync_updated: HTTP 404"), "{message}");
                }
                other => panic!("{answer:?}: {other:?}"),
            }
            assert_eq!(pass.state(), &state, "{answer:?}: the cursor stays");
        }
    }

    #[test]
    fn a_404_where_nothing_can_be_gone_fails_clearly_and_removes_nothing() {
        let mut pass = Pass::new(idle(4), None, policy());
        assert_eq!(pass.on_error(ErrorClass::NotFound, "sync_updated: HTTP 404".into()), None);
        match pass.next_action() {
            Action::Finish(Finish::Failed { class: ErrorClass::NotFound, message }) => {
                assert!(message.contains("scopes and permissions"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((&pass.state().updated, &pass.state().deleted), (&idle(4).updated, &idle(4).deleted));
    }

    #[test]
    fn a_removed_collection_that_returns_starts_over_with_a_new_generation() {
        let mut state = idle(4);
        state.phase = Phase::Removed;
        let mut pass = Pass::new(state, window(), policy());
        assert!(matches!(pass.next_action(), Action::Provision { .. }));
        assert_eq!(pass.on_provision(ready("U", "D")).unwrap().state.generation, 5);
    }

    /// Crash recovery: every commit is what the store holds if the process
    /// dies right after it. A new pass from any of them continues exactly
    /// where the committed state points, never before.
    #[test]
    fn a_pass_resumed_from_any_commit_continues_at_the_committed_position() {
        let mut pass = Pass::new(SyncState::new(), window(), policy());
        let mut commits = vec![pass.on_provision(ready("U0", "D0")).unwrap()];
        commits.push(pass.on_page(some("P1"), None));
        commits.push(pass.on_page(some("P2"), None));
        commits.push(pass.on_page(None, some("U1")));
        commits.push(pass.on_page(some("Q1"), None));
        commits.push(pass.on_page(None, some("D1")));
        let expected = [
            Some((Stream::Updated, TokenRef::Delta("U0"))),
            Some((Stream::Updated, TokenRef::Page("P1"))),
            Some((Stream::Updated, TokenRef::Page("P2"))),
            Some((Stream::Deleted, TokenRef::Delta("D0"))),
            Some((Stream::Deleted, TokenRef::Page("Q1"))),
            // Idle: the next pass asks for changes since the new delta token.
            Some((Stream::Updated, TokenRef::Delta("U1"))),
        ];
        for (commit, expected) in commits.iter().zip(expected) {
            let resumed = Pass::new(commit.state.clone(), window(), policy());
            let action = match resumed.next_action() {
                Action::Fetch { stream, token } => Some((stream, token)),
                _ => None,
            };
            assert_eq!(action, expected, "resuming from {:?}", commit.state);
        }
        // Crashing mid-reconcile keeps the reconciliation pending until the
        // pass ends: the first generation's ends with nothing to sweep, a
        // later generation's with its sweep.
        let mut resumed = Pass::new(commits[2].state.clone(), window(), policy());
        assert!(resumed.state().reconciling);
        let commit = resumed.on_page(None, some("U1"));
        assert_eq!((commit.sweep, commit.state.reconciling), (None, false));
        let later = SyncState { generation: 2, ..commits[2].state.clone() };
        let mut resumed = Pass::new(later, window(), policy());
        assert_eq!(resumed.on_page(None, some("U1")).sweep.map(|s| s.below), Some(2));
    }

    #[test]
    fn a_resumed_drain_is_followed_by_a_fresh_round_before_the_pass_is_caught_up() {
        // Crashed after the updated stream finished: only deleted was left.
        let mut state = idle(2);
        state.phase = Phase::Deleted;
        state.updated = Cursor::at_delta("U2".into());
        let mut pass = Pass::new(state, window(), policy());
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D1")));
        pass.on_page(None, some("D2"));
        // Changes made since the crash are behind U2 and D2.
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U2")));
        pass.on_page(None, some("U3"));
        assert_eq!(fetch(&pass), (Stream::Deleted, TokenRef::Delta("D2")));
        pass.on_page(None, some("D3"));
        assert_eq!(pass.next_action(), Action::Finish(&Finish::CaughtUp));
        // Resumed mid-page in the updated stream: the same.
        let mut state = idle(2);
        state.phase = Phase::Updated;
        state.updated.page_token = some("P4");
        let mut pass = Pass::new(state, window(), policy());
        pass.on_page(None, some("U5"));
        pass.on_page(None, some("D5"));
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U5")));
        // A pass from idle is caught up after one round.
        let mut pass = Pass::new(idle(2), window(), policy());
        pass.on_page(None, some("U2"));
        pass.on_page(None, some("D2"));
        assert_eq!(pass.next_action(), Action::Finish(&Finish::CaughtUp));
    }

    #[test]
    fn a_crash_while_provisioning_provisions_again() {
        let mut pass = Pass::new(idle(1), window(), policy());
        let commit = pass.on_error(ErrorClass::ExpiredToken, "".into()).unwrap();
        let resumed = Pass::new(commit.state, window(), policy());
        assert!(matches!(resumed.next_action(), Action::Provision { .. }));
    }

    #[test]
    fn the_window_rolls_when_less_than_half_its_future_is_left() {
        let provisioned = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut state = idle(2);
        state.window = Some(Window::around(provisioned, 30, 100));
        // 49 days later, 51 of the 100 future days are left: no roll.
        let now = provisioned + chrono::Duration::days(49);
        let mut pass = Pass::new(state.clone(), Some(Window::around(now, 30, 100)), policy());
        assert_eq!(pass.roll_window(now), None);
        assert_eq!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U1")));
        // 51 days later, 49 are left: re-provision with the fresh window.
        let now = provisioned + chrono::Duration::days(51);
        let fresh = Window::around(now, 30, 100);
        let mut pass = Pass::new(state.clone(), Some(fresh), policy());
        let commit = pass.roll_window(now).expect("the roll is remembered");
        assert_eq!(commit.state.phase, Phase::Provisioning);
        assert_eq!(commit.reprovision, Some(Reprovision::WindowRolled));
        let commit = pass.on_provision(ready("U9", "D9")).unwrap();
        assert_eq!((commit.state.window, commit.state.generation, commit.state.reconciling), (Some(fresh), 3, true));
        // A pass resumed mid-drain is not interrupted by a roll.
        state.phase = Phase::Updated;
        state.updated.page_token = some("P");
        let mut pass = Pass::new(state, Some(fresh), policy());
        assert_eq!(pass.roll_window(now), None);
    }

    #[test]
    fn a_damaged_state_without_tokens_provisions_instead_of_failing() {
        let mut state = idle(1);
        state.phase = Phase::Updated;
        state.updated = Cursor::default();
        let pass = Pass::new(state, window(), policy());
        assert!(matches!(pass.next_action(), Action::Provision { .. }));
        // A page token without the delta token it belongs to, in either
        // stream: a drain could not fall back, so it starts over too.
        for phase in [Phase::Updated, Phase::Deleted] {
            let mut state = idle(1);
            state.phase = phase;
            state.updated = Cursor { delta_token: None, page_token: some("P") };
            let pass = Pass::new(state, window(), policy());
            assert!(matches!(pass.next_action(), Action::Provision { .. }), "{phase:?}");
        }
    }

    #[test]
    fn a_changed_configured_range_provisions_again_and_a_moved_window_does_not() {
        let around = |past| Some(RangeDays::Around { past, future: 365 });
        let stored = SyncState { range: around(30), ..idle(2) };
        // The same day counts, a window computed a day later: no change.
        let later = window().map(|w| Window { time_min: w.time_min + chrono::Duration::days(1), ..w });
        let mut pass = Pass::new(stored.clone(), later, policy()).with_range(around(30));
        assert_eq!(pass.reprovision_if_range_changed(), None);
        assert!(matches!(fetch(&pass), (Stream::Updated, TokenRef::Delta("U1"))));

        let mut pass = Pass::new(stored, window(), policy()).with_range(around(7));
        let (commit, old) = pass.reprovision_if_range_changed().expect("a change");
        assert_eq!((old, commit.reprovision), (around(30).unwrap(), Some(Reprovision::RangeChanged)));
        assert_eq!(pass.next_action(), Action::Provision { delay: Duration::ZERO });
        let commit = pass.on_provision(ready("U2", "D2")).unwrap();
        assert_eq!((commit.state.range, commit.state.generation), (around(7), 3));
    }

    #[test]
    fn a_state_stored_before_ranges_were_recorded_takes_the_configured_one() {
        let mut pass = Pass::new(idle(2), window(), policy()).with_range(Some(RangeDays::Within(30)));
        assert_eq!(pass.reprovision_if_range_changed(), None);
        assert_eq!(pass.state().range, Some(RangeDays::Within(30)));
    }
}
