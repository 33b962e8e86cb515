//! `StreamsError`: why an application could not start, or why a stream thread stopped.

use crate::processor::{ProcessError, TaskId};
use crate::topology::TopologyError;

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A Kafka client operation failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What the runtime was doing.
        context: String,
        /// The client's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Source topics the topology reads do not exist.
    #[error("source topics do not exist: {}; create them before starting the application", .0.join(", "))]
    MissingSourceTopics(Vec<String>),
    /// Topics joined by one sub-topology have different partition counts, so their
    /// partitions cannot be joined.
    #[error(
        "topics joined by sub-topology {subtopology} must have the same number of partitions, but {}",
        describe_counts(.topics)
    )]
    CoPartitioning {
        /// The sub-topology.
        subtopology: u32,
        /// Each topic with its partition count.
        topics: Vec<(String, i32)>,
    },
    /// A record could not be deserialized and the handler said to fail.
    #[error("task {task}: cannot deserialize {topic}-{partition}@{offset}: {reason}")]
    Deserialization {
        /// The task.
        task: TaskId,
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// What the serde or timestamp extractor reported.
        reason: String,
    },
    /// A processor failed and the handler said to fail.
    #[error("task {task}: processing {} failed: {source}", describe_position(.position))]
    Processing {
        /// The task.
        task: TaskId,
        /// Topic, partition and offset of the input record; `None` in punctuation.
        position: Option<(String, i32, i64)>,
        /// The processor's error.
        #[source]
        source: Box<ProcessError>,
    },
    /// The broker refused a produced record and the handler said to fail.
    #[error("producing to {topic} failed: {reason}")]
    Production {
        /// The destination topic.
        topic: String,
        /// What the broker said.
        reason: String,
    },
    /// The transactional producer was fenced (another instance took over its
    /// transactional id or group generation) or failed fatally; the stream thread
    /// replaces it and rejoins the group.
    #[error("transactional producer unusable: {0}")]
    TransactionFatal(String),
    /// Under exactly-once, transactions kept failing and being aborted (each time
    /// rewinding the tasks), for example because a record is refused every time.
    #[error("{count} transactions in a row were aborted; the last because: {reason}")]
    TransactionsAborted {
        /// Aborts in a row.
        count: u32,
        /// Why the last transaction was aborted.
        reason: String,
    },
    /// A state store, the state directory (its lock, its files), a checkpoint or RocksDB
    /// failed; `source` is the store layer's error.
    #[error("{context}: {source}")]
    State {
        /// What the runtime was doing.
        context: String,
        /// The store layer's error.
        #[source]
        source: Box<streams_state::StoreError>,
    },
    /// The operation is not valid in the application's current state.
    #[error("{0}")]
    InvalidState(String),
    /// Store `store` has no task running on this instance now: the instance is
    /// starting, rebalancing or restoring, or every partition of the store runs on other
    /// instances. Retrying later may succeed.
    #[error("store {store} is not available on this instance now; retry later")]
    StoreNotAvailable {
        /// The store asked for.
        store: String,
    },
    /// Which instance hosts what is not known now: no membership was read yet, a
    /// rebalance is under way (the announced tasks do not cover every partition once),
    /// or this instance joined a newer group generation than the others announced.
    /// Retrying later may succeed.
    #[error("query metadata is not available now ({reason}); retry later")]
    MetadataNotAvailable {
        /// Why.
        reason: String,
    },
    /// Another instance refused or failed a query forwarded to it.
    #[error("instance {endpoint} answered: {message}")]
    Remote {
        /// The instance asked.
        endpoint: String,
        /// Whether asking again (after a rebalance) may succeed.
        retryable: bool,
        /// What it said.
        message: String,
    },
    /// A routed query found no answer before its deadline.
    #[error("no answer within the deadline after {attempts} attempts; last: {last}")]
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// The error of the last attempt.
        last: String,
    },
    /// The requested feature is not available in this version.
    #[error("not supported yet: {0}")]
    NotSupported(String),
}

impl StreamsError {
    /// Whether the same request may succeed later without any change: the store or the
    /// metadata is not available now (starting, rebalancing, restoring, migrating).
    pub fn is_retryable(&self) -> bool {
        match self {
            StreamsError::StoreNotAvailable { .. } | StreamsError::MetadataNotAvailable { .. } => {
                true
            }
            StreamsError::Remote { retryable, .. } => *retryable,
            _ => false,
        }
    }

    pub(crate) fn state(context: impl Into<String>, source: streams_state::StoreError) -> Self {
        StreamsError::State {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        StreamsError::Kafka {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

fn describe_counts(topics: &[(String, i32)]) -> String {
    topics
        .iter()
        .map(|(t, n)| format!("{t} has {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_position(position: &Option<(String, i32, i64)>) -> String {
    match position {
        Some((topic, partition, offset)) => format!("{topic}-{partition}@{offset}"),
        None => "a punctuation".to_string(),
    }
}
