//! [`Error`]: why the search service could not start or stopped badly.

use crate::engine::EngineError;

/// A failure of the service as a whole (each part has its own error for its calls).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or wrong; the message names it.
    #[error("configuration: {0}")]
    Config(String),
    /// Kafka or the schema registry could not be set up (topics, clients, serdes).
    #[error("{0}")]
    Kafka(String),
    /// The engine refused or did not answer at start-up.
    #[error("search engine: {0}")]
    Engine(#[from] EngineError),
    /// A socket, thread or runtime could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The sink stopped by itself.
    #[error("the indexing sink stopped: {0}")]
    Sink(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
