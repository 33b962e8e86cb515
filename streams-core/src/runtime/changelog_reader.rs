//! Reading changelog partitions in batches, for restoring tasks and standby tasks
//! alike: records grouped per partition with the last offset read, and the consumer's
//! positions (which also move over transaction markers and compacted gaps).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset};
use streams_state::{ChangelogRecord, TopicPartition};

/// The records of one changelog partition read in one round.
pub(crate) struct ChangelogBatch {
    pub records: Vec<ChangelogRecord>,
    /// Offset of the last record in `records`.
    pub last_offset: i64,
}

/// Polls `consumer` for up to `max` records, waiting at most `first_wait` for the first,
/// and groups those `keep(partition, offset)` accepts by partition. Records without a
/// key (never written by a store) are skipped; poll errors are logged as `what`'s.
pub(crate) fn poll_batches(
    consumer: &BaseConsumer,
    max: usize,
    first_wait: Duration,
    what: &str,
    mut keep: impl FnMut(&TopicPartition, i64) -> bool,
) -> BTreeMap<TopicPartition, ChangelogBatch> {
    let mut batches: BTreeMap<TopicPartition, ChangelogBatch> = BTreeMap::new();
    let mut kept = 0;
    let mut timeout = first_wait;
    while kept < max {
        let Some(result) = consumer.poll(timeout) else {
            break;
        };
        timeout = Duration::ZERO;
        let message = match result {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{what}: {e}");
                continue;
            }
        };
        let tp = TopicPartition::new(message.topic(), message.partition());
        let Some(key) = message.key() else { continue };
        if !keep(&tp, message.offset()) {
            continue;
        }
        let batch = batches.entry(tp).or_insert_with(|| ChangelogBatch {
            records: Vec::new(),
            last_offset: -1,
        });
        batch
            .records
            .push((key.to_vec(), message.payload().map(<[u8]>::to_vec)));
        batch.last_offset = message.offset();
        kept += 1;
    }
    batches
}

/// The consumer's next offset per assigned partition: past the last record read, and
/// past transaction markers and compacted gaps the records do not show.
pub(crate) fn positions(consumer: &BaseConsumer) -> Vec<(TopicPartition, i64)> {
    consumer
        .position()
        .map(|positions| {
            positions
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(p) => Some((TopicPartition::new(e.topic(), e.partition()), p)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
