//! The error a processor (or the graph around it) returns for one record.

use crate::serde::SerdeError;

/// Why processing a record failed. The processing error handler decides whether the
/// record is skipped or the stream thread stops.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// An error raised by user code.
    #[error("{0}")]
    User(Box<dyn std::error::Error + Send + Sync>),
    /// A sink could not serialize a key or value.
    #[error("node {node} could not serialize for topic {topic}: {source}")]
    Serialize {
        /// The sink node.
        node: String,
        /// The destination topic.
        topic: String,
        /// The serde's error.
        source: SerdeError,
    },
    /// A record could not be handed to the producer.
    #[error("could not send to topic {topic}: {reason}")]
    Produce {
        /// The destination topic.
        topic: String,
        /// What the producer said.
        reason: String,
    },
    /// `forward_to` named a child the node does not have.
    #[error("node {node} has no child named {child}")]
    UnknownChild {
        /// The forwarding node.
        node: String,
        /// The missing child.
        child: String,
    },
    /// A state store was missing or of another type.
    #[error("state store {store}: {reason}")]
    Store {
        /// Store name.
        store: String,
        /// What went wrong.
        reason: String,
    },
    /// A record reached a node with other key/value types than it was built for: a bug in
    /// the topology builder, never expected in a topology built through the DSL.
    #[error("node {node} received {key}/{value}, not the types it was built for")]
    TypeMismatch {
        /// The node.
        node: String,
        /// Key type received.
        key: &'static str,
        /// Value type received.
        value: &'static str,
    },
}

impl ProcessError {
    /// Wraps any error raised by user code.
    pub fn user(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ProcessError::User(error.into())
    }
}
