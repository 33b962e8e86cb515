//! Kafka Streams-style stream processing for Rust, on librdkafka.
//!
//! `streams-core` brings Kafka Streams' model to Rust: declare a topology with the
//! [`dsl`] ([`StreamsBuilder`], [`KStream`], [`KTable`], [`GlobalKTable`]) or with your
//! own [`processor`]s, test it without a broker on the [`test_driver`], and run it on a
//! Kafka cluster with the [`runtime`]: tasks per sub-topology and partition spread over
//! stream threads in a consumer group, timestamp-ordered processing, state stores
//! logged to changelog topics (from [`streams_state`]), at-least-once or
//! `exactly_once_v2`, and interactive queries across instances. Topic names, byte
//! layouts and partitioning are Kafka Streams' own, so Rust and Java applications can
//! share topics.
//!
//! # A first topology
//!
//! A word count, run on the broker-free [`TopologyTestDriver`](test_driver::TopologyTestDriver),
//! which runs the same tasks as the runtime:
//!
//! ```
//! use streams_core::serde::{I64Serde, Nullable, StringSerde};
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("text-lines", Consumed::with(StringSerde, StringSerde))
//!     .flat_map_values(|line: String| {
//!         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!     })
//!     // A new key: the next stateful step reads through a repartition topic.
//!     .group_by(|_, word| word.clone(), Grouped::with(StringSerde, StringSerde))
//!     // A KTable<String, i64> kept in the store "counts" (RocksDB, change-logged).
//!     .count(Materialized::as_store("counts"))
//!     .to_stream()
//!     .to("word-counts", Produced::with(StringSerde, Nullable(I64Serde)));
//! let topology = builder.build().expect("a valid topology");
//!
//! let driver = TopologyTestDriver::new(topology);
//! let lines = driver.input_topic("text-lines", StringSerde, StringSerde);
//! lines.pipe_input("1".to_string(), "the cat".to_string());
//! lines.pipe_input("2".to_string(), "The dog".to_string());
//!
//! let counts = driver
//!     .output_topic("word-counts", StringSerde, Nullable(I64Serde))
//!     .read_key_values_to_map();
//! assert_eq!(counts["the"], Some(2));
//! assert_eq!(driver.key_value_store::<String, i64>("counts").unwrap().get(&"dog".to_string()), Some(1));
//! ```
//!
//! # Running it on Kafka
//!
//! The same topology, handed to [`KafkaStreams`](runtime::KafkaStreams) with a
//! [`StreamsConfig`](runtime::StreamsConfig). `start` checks the topics, creates the
//! internal ones (`word-count-counts-changelog`, a repartition topic) and starts the
//! threads; `close` commits what was processed and leaves the group.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use streams_core::runtime::{KafkaStreams, ProcessingGuarantee, State, StreamsConfig};
//! use streams_core::serde::{I64Serde, Nullable, StringSerde};
//! use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("text-lines", Consumed::with(StringSerde, StringSerde))
//!     .flat_map_values(|line: String| {
//!         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!     })
//!     .group_by(|_, word| word.clone(), Grouped::with(StringSerde, StringSerde))
//!     .count(Materialized::as_store("counts"))
//!     .to_stream()
//!     .to("word-counts", Produced::with(StringSerde, Nullable(I64Serde)));
//!
//! let config = StreamsConfig::new("word-count", "127.0.0.1:9092")
//!     .with_stream_threads(2)
//!     .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
//!     .with_env_overrides()?; // STREAMS_* variables win
//! let streams = KafkaStreams::new(builder.build()?, config)?;
//! streams.start()?;
//! streams.wait_for_state(State::Running, Duration::from_secs(60));
//!
//! // Interactive query: this instance's part of the store, without stopping processing.
//! let the = streams.query_key::<String, i64>("counts", &"the".to_string())?;
//! println!("the: {the:?}");
//!
//! streams.close(Duration::from_secs(30));
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`dsl`] | [`StreamsBuilder`], [`KStream`], [`KTable`], [`GlobalKTable`], grouped and windowed streams, window specifications ([`dsl::TimeWindows`], [`dsl::SlidingWindows`], [`dsl::SessionWindows`], [`dsl::JoinWindows`]), and the options [`Consumed`], [`Produced`], [`Grouped`], [`Materialized`], [`Repartitioned`] |
//! | [`processor`] | the Processor API: [`Processor`](processor::Processor), [`FixedKeyProcessor`](processor::FixedKeyProcessor), their contexts, punctuation |
//! | [`state`] | store declarations ([`Stores`](state::Stores)) and the typed store handles processors use; windowed keys and their serdes |
//! | [`serde`] | [`Serde<T>`](crate::serde::Serde): Java-compatible primitives, JSON, bincode, [`Nullable`](crate::serde::Nullable), Avro with a schema-registry client |
//! | [`record`] | [`Record`], [`Headers`], [`RecordMetadata`] |
//! | [`topology`] | the built [`Topology`], [`TopologyDescription`], [`TopologyError`] |
//! | [`runtime`] | [`KafkaStreams`](runtime::KafkaStreams), [`StreamsConfig`](runtime::StreamsConfig), error handlers, metadata of instances, read-only store views, metrics |
//! | `query` (feature `grpc`) | the gRPC query service and the `QueryRouter` that sends each query to the instance holding its key |
//! | [`test_driver`] | [`TopologyTestDriver`](test_driver::TopologyTestDriver): pipe records in, read outputs and stores, advance the wall clock |
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `grpc` | on | the `query` module: every instance with an `application_server` serves a gRPC query service (tonic), and `KafkaStreams::router()` returns a `QueryRouter`. Without it, tonic and prost are not built; local queries and instance metadata still work. |
//!
//! librdkafka and RocksDB are built from source (`cmake`, a C++ compiler, `libclang`
//! and `protobuf-compiler` for `grpc`).
//!
//! # Guides
//!
//! In the repository's `docs/` directory (their Rust examples are compiled as doctests
//! of `streams-examples`):
//!
//! * `docs/getting-started.md`: a first application against the local broker;
//! * `docs/dsl-guide.md`: every operator, with runnable examples;
//! * `docs/migration-from-kafka-streams.md`: Java call → Rust call, and what differs;
//! * `docs/architecture.md`: threads, tasks, the path of a record, state, exactly-once;
//! * `docs/interactive-queries.md`: metadata, the query router, standby replicas;
//! * `docs/operations.md`: every setting, metrics, sizing, resetting an application.

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
