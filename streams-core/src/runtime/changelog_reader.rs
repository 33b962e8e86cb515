//! Reading changelog partitions in batches, for restoring tasks and standby tasks
//! alike: records grouped per partition with the last offset read, and the consumer's
//! positions (which also move over transaction markers and compacted gaps).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{Message, Offset};
use streams_state::{ChangelogRecord, TopicPartition};

/// How long to wait before asking again for watermarks the cluster could not give.
const WATERMARK_RETRY: Duration = Duration::from_millis(200);

/// The low and high watermarks of a changelog partition. A partition between leaders
/// (a broker restarting, or fenced for a moment under load) is asked again until
/// `timeout`, instead of failing the stream thread over what the cluster repairs by
/// itself within seconds.
pub(crate) fn watermarks(
    consumer: &BaseConsumer,
    tp: &TopicPartition,
    timeout: Duration,
) -> KafkaResult<(i64, i64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_watermarks(&tp.topic, tp.partition, remaining) {
            Err(e) if leader_unavailable(&e) && remaining > WATERMARK_RETRY => {
                tracing::debug!(
                    "the end of {}-{} is not known yet: {e}",
                    tp.topic,
                    tp.partition
                );
                std::thread::sleep(WATERMARK_RETRY);
            }
            result => return result,
        }
    }
}

/// Whether `e` says the partition has no leader to answer right now.
fn leader_unavailable(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::FencedLeaderEpoch
                | RDKafkaErrorCode::UnknownLeaderEpoch
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
        )
    )
}

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
