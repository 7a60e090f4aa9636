//! What the model-based test checks in the fake's request log, run by run
//! (a run: one engine's catch-up, to its end or to its crash). The final
//! store can equal the truth although work was done twice; these checks see
//! it:
//!
//! - No committed page is fetched again. Each run's first request of each
//!   stream asks exactly what the store held when the run began (a drain
//!   that restarts from its delta token asks a token the store had moved
//!   past). Later requests never ask a page known to be committed: the
//!   driver keeps at most `WRITES_IN_FLIGHT` commits in flight and awaits
//!   the oldest before it sends one more, so page T is committed before the
//!   request for the page `WRITES_IN_FLIGHT + 1` pages after it in its
//!   stream is sent, when none between is a page whose commit the driver may
//!   keep back (an empty last page). The one
//!   exception is the protocol's: after a 410 on a page token, the drain's
//!   delta token is asked once (with the retries a fault takes). A
//!   provisioning starts a new generation: what was committed before it is
//!   not held against the pages after it (which may repeat the old tokens
//!   when nothing changed and the window is the same).
//! - Provisionings (`POST .../sync`) only where an expired token (a 410 in
//!   the run) or a new collection explains them: never provisioned (or its
//!   provisioning lost in a crash before it was stored), removed from the
//!   store since, or a calendar added back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aurinko_fake::{Collection, Endpoint, FaultKind, RequestRecord};
use aurinko_sync::model::{CollectionKey, Kind, Phase, Stream, SyncState, TokenRef};
use aurinko_sync::sync::WRITES_IN_FLIGHT;

use crate::helpers::StoreAt;

/// A token a sync request asks with, owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    Page(String),
    Delta(String),
}

/// A page: the token that asks for it, in its collection's stream.
type Page = (Collection, Endpoint, Token);

/// The stored state of each collection of an account that has one.
pub type Stored = BTreeMap<Collection, SyncState>;

/// Reads the stored state of `collections` of `account`.
pub fn read_stored(store_at: &StoreAt, account: &str, collections: &[Collection]) -> Result<Stored, String> {
    let store = store_at.open_read_only().map_err(|e| format!("store opens read-only: {e}"))?;
    let mut stored = Stored::new();
    for collection in collections {
        let key = match collection {
            Collection::Calendar(id) => CollectionKey::calendar(account, id),
            Collection::Email => CollectionKey::account_wide(account, Kind::Email),
            Collection::Contacts => CollectionKey::account_wide(account, Kind::Contacts),
            Collection::Tasks(id) => CollectionKey::listed(account, Kind::Tasks, id),
        };
        if let Some(state) = store.load_state(&key).map_err(|e| format!("state of {key}: {e}"))? {
            stored.insert(collection.clone(), state);
        }
    }
    Ok(stored)
}

/// What one case's runs have shown so far.
#[derive(Default)]
pub struct Audit {
    /// The page each answered page leads to, for pages whose commit the
    /// driver sends at once (not an empty last page, which it may keep back
    /// to store with a later commit).
    next: HashMap<Page, Token>,
    requested: HashSet<Page>,
    /// Collections whose stored tokens came from a provisioning and have
    /// not been answered 410 since: provisioning one again needs a 410
    /// first.
    settled: BTreeSet<Collection>,
}

/// One collection within one run.
struct InRun {
    /// A provisioning would be explained now.
    owed: bool,
    /// Provisioning requests were sent and no delta request since.
    provisioning: bool,
    /// The stream's first request of the run is still to come (and no
    /// provisioning came first).
    first: [bool; 2],
    /// A request was answered 410 in this run.
    expired: bool,
    /// The collection's last answer other than a fault was a 410.
    after_expiry: bool,
}

impl Audit {
    /// A calendar was added to the fake, or came back: a new collection.
    pub fn added(&mut self, collection: &Collection) {
        self.settled.remove(collection);
    }

