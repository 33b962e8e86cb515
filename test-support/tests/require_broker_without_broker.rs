//! Without a broker, `require_broker` fails within seconds and says how to
//! start one, so a broker test can neither hang nor pass without a broker.
//!
//! This file holds a single test on purpose: it points `KAFKA_BOOTSTRAP` at
//! a closed port, and `require_broker` remembers its first answer for the
//! whole test binary.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use streams_test_support::{require_broker, within};

#[test]
fn require_broker_fails_naming_the_start_command_when_no_broker_answers() {
    // A port nothing listens on: bind an ephemeral one and release it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port")
        .port();
    let address = format!("127.0.0.1:{port}");
    std::env::set_var("KAFKA_BOOTSTRAP", &address);

    let started = Instant::now();
    let outcome = within(Duration::from_secs(30), || {
        std::panic::catch_unwind(require_broker)
    });
    let elapsed = started.elapsed();

    let panic = outcome.expect_err("require_broker returned although no broker listens");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("require_broker panics with a text message");
    for expected in [
        address.as_str(),
        "dev/kafka start",
        "dev/test",
        "KAFKA_BOOTSTRAP",
    ] {
        assert!(
            message.contains(expected),
            "the message does not mention {expected:?}:\n{message}"
        );
    }
    assert!(
        elapsed < Duration::from_secs(15),
        "require_broker took {elapsed:?} to give up"
    );

    // The verdict is remembered: a second call fails the same way, at once.
    let again = Instant::now();
    assert!(std::panic::catch_unwind(require_broker).is_err());
    assert!(again.elapsed() < Duration::from_secs(1));
}
