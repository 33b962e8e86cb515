//! What the runtime does when a record cannot be deserialized, processed or produced.
//!
//! Each kind of failure has its own handler in [`StreamsConfig`](super::StreamsConfig).
//! `Fail` stops the stream thread (the uncaught-error policy then decides what happens to
//! the instance); `LogAndContinue` logs, counts the record in the
//! `streams_skipped_records_total` metric and goes on; `DeadLetter` also writes the
//! original record's bytes to a topic, with the failure described in headers:
//!
//! | header | content |
//! |---|---|
//! | `__streams.errors.exception` | kind of failure (`deserialization`, `processing`) |
//! | `__streams.errors.exception.message` | the error message |
//! | `__streams.errors.topic` | topic the record was read from |
//! | `__streams.errors.partition` | its partition (decimal text) |
//! | `__streams.errors.offset` | its offset (decimal text) |
//!
//! Either way the record's offset is treated as processed, so a poison record never
//! blocks its partition.

use crate::graph::OutgoingRecord;
use crate::topology::node::RawRecord;

/// Header naming the kind of failure of a dead-lettered record.
pub const HEADER_EXCEPTION: &str = "__streams.errors.exception";
/// Header with the error message of a dead-lettered record.
pub const HEADER_MESSAGE: &str = "__streams.errors.exception.message";
/// Header with the source topic of a dead-lettered record.
pub const HEADER_TOPIC: &str = "__streams.errors.topic";
/// Header with the source partition of a dead-lettered record.
pub const HEADER_PARTITION: &str = "__streams.errors.partition";
/// Header with the source offset of a dead-lettered record.
pub const HEADER_OFFSET: &str = "__streams.errors.offset";

/// Handling of records whose key or value cannot be deserialized (or whose timestamp is
/// invalid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeserializationErrorHandler {
    /// Stop the stream thread with the error (Kafka Streams' default).
    #[default]
    Fail,
    /// Log a warning, skip the record and go on.
    LogAndContinue,
    /// Write the record to the named topic (headers describe the failure) and go on.
    DeadLetter {
        /// The dead-letter topic; it must exist.
        topic: String,
    },
}

/// Handling of errors returned by processors (user code, serialization in sinks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProcessingErrorHandler {
    /// Stop the stream thread with the error.
    #[default]
    Fail,
    /// Log a warning, skip the rest of the record's processing and go on.
    LogAndContinue,
    /// Write the input record to the named topic (headers describe the failure) and go on.
    DeadLetter {
        /// The dead-letter topic; it must exist.
        topic: String,
    },
}

/// Handling of records the broker refuses (too large, topic missing, not authorized).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProductionErrorHandler {
    /// Stop the stream thread at the next commit, without committing past the record.
    #[default]
    Fail,
    /// Log a warning, drop the record and go on.
    LogAndContinue,
}

/// Where a record failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureStage {
    Deserialization,
    Processing,
}

impl FailureStage {
    fn as_str(self) -> &'static str {
        match self {
            FailureStage::Deserialization => "deserialization",
            FailureStage::Processing => "processing",
        }
    }
}

/// What a handler decided for one failed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fail,
    Skip,
    DeadLetter(String),
}

impl DeserializationErrorHandler {
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            DeserializationErrorHandler::Fail => Verdict::Fail,
            DeserializationErrorHandler::LogAndContinue => Verdict::Skip,
            DeserializationErrorHandler::DeadLetter { topic } => Verdict::DeadLetter(topic.clone()),
        }
    }
}

impl ProcessingErrorHandler {
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            ProcessingErrorHandler::Fail => Verdict::Fail,
            ProcessingErrorHandler::LogAndContinue => Verdict::Skip,
            ProcessingErrorHandler::DeadLetter { topic } => Verdict::DeadLetter(topic.clone()),
        }
    }
}

/// The dead-letter copy of `raw`: same key, value, timestamp and headers, plus headers
/// describing the failure. The partition is left to the producer (keyed by murmur2).
pub(crate) fn dead_letter_record(
    topic: &str,
    raw: &RawRecord,
    stage: FailureStage,
    error: &dyn std::fmt::Display,
) -> OutgoingRecord {
    let mut headers = raw.headers.clone();
    headers
        .add(HEADER_EXCEPTION, Some(stage.as_str().as_bytes().to_vec()))
        .add(HEADER_MESSAGE, Some(error.to_string().into_bytes()))
        .add(HEADER_TOPIC, Some(raw.topic.as_bytes().to_vec()))
        .add(
            HEADER_PARTITION,
            Some(raw.partition.to_string().into_bytes()),
        )
        .add(HEADER_OFFSET, Some(raw.offset.to_string().into_bytes()));
    OutgoingRecord {
        topic: topic.to_string(),
        partition: None,
        key: raw.key.clone(),
        value: raw.value.clone(),
        timestamp: raw.timestamp,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Headers;

    #[test]
    fn dead_letter_keeps_the_bytes_and_describes_the_failure() {
        let mut headers = Headers::new();
        headers.add("trace", Some(b"t1".to_vec()));
        let raw = RawRecord {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp: 7,
            key: Some(b"k".to_vec()),
            value: Some(vec![0xff, 0x00]),
            headers,
        };
        let out = dead_letter_record(
            "orders-dlq",
            &raw,
            FailureStage::Deserialization,
            &"bad magic byte",
        );
        assert_eq!(out.topic, "orders-dlq");
        assert_eq!(out.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out.value.as_deref(), Some(&[0xff, 0x00][..]));
        assert_eq!(out.timestamp, 7);
        assert_eq!(out.headers.last("trace"), Some(Some(&b"t1"[..])));
        assert_eq!(
            out.headers.last(HEADER_EXCEPTION),
            Some(Some(&b"deserialization"[..]))
        );
        assert_eq!(
            out.headers.last(HEADER_MESSAGE),
            Some(Some(&b"bad magic byte"[..]))
        );
        assert_eq!(out.headers.last(HEADER_PARTITION), Some(Some(&b"2"[..])));
        assert_eq!(out.headers.last(HEADER_OFFSET), Some(Some(&b"41"[..])));
    }
}
