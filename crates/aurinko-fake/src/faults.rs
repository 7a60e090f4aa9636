//! Injected failures: the transient trouble a real Aurinko deployment (or the network in front of
//! it) produces, so clients prove their retry, backoff and parsing paths against it.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Endpoint;

/// Which requests fail and how.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fraction of requests (0.0..=1.0) that get a fault instead of their normal answer.
    pub rate: f64,
    /// Kinds to choose from; empty means every kind. They come in rounds, each kind once per
    /// round in a seeded random order, so that every `kinds.len()` faults hold each kind.
    pub kinds: Vec<FaultKind>,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Faults `rate` of the requests with one of `kinds` (all kinds when empty).
    pub fn new(rate: f64, kinds: impl Into<Vec<FaultKind>>) -> Self {
        Self { rate, kinds: kinds.into() }
    }

    /// Rolls the dice for one request; a fault is the next kind of the current round, `round`
    /// (empty when the faults were set).
    pub(crate) fn choose(&self, rng: &mut StdRng, round: &mut Vec<FaultKind>) -> Option<FaultKind> {
        let rate = if self.rate.is_nan() { 0.0 } else { self.rate.clamp(0.0, 1.0) };
        if rate == 0.0 || !rng.random_bool(rate) {
            return None;
        }
        if round.is_empty() {
            round.extend(if self.kinds.is_empty() { &FaultKind::ALL[..] } else { &self.kinds });
            round.shuffle(rng);
        }
        round.pop()
    }
}

/// One kind of injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// 500 with an `ApiRequestFailed` body.
    InternalError,
    /// 503 with an `ApiRequestFailed` body.
    Unavailable,
    /// 503 with `Retry-After: {retry_after_secs}`, as a proxy or a maintenance window sends it.
    UnavailableRetryAfter,
    /// 429 with `Retry-After: 1` (delay in seconds; see `FakeOptions::retry_after_secs`).
    TooManyRequestsSeconds,
    /// 429 with `Retry-After` as an HTTP-date 1–2 s ahead (`FakeOptions::retry_after_secs`).
    TooManyRequestsDate,
    /// 408 with `Retry-After: {retry_after_secs}` (the spec documents the header on 408).
    RequestTimeout,
    /// 502 with an HTML page, as a proxy in front of Aurinko sends it.
    BadGateway,
    /// 504 with an `ApiRequestFailed` body.
    GatewayTimeout,
    /// 200 whose JSON body is cut in half; Content-Length matches the cut body, so the HTTP
    /// exchange is well-formed and only JSON parsing fails.
    TruncatedBody,
    /// The connection is dropped before a complete response: a transport error for the client.
    ResetConnection,
    /// No answer for `FakeOptions::stall` (default 2 s), then the connection is dropped: a
    /// client timeout for a client that waits less (the fault tests set `api.timeout_secs = 2` against 4 s stalls), a late
    /// reset for one that waits longer.
    Stall,
    /// The normal answer, about 300 ms late (`FakeOptions::latency_fault`).
    Latency,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::InternalError,
        FaultKind::Unavailable,
        FaultKind::UnavailableRetryAfter,
        FaultKind::TooManyRequestsSeconds,
        FaultKind::TooManyRequestsDate,
        FaultKind::RequestTimeout,
        FaultKind::BadGateway,
        FaultKind::GatewayTimeout,
        FaultKind::TruncatedBody,
        FaultKind::ResetConnection,
        FaultKind::Stall,
        FaultKind::Latency,
    ];

    /// Whether the client gets no usable answer (whatever went over the wire): such requests
    /// are logged with [`RequestRecord::NO_ANSWER`](super::RequestRecord::NO_ANSWER).
    pub fn leaves_no_answer(self) -> bool {
        matches!(self, FaultKind::TruncatedBody | FaultKind::ResetConnection | FaultKind::Stall)
    }

    /// Whether the answer carries a `Retry-After` of `FakeOptions::retry_after_secs` (as
    /// seconds or as a date at least that far ahead).
    pub fn announces_retry_after(self) -> bool {
        matches!(
            self,
            FaultKind::UnavailableRetryAfter
                | FaultKind::TooManyRequestsSeconds
                | FaultKind::TooManyRequestsDate
                | FaultKind::RequestTimeout
        )
    }

    /// Default extra delay of a [`FaultKind::Latency`] fault.
    pub const LATENCY: std::time::Duration = std::time::Duration::from_millis(300);

    /// Default length of a [`FaultKind::Stall`].
    pub const STALL: std::time::Duration = std::time::Duration::from_secs(2);
}

/// Which requests faults may hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FaultScope {
    /// Every request.
    #[default]
    Every,
    /// Requests to this endpoint (of any collection).
    Endpoint(Endpoint),
    /// Requests to this endpoint that carry a `pageToken`: a drain's pages after its first, so
    /// that a failing drain has committed something first.
    FollowUpPages(Endpoint),
}

impl FaultScope {
    pub(crate) fn covers(&self, endpoint: Endpoint, page_token: bool) -> bool {
        match self {
            FaultScope::Every => true,
            FaultScope::Endpoint(e) => *e == endpoint,
            FaultScope::FollowUpPages(e) => *e == endpoint && page_token,
        }
    }
}
