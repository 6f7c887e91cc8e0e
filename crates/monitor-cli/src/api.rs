//! A small HTTP/1.1 client for the daemon's own API (`jobs --url`,
//! `outbox --url`): plain `http://` on a host and port, one request per
//! connection, answers read up to a bound. It speaks to `model-monitor
//! serve` only, so it needs no general HTTP stack.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

/// The longest answer read (a list of 1000 jobs fits many times over).
const MAX_ANSWER: u64 = 16 << 20;
/// How long to wait for the daemon to connect and answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon at a base URL, with the token to send.
pub(crate) struct Api {
    host: String,
    prefix: String,
    token: Option<String>,
}

impl Api {
    /// The daemon at `url` (`http://HOST:PORT`); the token is read from the
    /// environment variable `token_env`, if given.
    pub(crate) fn new(url: &str, token_env: Option<&str>) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!(
                "--url {url}: give the daemon's address as http://HOST:PORT (the API is plain HTTP; put TLS in front of it)"
            )
        };
        let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        if host.is_empty() {
            bail!("--url {url}: no host");
        }
        let token = match token_env {
            Some(name) => {
                Some(std::env::var(name).with_context(|| format!("--token-env {name}: the variable is not set"))?)
            }
            None => None,
        };
        Ok(Self {
            host: host.to_owned(),
            prefix: format!("/{}", prefix.trim_end_matches('/')).replace("//", "/"),
            token,
        })
    }

    /// `method path`; the answer's JSON. An answer other than 2xx is an
    /// error with the daemon's message.
    pub(crate) fn call(&self, method: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        let target = format!("{}{path}", self.prefix.trim_end_matches('/'));
        let addr = self
            .host
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.host))?
            .next()
            .with_context(|| format!("cannot resolve {}", self.host))?;
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .with_context(|| format!("cannot reach the daemon at {}; is it running?", self.host))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut request =
            format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n", self.host);
        if let Some(token) = &self.token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut answer).context("reading the daemon's answer")?;
        let (status, body) = parse(&answer).with_context(|| format!("{method} {target}: not an HTTP answer"))?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{method} {target}: HTTP {status}, and the answer is not JSON"))?;
        if !(200..300).contains(&status) {
            let message = value["error"].as_str().unwrap_or("no message");
            bail!("the daemon answered HTTP {status}: {message}");
        }
        Ok(value)
    }
}

/// The status and the body of an HTTP/1.1 answer (chunked or not).
fn parse(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = &answer[end + 4..];
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_are_read() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse(plain), Some((404, b"{}".to_vec())));
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\": 1\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(parse(chunked), Some((200, b"{\"a\": 1}".to_vec())));
        assert_eq!(parse(b"garbage"), None);
        assert!(Api::new("https://x:1", None).is_err());
        assert_eq!(Api::new("http://127.0.0.1:9400/", None).unwrap().prefix, "/");
    }
}
