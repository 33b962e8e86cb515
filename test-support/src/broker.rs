//! Where the test broker is, and a check that it answers.

use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

/// Bootstrap address used when `KAFKA_BOOTSTRAP` is not set: the broker of `dev/kafka start`.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// How long [`require_broker`] waits for the broker's metadata.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The broker's bootstrap address: `KAFKA_BOOTSTRAP` from the environment
/// (as exported by `dev/test`), else [`DEFAULT_BOOTSTRAP`].
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string())
}

/// A client configuration pointing at [`bootstrap`], to be extended with the
/// settings a test needs.
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap());
    config
}

/// Panics unless the broker answers a metadata request within about 5 s.
///
/// Call it first in every test that needs Kafka: without a broker the test
/// fails with a message naming `dev/kafka start` and `dev/test`, instead of
/// hanging or passing without having tested anything. The outcome of the
/// first check is remembered for the rest of the test binary.
pub fn require_broker() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(reason) = CHECK.get_or_init(check_broker) {
        panic!(
            "no Kafka broker reachable at {} ({reason}).\n\
             Start one with `dev/kafka start` (and set KAFKA_BOOTSTRAP if it is elsewhere), \
             or run the tests through `dev/test`, which starts and stops it.",
            bootstrap()
        );
    }
}

fn check_broker() -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = client_config()
        // Connection-refused noise would bury the panic message.
        .set_log_level(RDKafkaLogLevel::Emerg)
        .create()
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, BROKER_CHECK_TIMEOUT)
        .map_err(|e| format!("metadata request failed within {BROKER_CHECK_TIMEOUT:?}: {e}"))?;
    if metadata.brokers().is_empty() {
        return Err("the metadata lists no brokers".to_string());
    }
    Ok(())
}

/// An admin client for [`bootstrap`]; panics if it cannot be created.
pub(crate) fn admin_client() -> AdminClient<DefaultClientContext> {
    client_config().create().unwrap_or_else(|e| {
        panic!(
            "cannot create a Kafka admin client for {}: {e}",
            bootstrap()
        )
    })
}
