//! The customers connector (Kafka Connect's JDBC source in the original demo): publishes
//! the rows of table `customers` of a SQLite database to the platform's `customers`
//! topic — key the customer id as an 8-byte big-endian long, value `Customer` in Avro
//! through the schema registry — and keeps publishing new, updated and deleted rows,
//! resuming after a restart exactly where it stopped.
//!
//! * [`config`]: its settings (the platform's `ServiceConfig` plus its own options);
//! * [`table`]: the source table reader, and the demo database of nine customers;
//! * [`changes`]: change detection, by a fingerprint per published row;
//! * [`position`]: the position store, a compacted Kafka topic;
//! * [`publisher`]: the transactional producer writing customers and position together;
//! * [`connector`]: start-up and the poll loop, with its status;
//! * [`http`]: `/health` and `/metrics`.
//!
//! Exactly once: each batch of changes and the position records that store it are
//! written in one Kafka transaction, and the position is read back (read committed)
//! after fencing any earlier instance, so neither a restart nor a crash at any point
//! loses or repeats a change for read-committed consumers.

#![warn(missing_docs)]

pub mod changes;
pub mod config;
pub mod connector;
pub mod http;
pub mod position;
pub mod publisher;
pub mod table;

pub use config::{ConnectorConfig, ConnectorOptions, HTTP_PORT, SERVICE_NAME};
pub use connector::{Connector, ConnectorError, ConnectorState, PollOutcome, RunningConnector};
