//! Injected failures: the transient trouble a real Aurinko deployment (or the network in front of
//! it) produces, so clients prove their retry, backoff and parsing paths against it.

use rand::Rng;
use rand::rngs::StdRng;

/// Which requests fail and how.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fraction of requests (0.0..=1.0) that get a fault instead of their normal answer.
    pub rate: f64,
    /// Kinds to choose from, uniformly; empty means every kind.
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

    /// Rolls the dice for one request.
    pub(crate) fn choose(&self, rng: &mut StdRng) -> Option<FaultKind> {
        let rate = if self.rate.is_nan() { 0.0 } else { self.rate.clamp(0.0, 1.0) };
        if rate == 0.0 || !rng.random_bool(rate) {
            return None;
        }
        let kinds: &[FaultKind] = if self.kinds.is_empty() { &FaultKind::ALL } else { &self.kinds };
        Some(kinds[rng.random_range(0..kinds.len())])
    }
}

/// One kind of injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// 500 with an `ApiRequestFailed` body.
    InternalError,
    /// 503 with an `ApiRequestFailed` body.
    Unavailable,
    /// 429 with `Retry-After: 1` (delay in seconds; see `FakeOptions::retry_after_secs`).
    TooManyRequestsSeconds,
    /// 429 with `Retry-After` as an HTTP-date 1–2 s ahead (`FakeOptions::retry_after_secs`).
    TooManyRequestsDate,
    /// 200 whose JSON body is cut in half; Content-Length matches the cut body, so the HTTP
    /// exchange is well-formed and only JSON parsing fails.
    TruncatedBody,
    /// The connection is dropped before a complete response: a transport error for the client.
    ResetConnection,
    /// The normal answer, about 300 ms late (`FakeOptions::latency_fault`).
    Latency,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::InternalError,
        FaultKind::Unavailable,
        FaultKind::TooManyRequestsSeconds,
        FaultKind::TooManyRequestsDate,
        FaultKind::TruncatedBody,
        FaultKind::ResetConnection,
        FaultKind::Latency,
    ];

    /// Whether the client gets no usable answer (whatever went over the wire): such requests
    /// are logged with [`RequestRecord::NO_ANSWER`](super::RequestRecord::NO_ANSWER).
    pub fn leaves_no_answer(self) -> bool {
        matches!(self, FaultKind::TruncatedBody | FaultKind::ResetConnection)
    }

    /// Default extra delay of a [`FaultKind::Latency`] fault.
    pub const LATENCY: std::time::Duration = std::time::Duration::from_millis(300);
}
