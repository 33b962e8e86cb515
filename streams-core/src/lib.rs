//! Kafka Streams-style stream processing for Rust.
//!
//! Build a topology with the [`dsl`] (or plug in your own [`processor`]s), then run it on
//! a Kafka cluster with the [`runtime`], or broker-free in tests with the [`test_driver`].

#![warn(missing_docs)]

pub mod dsl;
mod graph;
pub mod processor;
#[cfg(feature = "grpc")]
pub mod query;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod state;
pub mod test_driver;
pub mod topology;

pub use dsl::{
    Change, Consumed, GlobalKTable, Grouped, KGroupedStream, KGroupedTable, KStream, KTable,
    Materialized, Produced, Repartitioned, StreamsBuilder,
};
pub use graph::Data;
pub use record::{Header, Headers, Record, RecordMetadata};
pub use topology::{Topology, TopologyDescription, TopologyError};
