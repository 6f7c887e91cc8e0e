//! Test doubles for webhooks and HTTP dispatchers (feature `test-util`).
//!
//! [`WebhookReceiver`] is a real, minimal HTTP/1.1 server on `127.0.0.1:0`. It
//! records every request and answers from a script, so a test can check what
//! was sent and how failures are handled, without mocks:
//!
//! ```
//! # use monitor_observers::testing::{Response, WebhookReceiver};
//! # use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let receiver = WebhookReceiver::start().await?;
//! receiver.respond_with(vec![503, 200]); // then 200 for ever
//! let url = receiver.url_for("/hook");
//! // ... point a webhook at `url`, send something ...
//! let requests = receiver.wait_for(0, Duration::from_secs(1)).await;
//! assert!(requests.is_empty());
//! # let _ = url; Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The largest head and body the receiver accepts.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request, as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path with its query, `/hook?x=1`.
    pub path: String,
    /// The headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When the request was complete.
    pub received_at: Instant,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (`Retry-After`, ...).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// Wait this long before answering (a slow or hanging receiver).
    pub delay: Duration,
    /// Answer these raw bytes instead of HTTP, then close.
    pub raw: Option<Vec<u8>>,
    /// Stream a body of this many bytes (`x`s) instead of `body`, written
    /// as the client reads: a huge answer that the receiver never holds.
    pub streamed: Option<u64>,
}

impl Response {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: String::new(), delay: Duration::ZERO, raw: None, streamed: None }
    }

    /// `status` with a body of `len` bytes, streamed: a receiver that
    /// answers a gigabyte (or a terabyte) without holding it.
    /// [`WebhookReceiver::body_bytes_sent`] tells how much the client took.
    pub fn huge_body(status: u16, len: u64) -> Self {
        Self { streamed: Some(len), ..Self::status(status) }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Answers only after `delay`.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A receiver that never answers (within an hour).
    pub fn hang() -> Self {
        Self::status(200).delay(Duration::from_secs(3600))
    }

    /// Bytes that are not HTTP, then the connection closes.
    pub fn garbage() -> Self {
        Self { raw: Some(b"\x00\x01 this is not HTTP \xff\r\n\r\n".to_vec()), ..Self::status(200) }
    }
}

impl From<u16> for Response {
    fn from(status: u16) -> Self {
        Self::status(status)
    }
}

#[derive(Debug)]
struct State {
    requests: Vec<Request>,
    script: VecDeque<Response>,
    default: Response,
    body_bytes_sent: u64,
}

/// A real HTTP/1.1 server on `127.0.0.1:0` that records requests and answers
/// from a script. Keep-alive is supported. The server stops when this value
/// is dropped. See the [module docs](self).
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    task: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Binds `127.0.0.1:0` and starts serving on the current runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            script: VecDeque::new(),
            default: Response::status(200),
            body_bytes_sent: 0,
        }));
        let arrived = Arc::new(Notify::new());
        let task = tokio::spawn(serve(listener, Arc::clone(&state), Arc::clone(&arrived)));
        Ok(Self { addr, state, arrived, task })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses, in order, then with
    /// the default (200 unless changed).
    pub fn respond_with(&self, statuses: Vec<u16>) {
        self.lock().script.extend(statuses.into_iter().map(Response::status));
    }

    /// Answers the next request with `response`, after those already scripted.
    pub fn push_response(&self, response: impl Into<Response>) {
        self.lock().script.push_back(response.into());
    }

    /// The answer once the script has run out.
    pub fn set_default(&self, response: impl Into<Response>) {
        self.lock().default = response.into();
    }

    /// The bytes of streamed bodies ([`Response::huge_body`]) written so
    /// far: a client that stops reading stops this count (give or take the
    /// sockets' buffers).
    pub fn body_bytes_sent(&self) -> u64 {
        self.lock().body_bytes_sent
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Waits until at least `n` requests have arrived, or `timeout` has
    /// passed; returns those received (check the count).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            {
                let state = self.lock();
                if state.requests.len() >= n {
                    return state.requests.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.requests();
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, arrived: Arc<Notify>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(connection(stream, Arc::clone(&state), Arc::clone(&arrived)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        // Reap finished connections; the set aborts the rest when dropped.
        while connections.try_join_next().is_some() {}
    }
}

async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>, arrived: Arc<Notify>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else { return };
        let close = request.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let response = {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.requests.push(request);
            s.script.pop_front().unwrap_or_else(|| s.default.clone())
        };
        arrived.notify_waiters();
        if !response.delay.is_zero() {
            tokio::time::sleep(response.delay).await;
        }
        if let Some(raw) = response.raw {
            let _ = stream.write_all(&raw).await;
            let _ = stream.shutdown().await;
            return;
        }
        let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let len = response.streamed.unwrap_or(response.body.len() as u64);
        head.push_str(&format!("content-length: {len}\r\n"));
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(len) = response.streamed {
            if stream.write_all(&bytes).await.is_err() || !stream_body(&mut stream, len, &state).await {
                let _ = stream.shutdown().await;
                return;
            }
            if close {
                let _ = stream.shutdown().await;
                return;
            }
            continue;
        }
        bytes.extend_from_slice(response.body.as_bytes());
        if stream.write_all(&bytes).await.is_err() || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Writes `len` filler bytes, counting them; `false` when the client went away.
async fn stream_body(stream: &mut TcpStream, len: u64, state: &Mutex<State>) -> bool {
    let chunk = [b'x'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        if stream.write_all(&chunk[..n]).await.is_err() {
            return false;
        }
        left -= n as u64;
        state.lock().unwrap_or_else(PoisonError::into_inner).body_bytes_sent += n as u64;
    }
    true
}

/// Reads one request; `None` at EOF or on a malformed request.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD || !fill(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    buf.drain(..head_end + 4);
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(stream, buf).await?
    } else {
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        if len > MAX_BODY {
            return None;
        }
        while buf.len() < len {
            if !fill(stream, buf).await {
                return None;
            }
        }
        buf.drain(..len).collect()
    };
    Some(Request { method, path, headers, body, received_at: Instant::now() })
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD || !fill(stream, buf).await {
                return None;
            }
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if size > MAX_BODY || body.len() + size > MAX_BODY {
            return None;
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await {
                return None;
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return Some(body);
        }
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
