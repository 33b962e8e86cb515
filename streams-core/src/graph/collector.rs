//! Where sink nodes send the records they write: Kafka in the runtime, memory in the test driver.

use crate::processor::ProcessError;
use crate::record::Headers;

/// One record as it leaves a topology, already serialized.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutgoingRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}

/// Accepts serialized records for delivery. Takes `&self`: implementations buffer with
/// interior mutability (rdkafka's producer queue, or a `RefCell` in the test driver).
pub(crate) trait RecordCollector {
    /// Queues a record for delivery. Delivery failures may surface later, at flush.
    fn send(&self, record: OutgoingRecord) -> Result<(), ProcessError>;

    /// Number of partitions of `topic`, when known.
    fn partition_count(&self, topic: &str) -> Option<i32>;
}
