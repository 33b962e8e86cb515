//! How far each input partition's end lies past what the consumer has handed out, so
//! that a task does not process while a partition it reads has records on the broker
//! that were not fetched yet (KIP-695: a stream-table join must not run against a table
//! still loading).
//!
//! Only partitions whose buffer is empty are asked about. Their end is first the high
//! watermark of the consumer's last fetch response, which librdkafka keeps (Kafka's
//! consumer takes its lag from the same place): no request is sent. A list-offsets
//! request (the last stable offset under `read_committed`) is sent only when no record
//! arrived since the assignment, or when reading committed records behind that
//! watermark; its answer is kept for [`END_REFRESH`]. An end only grows, so a stale one
//! can only hide records that arrived since.

use std::collections::HashMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

/// How long a partition's end, once read, is trusted.
const END_REFRESH: Duration = Duration::from_secs(1);
/// How long reading a partition's end may take; on timeout the lag is unknown.
const END_TIMEOUT: Duration = Duration::from_secs(2);

/// A partition's offsets as last read from the broker.
#[derive(Clone, Copy)]
struct Watermarks {
    low: i64,
    end: i64,
    read_at: Instant,
}

/// Values per topic, then partition: looked up by `&str` without building a key.
type ByPartition<T> = HashMap<String, HashMap<i32, T>>;

/// Ends and start offsets of a stream thread's input partitions.
pub(crate) struct InputLags {
    /// The consumer reads committed records only: a fetch response's high watermark may
    /// then lie past what it will ever hand out (open or aborted transactions).
    read_committed: bool,
    watermarks: ByPartition<Watermarks>,
    /// Where each assigned partition started: the position until a record is consumed.
    starts: ByPartition<Offset>,
    /// Topic names as C strings, for librdkafka's cached watermarks.
    c_topics: HashMap<String, CString>,
}

impl InputLags {
    /// No partition known yet; `read_committed` as the stream thread's consumer reads.
    pub fn new(read_committed: bool) -> Self {
        InputLags {
            read_committed,
            watermarks: HashMap::new(),
            starts: HashMap::new(),
            c_topics: HashMap::new(),
        }
    }

    /// Records where an assigned partition starts.
    pub fn set_start(&mut self, topic: &str, partition: i32, offset: Offset) {
        self.starts
            .entry(topic.to_string())
            .or_default()
            .insert(partition, offset);
        if let Some(marks) = self.watermarks.get_mut(topic) {
            marks.remove(&partition);
        }
    }

    /// Forgets everything (on revocation).
    pub fn clear(&mut self) {
        self.watermarks.clear();
        self.starts.clear();
    }

    /// Records of `topic`'s `partition` on the broker past the consumer's position, or
    /// `None` if that is not known (the end could not be read).
    ///
    /// `fetched` is the offset after the last record the consumer handed out since the
    /// assignment, if any. The position is never behind it, so an end at `fetched` means
    /// no lag, known without asking the consumer: its `position` is a synchronous
    /// request to librdkafka's main thread. Only past it (records not fetched yet, or
    /// only a transaction marker, which the position skips) is the position read, once
    /// per round of decisions: `positions` caches it.
    pub fn lag<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        positions: &mut Option<TopicPartitionList>,
        topic: &str,
        partition: i32,
        fetched: Option<i64>,
    ) -> Option<i64> {
        // The end seen by the last fetch response, as Kafka's consumer computes its lag: no
        // request to the broker, which the stream thread would wait for (it queues behind
        // the consumer's own fetch, long-polling up to `fetch.wait.max.ms`). Caught up if
        // the last record received is there; behind otherwise, unless reading committed
        // records only, where the stable end may lie before it (then asked below).
        if let (Some(f), Some(high)) = (fetched, self.fetched_end(consumer, topic, partition)) {
            if f >= high {
                return Some(0);
            }
            if !self.read_committed {
                return Some(high - f);
            }
        }
        let cached = self.watermarks.get(topic).and_then(|m| m.get(&partition));
        let marks = match cached {
            Some(m) if m.read_at.elapsed() < END_REFRESH => *m,
            _ => match consumer.fetch_watermarks(topic, partition, END_TIMEOUT) {
                Ok((low, end)) => {
                    let m = Watermarks {
                        low,
                        end,
                        read_at: Instant::now(),
                    };
                    self.watermarks
                        .entry(topic.to_string())
                        .or_default()
                        .insert(partition, m);
                    m
                }
                Err(e) => {
                    tracing::debug!(topic, partition, "cannot read the partition's end: {e}");
                    return None;
                }
            },
        };
        if fetched.is_some_and(|f| f >= marks.end) {
            return Some(0);
        }
        let positions = positions.get_or_insert_with(|| {
            consumer.position().unwrap_or_else(|e| {
                tracing::debug!("cannot read the consumer's positions: {e}");
                TopicPartitionList::new()
            })
        });
        let consumed = positions
            .find_partition(topic, partition)
            .map(|e| e.offset());
        let position = match consumed {
            Some(Offset::Offset(o)) => o,
            // Nothing consumed since the assignment: the position is where it started.
            _ => match self.starts.get(topic).and_then(|s| s.get(&partition)) {
                Some(Offset::Offset(o)) => *o,
                Some(Offset::Beginning) | None => marks.low,
                // Started at the end, or wherever the group's offset was: nothing of
                // what lies before counts as lag.
                Some(_) => return Some(0),
            },
        };
        Some((marks.end - position).max(0))
    }

    /// The partition's high watermark as of the consumer's last fetch response for it,
    /// if one arrived (librdkafka keeps it; reading it sends nothing). Under
    /// `read_committed` the last stable offset is at or below it.
    fn fetched_end<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        if !self.c_topics.contains_key(topic) {
            self.c_topics
                .insert(topic.to_string(), CString::new(topic).ok()?);
        }
        let c_topic = self.c_topics.get(topic)?;
        let (mut low, mut high) = (0i64, 0i64);
        // SAFETY: the client handle is live for the borrow of `consumer`; the topic is a
        // NUL-terminated string that outlives the call; librdkafka only writes the two
        // offsets.
        let code = unsafe {
            rdsys::rd_kafka_get_watermark_offsets(
                consumer.client().native_ptr(),
                c_topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (code == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high)
    }
}
