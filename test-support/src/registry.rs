//! Where the test schema registry is, and a check that it answers.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

/// Registry URL used when `SCHEMA_REGISTRY_URL` is not set: the
/// Confluent-compatible API of `dev/registry start`.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081/apis/ccompat/v7";

/// How long [`require_registry`] waits for an answer.
const REGISTRY_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The Confluent-compatible schema registry URL: `SCHEMA_REGISTRY_URL` from
/// the environment (as exported by `dev/test`), else [`DEFAULT_REGISTRY_URL`].
/// It has no trailing slash.
pub fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Panics unless `GET <registry_url>/subjects` answers 200 within about 5 s.
///
/// The message names `dev/registry start` and `dev/test`. The outcome of the
/// first check is remembered for the rest of the test binary.
pub fn require_registry() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(reason) =
        CHECK.get_or_init(|| http_get_status(&format!("{}/subjects", registry_url())))
    {
        panic!(
            "no schema registry reachable at {} ({reason}).\n\
             Start one with `dev/registry start` (and set SCHEMA_REGISTRY_URL if it is elsewhere), \
             or run the tests through `dev/test`, which starts and stops it.",
            registry_url()
        );
    }
}

/// A plain HTTP/1.1 GET, enough to see the status code without an HTTP client crate.
fn http_get_status(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs can be checked, got {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let socket = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&socket, REGISTRY_CHECK_TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(REGISTRY_CHECK_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REGISTRY_CHECK_TIMEOUT)))
        .map_err(|e| format!("cannot set socket timeouts: {e}"))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = [0u8; 64];
    let read = stream
        .read(&mut head)
        .map_err(|e| format!("no answer: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(format!(
            "GET {path} answered {:?}",
            status_line.lines().next().unwrap_or("")
        ))
    }
}
