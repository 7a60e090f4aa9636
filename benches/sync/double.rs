//! A minimal, fast Aurinko double: every answer is a pre-encoded page found
//! by its token, so the double costs next to nothing next to the sync.
//! Requests are counted per endpoint.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;

use crate::data::Dataset;

#[derive(Default)]
pub struct Counters {
    pub calendars: AtomicU64,
    pub start: AtomicU64,
    /// `/sync/updated` requests, and those of them with a `pageToken`.
    pub updated: AtomicU64,
    pub updated_paged: AtomicU64,
    pub deleted: AtomicU64,
    /// Requests the double could not answer (unknown token or calendar).
    pub unknown: AtomicU64,
    /// `/sync/deleted` requests per calendar: one closes each pass.
    pub passes_by_calendar: Vec<AtomicU64>,
    /// `POST /sync` requests per calendar, and when each was answered.
    pub starts_by_calendar: Vec<AtomicU64>,
    pub start_times: Mutex<Vec<Instant>>,
    /// Each calendar's first this many `POST /sync` answer `ready: false`.
    pub not_ready_polls: AtomicU32,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub calendars: u64,
    pub start: u64,
    pub updated: u64,
    pub updated_paged: u64,
    pub deleted: u64,
    pub unknown: u64,
}

impl Counts {
    pub fn since(self, before: Counts) -> Counts {
        Counts {
            calendars: self.calendars - before.calendars,
            start: self.start - before.start,
            updated: self.updated - before.updated,
            updated_paged: self.updated_paged - before.updated_paged,
            deleted: self.deleted - before.deleted,
            unknown: self.unknown - before.unknown,
        }
    }

    pub fn total(&self) -> u64 {
        self.calendars + self.start + self.updated + self.deleted + self.unknown
    }

    pub fn describe(&self) -> String {
        format!(
            "{} = GET /calendars {} + POST /sync {} + GET /sync/updated {} ({} with pageToken) + GET /sync/deleted {}{}",
            self.total(),
            self.calendars,
            self.start,
            self.updated,
            self.updated_paged,
            self.deleted,
            if self.unknown > 0 { format!(" + unanswerable {}", self.unknown) } else { String::new() }
        )
    }
}

struct Shared {
    data: Arc<Dataset>,
    counters: Arc<Counters>,
}

pub struct Double {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Double {
    pub async fn start(data: Arc<Dataset>) -> Double {
        let counters = Arc::new(Counters {
            passes_by_calendar: (0..data.calendars.len()).map(|_| AtomicU64::new(0)).collect(),
            starts_by_calendar: (0..data.calendars.len()).map(|_| AtomicU64::new(0)).collect(),
            ..Counters::default()
        });
        let shared = Arc::new(Shared { data, counters: counters.clone() });
        let app = Router::new()
            .route("/v1/calendars", get(list_calendars))
            .route("/v1/calendars/{id}/sync", post(start_sync))
            .route("/v1/calendars/{id}/sync/updated", get(updated))
            .route("/v1/calendars/{id}/sync/deleted", get(deleted))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("the double binds");
        let addr = listener.local_addr().expect("a local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the double serves");
        });
        Double { addr, counters, task }
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            calendars: load(&c.calendars),
            start: load(&c.start),
            updated: load(&c.updated),
            updated_paged: load(&c.updated_paged),
            deleted: load(&c.deleted),
            unknown: load(&c.unknown),
        }
    }

    /// Makes each calendar's first `n` provisionings answer `ready: false`.
    pub fn set_not_ready_polls(&self, n: u32) {
        self.counters.not_ready_polls.store(n, Ordering::Relaxed);
    }

    /// When each `POST /sync` so far was answered.
    pub fn start_times(&self) -> Vec<Instant> {
        self.counters.start_times.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Passes closed so far, per calendar.
    pub fn passes(&self) -> Vec<u64> {
        self.counters.passes_by_calendar.iter().map(|a| a.load(Ordering::Relaxed)).collect()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    delta_token: Option<String>,
    page_token: Option<String>,
}

fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn invalid_token(shared: &Shared) -> Response {
    shared.counters.unknown.fetch_add(1, Ordering::Relaxed);
    let body = r#"{"code":"token.notValid","message":"unknown sync token"}"#;
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn not_found(shared: &Shared) -> Response {
    shared.counters.unknown.fetch_add(1, Ordering::Relaxed);
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], r#"{"code":"notFound"}"#).into_response()
}

async fn list_calendars(State(shared): State<Arc<Shared>>, Query(q): Query<Tokens>) -> Response {
    let index = match q.page_token.as_deref() {
        None => Some(0),
        Some(t) => t.parse::<usize>().ok(),
    };
    match index.and_then(|i| shared.data.calendar_pages.get(i)) {
        Some(page) => {
            shared.counters.calendars.fetch_add(1, Ordering::Relaxed);
            json(page.clone())
        }
        None => invalid_token(&shared),
    }
}

fn calendar_index(shared: &Shared, id: &str) -> Option<usize> {
    let n: usize = id.strip_prefix("cal-")?.parse().ok()?;
    (shared.data.calendars.get(n)? == id).then_some(n)
}

async fn start_sync(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Some(n) = calendar_index(&shared, &id) else {
        return not_found(&shared);
    };
    let c = &shared.counters;
    c.start.fetch_add(1, Ordering::Relaxed);
    c.start_times.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
    let earlier = c.starts_by_calendar[n].fetch_add(1, Ordering::Relaxed);
    if earlier < u64::from(c.not_ready_polls.load(Ordering::Relaxed)) {
        return json(Bytes::from_static(br#"{"ready":false}"#));
    }
    json(Bytes::from(format!(r#"{{"ready":true,"syncUpdatedToken":"u0.{id}","syncDeletedToken":"d0.{id}"}}"#)))
}

async fn updated(State(shared): State<Arc<Shared>>, Path(id): Path<String>, Query(q): Query<Tokens>) -> Response {
    let paged = q.page_token.is_some();
    let Some(token) = q.page_token.or(q.delta_token) else { return invalid_token(&shared) };
    match shared.data.updated.get(&token).filter(|_| Dataset::token_matches(&token, &id)) {
        Some(page) => {
            shared.counters.updated.fetch_add(1, Ordering::Relaxed);
            if paged {
                shared.counters.updated_paged.fetch_add(1, Ordering::Relaxed);
            }
            json(page.clone())
        }
        None => invalid_token(&shared),
    }
}

async fn deleted(State(shared): State<Arc<Shared>>, Path(id): Path<String>, Query(q): Query<Tokens>) -> Response {
    let Some(token) = q.page_token.or(q.delta_token) else { return invalid_token(&shared) };
    let (Some(page), Some(n)) = (shared.data.deleted.get(&token), calendar_index(&shared, &id)) else {
        return invalid_token(&shared);
    };
    if !Dataset::token_matches(&token, &id) {
        return invalid_token(&shared);
    }
    shared.counters.deleted.fetch_add(1, Ordering::Relaxed);
    shared.counters.passes_by_calendar[n].fetch_add(1, Ordering::Relaxed);
    json(page.clone())
}
