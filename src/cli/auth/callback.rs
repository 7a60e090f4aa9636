//! Where the browser comes back to: a listener on 127.0.0.1 for the OAuth `returnUrl`, or
//! the redirect's address pasted on stdin (`--no-browser`), made into a [`Callback`].
//!
//! Anything on the machine can reach a loopback port, so the listener is bounded like the
//! service's: HTTP/1.1 only, a request head within [`HEAD_TIMEOUT`] and at most [`MAX_BUF`]
//! bytes, at most [`MAX_CONNECTIONS`] connections at once (at the cap the oldest is closed to
//! make room, so idle connections held open cannot keep the browser out), no
//! request body read. Requests that are not the callback (`/favicon.ico`, a probe) get a 404
//! and change nothing; the first that is ends the wait, and every later one is turned away.
//! Whether the callback is genuine (its `state`) is for the caller to check.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The path of the return URL on the listener.
pub const CALLBACK_PATH: &str = "/callback";
/// A connection's read buffer at most (hyper's minimum is 8 KiB): a longer request head is
/// refused.
const MAX_BUF: usize = 16 * 1024;
/// A request head must arrive within this of the connection opening.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, at most.
const MAX_CONNECTIONS: usize = 16;
/// How long the answer to the callback may take to reach the browser before the command
/// goes on without it.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// The most bytes of a pasted redirect address read from stdin.
const MAX_PASTED: u64 = 16 * 1024;

/// The query of the redirect back from Aurinko, as received (not yet checked).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// `success`, or anything else when the flow failed.
    pub status: Option<String>,
    /// OAuth's refusal (`access_denied`), with its description.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Callback {
    /// The callback a query string holds; `None` when it holds none of its parameters (a
    /// request for something else).
    pub fn from_query(query: &str) -> Option<Callback> {
        let mut callback = Callback::default();
        let mut any = false;
        for (key, value) in form_pairs(query) {
            let slot = match key.as_str() {
                "code" => &mut callback.code,
                "state" => &mut callback.state,
                "status" => &mut callback.status,
                "error" => &mut callback.error,
                "error_description" | "message" => &mut callback.error_description,
                _ => continue,
            };
            any = true;
            // A repeated parameter keeps its first value; the state check sees that one.
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        any.then_some(callback)
    }

    /// The callback in an address pasted by the user (the browser's location bar after the
    /// redirect).
    pub fn from_pasted(text: &str) -> Result<Callback, String> {
        let text = text.trim();
        let url = reqwest::Url::parse(text)
            .map_err(|_| "the pasted text is not a URL: paste the whole address the browser ended at".to_string())?;
        url.query()
            .and_then(Callback::from_query)
            .ok_or_else(|| "the pasted address carries no code, state or error: is it the redirect's?".to_string())
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space); what does not decode to
/// UTF-8 is replaced, so a broken parameter cannot pass for a good one.
fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    };
    query.split('&').filter(|pair| !pair.is_empty()).map(move |pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key), decode(value))
    })
}

/// Why no callback came.
#[derive(Debug)]
pub enum WaitError {
    TimedOut,
    /// stdin ended, or could not be read, before a line.
    NoInput(String),
    Pasted(String),
}

/// The bound listener, before the browser is sent off.
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    /// Binds 127.0.0.1:`port` (0: a free one). A port in use is said so.
    pub async fn bind(port: u16) -> Result<Listener, String> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("port {port} on 127.0.0.1 is taken by another program: free it or choose another --port")
            }
            _ => format!("cannot listen on 127.0.0.1:{port} for the return URL: {e}"),
        })?;
        let port = listener.local_addr().map_err(|e| format!("cannot read the listener's address: {e}"))?.port();
        Ok(Listener { listener, port })
    }

    /// The return URL the browser is sent back to.
    pub fn return_url(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Serves until the first callback arrives or `timeout` passes; the callback's answer
    /// is given a moment to reach the browser.
    pub async fn wait(self, timeout: Duration) -> Result<Callback, WaitError> {
        let (sender, mut received) = oneshot::channel::<(Callback, u64)>();
        let sender = Arc::new(Mutex::new(Some(sender)));
        let mut connections: HashMap<u64, JoinHandle<()>> = HashMap::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut next_id = 0u64;
        let (callback, id) = loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    connections.retain(|_, handle| !handle.is_finished());
                    // At the cap the oldest goes: the browser's request is answered at once,
                    // so the oldest is one that has been held open without one.
                    let oldest = connections.keys().min().copied();
                    if let Some(oldest) = oldest.filter(|_| connections.len() >= MAX_CONNECTIONS)
                        && let Some(handle) = connections.remove(&oldest)
                    {
                        handle.abort();
                    }
                    next_id += 1;
                    let id = next_id;
                    let sender = sender.clone();
                    let service = hyper::service::service_fn(move |request| answer(request, sender.clone(), id));
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT).max_buf_size(MAX_BUF);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    connections.insert(id, tokio::spawn(async move {
                        let _ = connection.await;
                    }));
                }
                got = &mut received => match got {
                    Ok(got) => break got,
                    Err(_) => return Err(WaitError::TimedOut),
                },
                () = &mut deadline => return Err(WaitError::TimedOut),
            }
        };
        // The listener closes here; the answer on the callback's connection may finish.
        drop(self.listener);
        if let Some(handle) = connections.remove(&id) {
            let _ = tokio::time::timeout(ANSWER_GRACE, handle).await;
        }
        for handle in connections.into_values() {
            handle.abort();
        }
        Ok(callback)
    }
}

