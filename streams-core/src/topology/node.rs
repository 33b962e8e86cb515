//! Nodes of the logical graph: sources, processors and sinks, as the DSL declares them.

use std::sync::Arc;

use crate::graph::{BoxedRecord, NodeFactory};
use crate::record::Headers;
use crate::serde::SerdeError;

/// A topic name as declared in a topology. Internal topics (repartition, changelog) get
/// the application id as prefix when the topology runs: `<application.id>-<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TopicName {
    pub name: String,
    pub internal: bool,
}

impl TopicName {
    pub fn user(name: impl Into<String>) -> Self {
        TopicName {
            name: name.into(),
            internal: false,
        }
    }
    pub fn internal(name: impl Into<String>) -> Self {
        TopicName {
            name: name.into(),
            internal: true,
        }
    }
    /// The topic's name on the broker.
    pub fn resolve(&self, application_id: &str) -> String {
        if self.internal {
            format!("{application_id}-{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// What a source node reads.
#[derive(Clone, Debug)]
pub(crate) enum SourceTopics {
    Names(Vec<TopicName>),
    Pattern(regex::Regex),
}

/// A consumed record before decoding.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawRecord {
    /// Interned per topic by the stream thread: cloning it allocates nothing.
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
}

/// A consumed record after decoding and timestamp extraction.
pub(crate) struct Decoded {
    /// The typed record, with the raw record's headers.
    pub record: BoxedRecord,
    pub timestamp: i64,
}

/// Why a source could not turn a raw record into a typed one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("key: {0}")]
    Key(SerdeError),
    /// The record has no key and the key type has no null: Kafka Streams' aggregations,
    /// joins and tables skip null-keyed records, so the task drops it (counted, never
    /// sent to the deserialization error handler).
    #[error("null key, which the key serde cannot read: {0}")]
    NullKey(SerdeError),
    #[error("value: {0}")]
    Value(SerdeError),
    #[error("timestamp extractor returned {0}, which is negative")]
    InvalidTimestamp(i64),
}

/// Deserializes and timestamps a raw record; `partition_time` is the highest timestamp
/// seen on the record's partition so far (for custom extractors, as in Kafka Streams).
pub(crate) type SourceDecoder =
    Arc<dyn Fn(&RawRecord, i64) -> Result<Decoded, DecodeError> + Send + Sync>;

/// Where a sink writes.
#[derive(Clone, Debug)]
pub(crate) enum SinkTopic {
    Fixed(TopicName),
    /// Chosen per record by a user function.
    Dynamic,
}

/// Which offset a source starts from when its group has no committed offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start from the beginning of each partition (Kafka Streams' default).
    #[default]
    Earliest,
    /// Start from the end: only records produced from now on.
    Latest,
}

pub(crate) enum NodeKind {
    Source {
        topics: SourceTopics,
        decoder: SourceDecoder,
        offset_reset: Option<OffsetReset>,
    },
    Processor {
        factory: NodeFactory,
    },
    Sink {
        topic: SinkTopic,
        factory: NodeFactory,
    },
}

pub(crate) struct NodeSpec {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<usize>,
    pub stores: Vec<String>,
}
