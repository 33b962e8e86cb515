//! What is in flight on the broker at one moment: records of transactions not yet
//! committed or aborted, and input a consumer group has not committed. Fault tests use it
//! to show that a kill or an outage landed while work was under way.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::{bootstrap, client_config};

/// How long one offset query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Two clients that list a partition's end offset once as a read-uncommitted consumer
/// sees it (the high watermark) and once as a read-committed one does (the last stable
/// offset); the difference is what open transactions have written.
pub struct InFlight {
    uncommitted: BaseConsumer,
    committed: BaseConsumer,
}

impl InFlight {
    /// Clients for [`bootstrap`]; panics if they cannot be created.
    pub fn new() -> InFlight {
        let client = |isolation: &str| -> BaseConsumer {
            client_config()
                .set("isolation.level", isolation)
                .create()
                .unwrap_or_else(|e| panic!("cannot create a consumer for {}: {e}", bootstrap()))
        };
        InFlight {
            uncommitted: client("read_uncommitted"),
            committed: client("read_committed"),
        }
    }

    /// Per partition of `partitions`, the records of `topic` written by transactions still
    /// open: the high watermark minus the last stable offset. Panics if the broker does
    /// not answer.
    pub fn open_transaction_records(&self, topic: &str, partitions: &[i32]) -> BTreeMap<i32, i64> {
        partitions
            .iter()
            .map(|&p| {
                let end = |c: &BaseConsumer, what: &str| {
                    c.fetch_watermarks(topic, p, QUERY_TIMEOUT)
                        .unwrap_or_else(|e| panic!("the {what} end of {topic}/{p}: {e}"))
                        .1
                };
                // The high watermark first: a stable offset read after it and still below
                // it means a transaction was open at that second read, never a false one.
                let high = end(&self.uncommitted, "high");
                let stable = end(&self.committed, "stable");
                (p, (high - stable).max(0))
            })
            .collect()
    }

    /// Per partition of `partitions`, the records of `topic` after the offset `group` has
    /// committed (all of them when it committed none). Panics if the broker does not
    /// answer.
    pub fn uncommitted_input(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> BTreeMap<i32, i64> {
        let reader: BaseConsumer = client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap_or_else(|e| panic!("cannot create a consumer for {}: {e}", bootstrap()));
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let committed = reader
            .committed_offsets(tpl, QUERY_TIMEOUT)
            .unwrap_or_else(|e| panic!("the offsets {group} committed on {topic}: {e}"));
        partitions
            .iter()
            .map(|&p| {
                let (low, high) = self
                    .uncommitted
                    .fetch_watermarks(topic, p, QUERY_TIMEOUT)
                    .unwrap_or_else(|e| panic!("the end of {topic}/{p}: {e}"));
                let from = match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => low,
                };
                (p, (high - from).max(0))
            })
            .collect()
    }
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new()
    }
}
