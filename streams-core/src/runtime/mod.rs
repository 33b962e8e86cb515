//! Running topologies on Kafka: configuration, the `KafkaStreams` handle, stream threads
//! with their tasks, commits, error handling and metrics.
//!
//! A [`KafkaStreams`] instance runs `num_stream_threads` threads. Each thread is a member
//! of the consumer group named by the application id and polls with an rdkafka
//! `BaseConsumer`; the `range` assignor hands the same partition number of every topic a
//! sub-topology reads to the same member, which runs it as one task. Within a task,
//! records are processed in timestamp order across its partitions. Output goes through a
//! non-blocking producer; offsets are committed every commit interval (and on rebalance
//! and close) only after the producer has flushed, so nothing is committed that was not
//! produced (at-least-once).

mod changelog_reader;
mod config;
mod consumer_config;
mod error;
pub mod error_handling;
mod global_thread;
mod input_lag;
mod internal_topics;
mod kafka_collector;
pub(crate) mod kafka_streams;
pub(crate) mod local_queries;
pub mod metadata;
pub mod metrics;
mod partition_group;
pub mod partitioner;
mod purge;
mod restore;
mod standby;
mod stream_thread;
pub(crate) mod task;
pub(crate) mod task_manager;
mod task_state;
pub(crate) mod topic_router;

pub use config::{ProcessingGuarantee, StreamsConfig, DEFAULT_STORE_CACHE_MAX_BYTES};
pub use error::StreamsError;
pub use error_handling::{
    DeserializationErrorHandler, ProcessingErrorHandler, ProductionErrorHandler,
};
pub use kafka_streams::{KafkaStreams, State, StateListener, TaskStatus, UncaughtErrorPolicy};
pub use local_queries::{ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore};
pub use metadata::{HostInfo, Instance, KeyQueryMetadata, StreamsMetadata};
pub use standby::StandbyLag;

/// Partition counts of internal topics given known counts of the other topics.
pub(crate) fn internal_topics_for_driver(
    topology: &crate::topology::Topology,
    application_id: &str,
    known: &std::collections::HashMap<String, i32>,
) -> std::collections::HashMap<String, i32> {
    let mut existing = known.clone();
    // Unlisted source topics have one partition in the driver.
    for id in 0..topology.subtopology_count() as u32 {
        for topic in topology.source_topics(id, application_id) {
            existing.entry(topic).or_insert(1);
        }
    }
    for internal in &topology.internal_topics {
        existing.remove(&internal.name.resolve(application_id));
    }
    internal_topics::internal_partition_counts(topology, application_id, &existing)
}
