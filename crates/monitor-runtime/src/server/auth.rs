//! The bearer token: read from the environment once, compared in constant
//! time, never printed.
//!
//! Both the expected token and the one presented are hashed with SHA-256
//! and the two digests compared with `subtle`'s constant-time equality, so
//! the time a check takes depends neither on how many leading bytes match
//! nor on the expected token's length.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use monitor_core::Error;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::app::{AppState, error_body};

/// The token that guards the API. Its `Debug` prints `***`.
#[derive(Clone)]
pub(crate) struct Token {
    digest: [u8; 32],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Token {
    /// The token held by the environment variable `var`; the error names
    /// the variable, never a value.
    pub(crate) fn from_env(var: &str) -> Result<Self, Error> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Self::new(v.trim())),
            Ok(_) => Err(Error::config("server.token_env", format!("environment variable `{var}` is empty"))),
            Err(std::env::VarError::NotPresent) => {
                Err(Error::config("server.token_env", format!("environment variable `{var}` is not set")))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::config("server.token_env", format!("environment variable `{var}` is not valid UTF-8")))
            }
        }
    }

    pub(crate) fn new(token: &str) -> Self {
        Self { digest: digest(token.as_bytes()) }
    }

    /// Whether `given` is the token, in time independent of both.
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.digest.ct_eq(&digest(given)))
    }

    /// Whether the request's `Authorization: Bearer ...` carries the token.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else { return false };
        let bytes = value.as_bytes();
        // "Bearer " is matched without regard to case (RFC 7235 §2.1).
        let Some((scheme, rest)) = bytes.split_at_checked(7) else { return false };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        self.matches(rest.trim_ascii())
    }
}

fn unauthorized() -> Response {
    let mut response =
        error_body(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer <token>)");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"model-monitor\""));
    response
}

/// Guards the write endpoints: without the token, 401.
pub(crate) async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.token {
        Some(token) if !token.admits(request.headers()) => unauthorized(),
        _ => next.run(request).await.into_response(),
    }
}

/// Guards the read endpoints when `server.protect_reads` is set.
pub(crate) async fn require_token_for_reads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.token {
        Some(token) if state.config.protect_reads && !token.admits(request.headers()) => unauthorized(),
        _ => next.run(request).await.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_exact_token_is_admitted() {
        let token = Token::new("s3cret-token");
        assert!(token.admits(&headers("Bearer s3cret-token")));
        assert!(token.admits(&headers("bearer s3cret-token")));
        for wrong in
            ["Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer ", "Basic s3cret-token", "s3cret-token", "Bearer"]
        {
            assert!(!token.admits(&headers(wrong)), "{wrong}");
        }
        assert!(!token.admits(&HeaderMap::new()));
    }

    #[test]
    fn the_token_never_prints() {
        let token = Token::new("s3cret-token");
        assert_eq!(format!("{token:?}"), "Token(***)");
    }

    /// The child side of the test below: compares the candidate in
    /// `MODEL_MONITOR_TOKEN_PROBE` with the token many times.
    #[test]
    fn token_probe() {
        let Ok(candidate) = std::env::var("MODEL_MONITOR_TOKEN_PROBE") else { return };
        let token = Token::new("0123456789abcdef0123456789abcdef");
        for _ in 0..200 {
            std::hint::black_box(token.matches(std::hint::black_box(candidate.as_bytes())));
        }
    }

    /// The instructions executed in `Token::matches`, counted by callgrind
    /// for `candidate`: a count, not a time, so it is exact and repeatable.
    fn instructions_in_matches(valgrind: &std::path::Path, candidate: &str) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("callgrind.out");
        let status = std::process::Command::new(valgrind)
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg("--toggle-collect=*Token*matches*")
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "server::auth::tests::token_probe", "--test-threads=1", "--quiet"])
            .env("MODEL_MONITOR_TOKEN_PROBE", candidate)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "callgrind run failed: {status}");
        let text = std::fs::read_to_string(&out).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")));
        line.and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok()).expect("a callgrind summary")
    }

    /// No timing leak: the comparison executes the same number of
    /// instructions whether the candidate differs in its first byte, only
    /// in its last, or matches.
    #[test]
    fn the_comparison_costs_the_same_whatever_matches() {
        let Some(valgrind) = std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("valgrind")).find(|p| p.is_file()))
        else {
            assert!(std::env::var_os("CI").is_none(), "valgrind is needed for this test in CI");
            eprintln!("skipped: valgrind is not installed");
            return;
        };
        let expected = "0123456789abcdef0123456789abcdef";
        let counts: Vec<(u64, &str)> = [
            "X123456789abcdef0123456789abcdef", // differs in the first byte
            "0123456789abcdef0123456789abcdeX", // differs in the last byte
            expected,                           // matches
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", // differs everywhere
        ]
        .into_iter()
        .map(|c| (instructions_in_matches(&valgrind, c), c))
        .collect();
        eprintln!("instructions in Token::matches: {counts:?}");
        assert!(counts[0].0 > 200 * 100, "the probe did not run Token::matches: {counts:?}");
        assert!(counts.iter().all(|(n, _)| *n == counts[0].0), "instruction counts differ: {counts:?}");
    }

    #[test]
    fn a_missing_variable_is_named_without_a_value() {
        let e = Token::from_env("MODEL_MONITOR_TEST_TOKEN_THAT_IS_NOT_SET").unwrap_err().to_string();
        assert!(e.contains("MODEL_MONITOR_TEST_TOKEN_THAT_IS_NOT_SET") && e.contains("not set"), "{e}");
    }
}
