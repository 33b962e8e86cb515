//! The input buffers of one task: a queue per partition, and the choice of which record
//! to process next (the lowest timestamp at the queue heads), as in Kafka Streams.

use std::collections::VecDeque;

use crate::topology::node::{DecodeError, Decoded, RawRecord, SourceDecoder};

/// A buffered input record, decoded when it was added.
pub(crate) enum Queued {
    /// Decoded; `raw` is kept for the dead-letter handler of processing errors.
    Ready { raw: RawRecord, decoded: Decoded },
    /// Could not be decoded; goes to the deserialization error handler in turn.
    Poison { raw: RawRecord, error: DecodeError },
}

impl Queued {
    pub fn raw(&self) -> &RawRecord {
        match self {
            Queued::Ready { raw, .. } | Queued::Poison { raw, .. } => raw,
        }
    }

    /// The timestamp the record is ordered by. Poison records have none and are taken
    /// first, so that they never hold back their partition.
    fn order_timestamp(&self) -> i64 {
        match self {
            Queued::Ready { decoded, .. } => decoded.timestamp,
            Queued::Poison { .. } => i64::MIN,
        }
    }
}

/// The buffer of one input partition of a task.
pub(crate) struct RecordQueue {
    pub topic: String,
    pub partition: i32,
    /// Index of the source (in the task's graph) that reads this partition.
    pub source: usize,
    decoder: SourceDecoder,
    records: VecDeque<Queued>,
    /// Highest timestamp decoded on this partition; the timestamp extractor sees it.
    partition_time: i64,
    /// Next offset to commit (last processed + 1), once a record was processed.
    pub consumed: Option<i64>,
    /// The offset after the last record received: the consumer's position on this
    /// partition, once a record arrived since the assignment.
    fetched: Option<i64>,
}

impl RecordQueue {
    fn is(&self, topic: &str, partition: i32) -> bool {
        self.partition == partition && self.topic == topic
    }
}

impl RecordQueue {
    fn push(&mut self, raw: RawRecord) {
        self.fetched = Some(raw.offset + 1);
        let queued = match (self.decoder)(&raw, self.partition_time) {
            Ok(decoded) => {
                self.partition_time = self.partition_time.max(decoded.timestamp);
                Queued::Ready { raw, decoded }
            }
            Err(error) => Queued::Poison { raw, error },
        };
        self.records.push_back(queued);
    }
}

/// All input queues of one task (a handful: found by a linear search).
pub(crate) struct PartitionGroup {
    queues: Vec<RecordQueue>,
    buffered: usize,
}

impl PartitionGroup {
    pub fn new() -> Self {
        PartitionGroup {
            queues: Vec::new(),
            buffered: 0,
        }
    }

    fn position(&self, topic: &str, partition: i32) -> Option<usize> {
        self.queues.iter().position(|q| q.is(topic, partition))
    }

    /// Adds an input partition read by graph source `source` with `decoder`.
    pub fn add_partition(
        &mut self,
        topic: &str,
        partition: i32,
        source: usize,
        decoder: SourceDecoder,
    ) {
        if self.position(topic, partition).is_some() {
            return;
        }
        self.queues.push(RecordQueue {
            topic: topic.to_string(),
            partition,
            source,
            decoder,
            records: VecDeque::new(),
            partition_time: i64::MIN,
            consumed: None,
            fetched: None,
        });
    }

