//! What every service of the order platform shares, so that each service binary is a
//! few lines: load its [`ServiceConfig`], build its topology from `orders-platform`,
//! and hand both to [`run_topology_service`].
//!
//! * [`config`]: typed settings with defaults, from an optional TOML file and the
//!   environment;
//! * [`telemetry`]: `tracing` logs, coloured on a terminal, JSON lines on request;
//! * [`http`]: `/health` (the `KafkaStreams` state) and `/metrics` (Prometheus) on
//!   the service's HTTP port;
//! * [`topics`]: the platform's topics, created at start-up with the configured
//!   partition count (never by broker auto-creation);
//! * [`shutdown`]: SIGTERM and Ctrl-C;
//! * [`service`]: running a topology service from start to graceful close;
//! * [`embedded`]: the checks and the aggregator inside one process (tests, demos).

#![warn(missing_docs)]

pub mod config;
pub mod embedded;
pub mod http;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod topics;

pub use config::{LogFormat, ServiceConfig};
pub use service::{run_service, run_topology_service, ServiceContext, ServiceSpec};
