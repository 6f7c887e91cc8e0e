//! Loopback HTTP for the chaos run, with std alone: a client that posts to
//! the daemon, and receivers whose behaviour changes while it runs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a POST to the daemon came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Answered 200: every record in it was accepted.
    Acked,
    /// Not sent: the daemon was not there to connect to.
    Unreached,
    /// Sent, and the connection died before the answer: processed or not.
    Unknown,
    /// Answered with another status.
    Refused(u16),
}

/// POSTs an NDJSON body to `addr`'s `/v1/records`.
pub(crate) fn post(addr: &str, body: &str) -> Sent {
    let Ok(mut stream) = TcpStream::connect(addr) else { return Sent::Unreached };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).is_err() {
        return Sent::Unknown;
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).is_err() {
        return Sent::Unknown;
    }
    match String::from_utf8_lossy(&answer).split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
        Some(200) => Sent::Acked,
        Some(status) => Sent::Refused(status),
        None => Sent::Unknown,
    }
}

/// How a receiver answers now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Ok = 0,
    Error = 1,
    Hang = 2,
    Down = 3,
}

/// A receiver on 127.0.0.1: a webhook, or an Airflow that dedupes runs by
/// `dag_run_id`. It keeps what it was sent and accepted.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Accepted bodies: the webhook's events.
    pub(crate) bodies: Arc<Mutex<Vec<String>>>,
    /// Airflow: runs by `dag_run_id`, with how often each was posted.
    pub(crate) runs: Arc<Mutex<BTreeMap<String, u32>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(AtomicU8::new(Mode::Ok as u8));
        let stop = Arc::new(AtomicBool::new(false));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let runs = Arc::new(Mutex::new(BTreeMap::new()));
        let (m, s, b, r) = (Arc::clone(&mode), Arc::clone(&stop), Arc::clone(&bodies), Arc::clone(&runs));
        let thread = std::thread::spawn(move || serve(listener, addr, &m, &s, &b, &r));
        Ok(Self { addr, mode, stop, bodies, runs, thread: Some(thread) })
    }

    pub(crate) fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mode_of(mode: &AtomicU8) -> Mode {
    match mode.load(Ordering::SeqCst) {
        1 => Mode::Error,
        2 => Mode::Hang,
        3 => Mode::Down,
        _ => Mode::Ok,
    }
}

/// Accepts until `stop`; closes the port while `Down` and opens it again after.
fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    mode: &AtomicU8,
    stop: &AtomicBool,
    bodies: &Mutex<Vec<String>>,
    runs: &Mutex<BTreeMap<String, u32>>,
) {
    let mut listener = Some(listener);
    while !stop.load(Ordering::SeqCst) {
        if mode_of(mode) == Mode::Down {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                handle(stream, mode_of(mode), bodies, runs);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(stream: TcpStream, mode: Mode, bodies: &Mutex<Vec<String>>, runs: &Mutex<BTreeMap<String, u32>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let status = match mode {
        Mode::Hang => {
            // Longer than the daemon's timeout: the attempt fails, unanswered.
            std::thread::sleep(Duration::from_millis(1500));
            return;
        }
        Mode::Error | Mode::Down => "500 Internal Server Error",
        Mode::Ok => match run_id(&body) {
            Some(run) => {
                let mut runs = runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let seen = runs.entry(run).or_insert(0);
                *seen += 1;
                if *seen > 1 { "409 Conflict" } else { "200 OK" }
            }
            None => {
                bodies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(body);
                "200 OK"
            }
        },
    };
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
    let _ = reader.get_mut().write_all(answer.as_bytes());
}

/// The `dag_run_id` of an Airflow trigger, found in its JSON body.
pub(crate) fn run_id(body: &str) -> Option<String> {
    let at = body.find("\"dag_run_id\"")?;
    let rest = &body[at + "\"dag_run_id\"".len()..];
    let start = rest.find('"')? + 1;
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_owned())
}

/// The value of `"key": "..."` or `"key": N` in a flat JSON object.
pub(crate) fn field<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let at = object.find(&pattern)? + pattern.len();
    let rest = object[at..].trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return Some(&quoted[..quoted.find('"')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_flat_json() {
        let event = r#"{"id":"x","type":"finding","model":"m1","seq":42,"signal":"latency_ms"}"#;
        assert_eq!(field(event, "model"), Some("m1"));
        assert_eq!(field(event, "seq"), Some("42"));
        assert_eq!(field(event, "nope"), None);
        assert_eq!(run_id(r#"{"dag_run_id": "model-monitor-ab", "conf": {}}"#).as_deref(), Some("model-monitor-ab"));
    }
}
