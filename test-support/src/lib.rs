//! Support for tests that run against the real local Kafka broker and schema
//! registry started by `dev/kafka start` and `dev/registry start` (or by
//! `dev/test`, which starts both): connection settings, readiness checks that
//! fail loudly, throw-away topics, producing and consuming records, time
//! limits, Kafka's own murmur2 partitioning vectors, a chaos harness that
//! kills and restarts application processes ([`chaos`]), and a look at the work
//! in flight on the broker ([`InFlight`]).
//!
//! Every helper panics with a clear message instead of returning errors: it
//! is only meant for tests, and a test must never pass silently because the
//! broker was missing.

#![warn(missing_docs)]

mod broker;
pub mod chaos;
mod in_flight;
mod murmur2;
mod net;
mod records;
mod registry;
mod time_limit;
mod topic;

pub use broker::{bootstrap, client_config, require_broker, DEFAULT_BOOTSTRAP};
pub use chaos::{ChaosProcess, ChaosRng};
pub use in_flight::InFlight;
pub use murmur2::{murmur2_vectors, Murmur2Vector, MURMUR2_PARTITION_COUNTS};
pub use net::free_port;
pub use records::{
    consume_n, consume_to_end, consume_with, produce_keyed, ConsumeOptions, ConsumedRecord,
    Delivered, Isolation,
};
pub use registry::{registry_url, require_registry, DEFAULT_REGISTRY_URL};
pub use time_limit::within;
pub use topic::{AppTopics, TestTopic};