type Sender = Arc<Mutex<Option<oneshot::Sender<(Callback, u64)>>>>;

/// One request: the callback (the first one only) or a 404.
async fn answer(
    request: Request<hyper::body::Incoming>,
    sender: Sender,
    connection: u64,
) -> Result<Response<Body>, Infallible> {
    let callback = (request.method() == hyper::Method::GET && request.uri().path() == CALLBACK_PATH)
        .then(|| request.uri().query().and_then(Callback::from_query))
        .flatten();
    let (status, text) = match callback {
        None => (StatusCode::NOT_FOUND, "Not found.\n"),
        Some(callback) => {
            let first = sender.lock().unwrap_or_else(PoisonError::into_inner).take();
            match first {
                Some(sender) => {
                    let _ = sender.send((callback, connection));
                    (
                        StatusCode::OK,
                        "aurinko-sync received the answer. You can close this window; the terminal says how it went.\n",
                    )
                }
                None => (StatusCode::GONE, "aurinko-sync already received an answer.\n"),
            }
        }
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    headers.insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The redirect's address, pasted on stdin: one line, at most [`MAX_PASTED`] bytes, within
/// `timeout`.
pub async fn read_pasted(timeout: Duration) -> Result<Callback, WaitError> {
    // A thread of its own: a read of stdin cannot be cancelled, and the runtime's shutdown
    // does not wait for it.
    let read = tokio::task::spawn_blocking(|| {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        std::io::stdin().lock().take(MAX_PASTED).read_line(&mut line).map(|n| (n, line))
    });
    let read = tokio::time::timeout(timeout, read).await.map_err(|_| WaitError::TimedOut)?;
    match read {
        Ok(Ok((0, _))) => Err(WaitError::NoInput("stdin ended before the redirect's address was pasted".to_string())),
        Ok(Ok((_, line))) if !line.ends_with('\n') && line.len() as u64 >= MAX_PASTED => {
            Err(WaitError::Pasted(format!("the pasted line is longer than {} KiB", MAX_PASTED / 1024)))
        }
        Ok(Ok((_, line))) => Callback::from_pasted(&line).map_err(WaitError::Pasted),
        Ok(Err(e)) => Err(WaitError::NoInput(format!("cannot read stdin: {e}"))),
        Err(e) => Err(WaitError::NoInput(format!("cannot read stdin: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_a_callback_only_with_its_parameters() {
        assert_eq!(Callback::from_query("x=1"), None);
        assert_eq!(Callback::from_query(""), None);
        let c = Callback::from_query("code=c%201&state=s+2&state=forged&status=success").unwrap();
        assert_eq!((c.code.as_deref(), c.state.as_deref()), (Some("c 1"), Some("s 2")));
        assert_eq!(c.status.as_deref(), Some("success"));
        let c = Callback::from_query("error=access_denied&error_description=no%0Away&state=s").unwrap();
        assert_eq!((c.error.as_deref(), c.error_description.as_deref()), (Some("access_denied"), Some("no\nway")));
    }

    #[test]
    fn a_pasted_address_needs_to_be_the_redirect() {
        let c = Callback::from_pasted("  http://127.0.0.1/callback?code=abc&state=s1\r\n").unwrap();
        assert_eq!((c.code.as_deref(), c.state.as_deref()), (Some("abc"), Some("s1")));
        assert!(Callback::from_pasted("code=abc").unwrap_err().contains("not a URL"));
        assert!(Callback::from_pasted("https://example.com/").unwrap_err().contains("no code"));
    }
}
