//! Without a schema registry, `require_registry` fails at once and says how to
//! start one.
//!
//! A single test on purpose: it points `SCHEMA_REGISTRY_URL` at a closed port,
//! and `require_registry` remembers its first answer for the whole test binary.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use streams_test_support::{registry_url, require_registry, within};

#[test]
fn require_registry_fails_naming_the_start_command_when_no_registry_answers() {
    // A port nothing listens on: bind an ephemeral one and release it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port")
        .port();
    let url = format!("http://127.0.0.1:{port}/apis/ccompat/v7");
    // A trailing slash is dropped.
    std::env::set_var("SCHEMA_REGISTRY_URL", format!("{url}/"));
    assert_eq!(registry_url(), url);

    let started = Instant::now();
    let outcome = within(Duration::from_secs(30), || {
        std::panic::catch_unwind(require_registry)
    });
    let elapsed = started.elapsed();

    let panic = outcome.expect_err("require_registry returned although no registry listens");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("require_registry panics with a text message");
    for expected in [
        url.as_str(),
        "dev/registry start",
        "dev/test",
        "SCHEMA_REGISTRY_URL",
    ] {
        assert!(
            message.contains(expected),
            "the message does not mention {expected:?}:\n{message}"
        );
    }
    assert!(
        elapsed < Duration::from_secs(10),
        "require_registry took {elapsed:?} to give up"
    );
}