    /// Checks one run's requests (`log`, in the order the fake answered
    /// them) against the store before and after it.
    pub fn run(&mut self, before: &Stored, log: &[RequestRecord], after: &Stored) -> Result<(), String> {
        let mut runs: BTreeMap<Collection, InRun> = BTreeMap::new();
        for (n, r) in log.iter().enumerate() {
            let Some(collection) = &r.collection else { continue };
            if !matches!(r.endpoint, Endpoint::SyncStart | Endpoint::SyncUpdated | Endpoint::SyncDeleted) {
                continue;
            }
            let at = format!("{collection:?}, request {} of the run", n + 1);
            let run = runs.entry(collection.clone()).or_insert_with(|| InRun {
                owed: !self.settled.contains(collection),
                provisioning: false,
                first: [true, true],
                expired: false,
                after_expiry: false,
            });
            let stream = match r.endpoint {
                Endpoint::SyncStart => {
                    if !run.owed {
                        return Err(format!(
                            "{at}: provisioned again, with no expired token nor a new collection to explain it"
                        ));
                    }
                    // A new generation: its pages are new questions, even
                    // where its tokens equal the last one's (same window, no
                    // change since).
                    self.next.retain(|page, _| page.0 != *collection);
                    self.requested.retain(|page| page.0 != *collection);
                    run.provisioning = true;
                    run.first = [false, false];
                    run.after_expiry = false;
                    continue;
                }
                Endpoint::SyncUpdated => Stream::Updated,
                _ => Stream::Deleted,
            };
            let Some(token) = asked(r) else {
                return Err(format!("{at}: a {} request without a token", stream.as_str()));
            };
            if run.provisioning {
                run.provisioning = false;
                run.owed = false;
            }
            let page = (collection.clone(), r.endpoint, token.clone());
            let first = &mut run.first[stream as usize];
            if *first {
                *first = false;
                let held = before.get(collection).filter(|s| usable(s)).and_then(|s| held(s, stream));
                if held.as_ref() != Some(&token) {
                    return Err(format!(
                        "{at}: the run's first {} request asks {token:?}, but the store held {held:?} when the \
                         run began{}",
                        stream.as_str(),
                        if self.committed(&page) { ": a committed page fetched again" } else { "" }
                    ));
                }
            } else if !run.after_expiry && self.committed(&page) {
                return Err(format!("{at}: {} {token:?} fetched again after it was committed", stream.as_str()));
            }
            self.requested.insert(page.clone());
            if let Some(next) = answered(r).filter(|next| *next != token) {
                self.next.insert(page, next);
            }
            if !faulted(r) {
                run.after_expiry = r.status == 410;
            }
            if r.status == 410 {
                run.owed = true;
                run.expired = true;
            }
        }
        let collections: BTreeSet<&Collection> = before.keys().chain(after.keys()).chain(runs.keys()).collect();
        for collection in collections {
            match after.get(collection) {
                Some(state) if state.phase == Phase::Removed => {
                    self.settled.remove(collection);
                }
                Some(state) if usable(state) => {
                    self.settled.insert(collection.clone());
                }
                _ if self.settled.contains(collection) && !runs.get(collection).is_some_and(|r| r.expired) => {
                    return Err(format!(
                        "{collection:?}: the run left it without tokens, with no expired token to explain it"
                    ));
                }
                _ => {
                    self.settled.remove(collection);
                }
            }
        }
        Ok(())
    }

    /// Whether the page `WRITES_IN_FLIGHT + 1` pages later in its stream
    /// was asked for: the page was committed before that request was sent.
    fn committed(&self, page: &Page) -> bool {
        let after = |page: &Page| self.next.get(page).map(|next| (page.0.clone(), page.1, next.clone()));
        let mut later = page.clone();
        for _ in 0..=WRITES_IN_FLIGHT {
            match after(&later) {
                Some(next) => later = next,
                None => return false,
            }
        }
        self.requested.contains(&later)
    }
}

/// The token a sync request asked with.
pub fn asked(r: &RequestRecord) -> Option<Token> {
    r.page_token.clone().map(Token::Page).or_else(|| r.delta_token.clone().map(Token::Delta))
}

/// An injected fault answered instead of the endpoint (a latency fault
/// only delays the real answer).
fn faulted(r: &RequestRecord) -> bool {
    r.fault.is_some_and(|f| f != FaultKind::Latency)
}

/// The token a page's answer leads to, when it was answered with one and
/// the driver commits it at once: it brought records or has a next page.
fn answered(r: &RequestRecord) -> Option<Token> {
    if r.status != 200 || faulted(r) || (r.records == 0 && r.next_page_token.is_none()) {
        return None;
    }
    r.next_page_token.clone().map(Token::Page).or_else(|| r.next_delta_token.clone().map(Token::Delta))
}

/// Whether a pass starting from `state` fetches with its tokens rather than
/// provisioning (as `Pass::new` decides).
fn usable(state: &SyncState) -> bool {
    matches!(state.phase, Phase::Updated | Phase::Deleted | Phase::Idle)
        && state.updated.delta_token.is_some()
        && state.deleted.delta_token.is_some()
}

/// The token a pass starting from `state` asks `stream` with first.
pub fn held(state: &SyncState, stream: Stream) -> Option<Token> {
    match state.cursor(stream).request()? {
        TokenRef::Page(page) => Some(Token::Page(page.to_string())),
        TokenRef::Delta(delta) => Some(Token::Delta(delta.to_string())),
    }
}
