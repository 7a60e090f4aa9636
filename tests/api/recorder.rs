//! A recording proxy on loopback between the product and the fake: real
//! HTTP on both sides, every exchange kept so the contract test can hold
//! each request and each response to Aurinko's spec.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio_util::sync::CancellationToken;

/// One request as the product sent it and the answer as the fake gave it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order, repeats kept.
    pub query: Vec<(String, String)>,
    pub request_body: Option<Vec<u8>>,
    pub status: u16,
    pub response_body: Vec<u8>,
}

pub struct Recorder {
    pub addr: SocketAddr,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    stop: CancellationToken,
}

/// Answers some requests itself instead of the fake (a hostile peer's
/// answers, streamed, so not recorded beyond their status).
pub type Intercept = Arc<dyn Fn(&Method, &Uri, &HeaderMap) -> Option<Response> + Send + Sync>;

#[derive(Clone)]
struct Upstream {
    origin: String,
    http: reqwest::Client,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    intercept: Option<Intercept>,
}

/// Bodies larger than this are not something the fake sends.
const MAX_BODY: usize = 16 << 20;

/// Headers worth passing on in either direction (`location`: the OAuth flow's redirect,
/// passed on to the browser rather than followed here).
const FORWARDED: [&str; 8] = [
    "authorization",
    "content-type",
    "accept",
    "retry-after",
    "www-authenticate",
    "allow",
    "x-aurinko-account-id",
    "location",
];

impl Recorder {
    /// Proxies to `upstream_base` (`http://HOST:PORT/v1`).
    pub async fn spawn(upstream_base: &str) -> Recorder {
        Self::spawn_intercepting(upstream_base, None).await
    }

    /// [`spawn`](Self::spawn), with `intercept` answering the requests it
    /// chooses.
    pub async fn spawn_intercepting(upstream_base: &str, intercept: Option<Intercept>) -> Recorder {
        let origin = upstream_base.trim_end_matches("/v1").to_string();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let upstream = Upstream {
            origin,
            http: aurinko_sync::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            exchanges: exchanges.clone(),
            intercept,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("recorder binds");
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = axum::Router::new().fallback(forward).with_state(upstream);
        let serve = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move { serve.await });
        Recorder { addr, exchanges, stop }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward(State(up): State<Upstream>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let body = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    if let Some(response) = up.intercept.as_ref().and_then(|intercept| intercept(&method, &uri, &headers)) {
        up.exchanges.lock().unwrap().push(Exchange {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: Vec::new(),
            request_body: None,
            status: response.status().as_u16(),
            response_body: Vec::new(),
        });
        return response;
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", up.origin);
    let query = reqwest::Url::parse(&url)
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let mut request = up.http.request(method.clone(), &url);
    for (name, value) in headers.iter().filter(|(n, _)| FORWARDED.contains(&n.as_str())) {
        request = request.header(name, value);
    }
    let request_body = (!body.is_empty()).then(|| body.to_vec());
    let (status, response_headers, response_body) = match request.body(body).send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap_or_default();
            (status, headers, bytes.to_vec())
        }
        Err(e) => (reqwest::StatusCode::BAD_GATEWAY, Default::default(), e.to_string().into_bytes()),
    };
    up.exchanges.lock().unwrap().push(Exchange {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        request_body,
        status: status.as_u16(),
        response_body: response_body.clone(),
    });
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in response_headers.iter().filter(|(n, _)| FORWARDED.contains(&n.as_str())) {
        response = response.header(name.as_str(), value.as_bytes());
    }
    response.body(Body::from(response_body)).expect("a response from parts that were valid")
}