    /// The partitions of this group.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32)> {
        self.queues.iter().map(|q| (q.topic.as_str(), q.partition))
    }

    /// Each partition with the records buffered for it and the offset after the last
    /// record received (if one arrived since the assignment), in queue order.
    pub fn queue_states(&self) -> impl Iterator<Item = (&str, i32, usize, Option<i64>)> {
        self.queues
            .iter()
            .map(|q| (q.topic.as_str(), q.partition, q.records.len(), q.fetched))
    }

    /// Decodes and buffers a consumed record. Returns `false` if the record's partition
    /// does not belong to this group.
    pub fn push(&mut self, raw: RawRecord) -> bool {
        match self.position(&raw.topic, raw.partition) {
            Some(i) => {
                self.queues[i].push(raw);
                self.buffered += 1;
                true
            }
            None => false,
        }
    }

    /// Records buffered in all queues.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Records buffered for one partition.
    pub fn buffered_in(&self, topic: &str, partition: i32) -> usize {
        self.position(topic, partition)
            .map_or(0, |i| self.queues[i].records.len())
    }

    /// Whether every partition has at least one buffered record.
    pub fn all_partitions_buffered(&self) -> bool {
        self.queues.iter().all(|q| !q.records.is_empty())
    }

    /// Removes the next record to process: the one with the lowest timestamp at the head
    /// of its queue (ties go to the partition added first). Returns it with the index of
    /// the source that reads it.
    pub fn pop_next(&mut self) -> Option<(usize, Queued)> {
        let (index, queue) = self
            .queues
            .iter_mut()
            .enumerate()
            .filter(|(_, q)| !q.records.is_empty())
            .min_by_key(|(_, q)| q.records.front().map_or(i64::MAX, Queued::order_timestamp))?;
        let record = queue.records.pop_front()?;
        self.buffered -= 1;
        Some((index, record))
    }

    /// The queue at `index` (as [`pop_next`](Self::pop_next) returns it).
    pub fn queue(&self, index: usize) -> &RecordQueue {
        &self.queues[index]
    }

    /// Records that the record at `offset` of queue `index` was processed.
    pub fn mark_consumed(&mut self, index: usize, offset: i64) {
        self.queues[index].consumed = Some(offset + 1);
    }

    /// Next offset to commit per partition that processed a record.
    pub fn consumed(&self) -> impl Iterator<Item = ((&str, i32), i64)> {
        self.queues
            .iter()
            .filter_map(|q| q.consumed.map(|o| ((q.topic.as_str(), q.partition), o)))
    }

    /// Drops every buffered record (on revocation; they are fetched again from the
    /// committed offsets by whoever owns the partition next).
    pub fn clear(&mut self) {
        for q in &mut self.queues {
            q.records.clear();
            q.fetched = None;
        }
        self.buffered = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::Headers;
    use crate::topology::node::DecodeError;

    fn decoder() -> SourceDecoder {
        Arc::new(|raw: &RawRecord, _partition_time: i64| {
            if raw.value.as_deref() == Some(b"poison") {
                return Err(DecodeError::InvalidTimestamp(-1));
            }
            Ok(Decoded {
                record: crate::graph::boxed(crate::record::Record::new(
                    (),
                    raw.offset,
                    raw.timestamp,
                )),
                timestamp: raw.timestamp,
            })
        })
    }

    fn raw(partition: i32, offset: i64, timestamp: i64, value: &[u8]) -> RawRecord {
        RawRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp,
            key: None,
            value: Some(value.to_vec()),
            headers: Headers::new(),
        }
    }

    #[test]
    fn picks_the_lowest_head_timestamp_across_partitions() {
        let mut g = PartitionGroup::new();
        g.add_partition("t", 0, 0, decoder());
        g.add_partition("t", 1, 0, decoder());
        for (p, o, ts) in [(0, 0, 5), (0, 1, 1), (1, 0, 3), (1, 1, 4)] {
            assert!(g.push(raw(p, o, ts, b"v")));
        }
        assert!(
            !g.push(raw(2, 0, 0, b"v")),
            "partition 2 is not in the group"
        );
        assert!(g.all_partitions_buffered());
        let order: Vec<(i32, i64)> = std::iter::from_fn(|| g.pop_next())
            .map(|(_, q)| (q.raw().partition, q.raw().offset))
            .collect();
        // Heads: p0@5, p1@3 → p1/0; then p0@5 vs p1@4 → p1/1; then p0 in offset order
        // (a lower timestamp behind a higher one stays behind it: order within a
        // partition is never changed).
        assert_eq!(order, vec![(1, 0), (1, 1), (0, 0), (0, 1)]);
        assert_eq!(g.buffered(), 0);
    }

    #[test]
    fn poison_records_are_taken_first_and_never_block() {
        let mut g = PartitionGroup::new();
        g.add_partition("t", 0, 0, decoder());
        g.add_partition("t", 1, 0, decoder());
        g.push(raw(0, 0, 1, b"v"));
        g.push(raw(1, 0, 100, b"poison"));
        let (_, first) = g.pop_next().unwrap();
        assert!(matches!(first, Queued::Poison { .. }));
        assert_eq!(g.buffered_in("t", 0), 1);
        g.clear();
        assert_eq!(g.buffered(), 0);
        assert!(g.pop_next().is_none());
    }
}
