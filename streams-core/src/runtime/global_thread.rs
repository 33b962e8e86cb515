//! The global thread: fills global stores from every partition of their topics before
//! stream threads start, then keeps them up to date.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::consumer_config::{apply_consumer_overrides, consumer_config};
use super::{StreamsConfig, StreamsError};
use crate::state::global::GlobalStores;

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Reads global topics into global stores.
pub(crate) struct GlobalUpdater {
    consumer: BaseConsumer,
    globals: Arc<GlobalStores>,
    /// End offsets at start, per partition: bootstrapping reads up to these. Partitions
    /// with nothing to read (empty, or every record deleted or compacted away, so the
    /// start offset is the end) are left out.
    ends: BTreeMap<(String, i32), i64>,
}

impl GlobalUpdater {
    /// A consumer assigned to every partition of every global topic, from the beginning.
    pub fn new(
        config: &StreamsConfig,
        client_id: &str,
        globals: Arc<GlobalStores>,
    ) -> Result<Self, StreamsError> {
        let mut client = consumer_config(config, format!("{client_id}-global-consumer"));
        client
            // Never joins a group: every instance reads everything.
            .set("group.id", format!("{}-global", config.application_id))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        apply_consumer_overrides(&mut client, config);
        let consumer: BaseConsumer = client
            .create()
            .map_err(|e| StreamsError::kafka("creating the global consumer", e))?;
        let mut assignment = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for topic in globals.topics() {
            let metadata = consumer
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .map_err(|e| {
                    StreamsError::kafka(format!("reading metadata of global topic {topic}"), e)
                })?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                return Err(StreamsError::MissingSourceTopics(vec![topic]));
            }
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, METADATA_TIMEOUT)
                    .map_err(|e| {
                        StreamsError::kafka(format!("reading the end of {topic}-{p}"), e)
                    })?;
                // An end above 0 does not mean there is a record to read: retention,
                // deletion or compaction may have removed all of them, and the consumer's
                // position never moves on such a partition.
                if low < high {
                    ends.insert((topic.clone(), p), high);
                }
                assignment
                    .add_partition_offset(&topic, p, Offset::Beginning)
                    .map_err(|e| StreamsError::kafka("building the global assignment", e))?;
            }
        }
        consumer
            .assign(&assignment)
            .map_err(|e| StreamsError::kafka("assigning global topics", e))?;
        Ok(GlobalUpdater {
            consumer,
            globals,
            ends,
        })
    }

    fn poll_once(&self) -> Result<(), StreamsError> {
        let mut next = self.consumer.poll(POLL);
        while let Some(result) = next {
            match result {
                Ok(m) => self
                    .globals
                    .apply(m.topic(), m.key(), m.payload())
                    .map_err(|e| {
                        StreamsError::state(
                            format!("updating the global store of {}", m.topic()),
                            e,
                        )
                    })?,
                Err(e) => tracing::warn!("global consumer: {e}"),
            }
            next = self.consumer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Reads until every partition reached the end it had at start (or `stop` is set).
    pub fn bootstrap(&self, stop: &AtomicBool) -> Result<(), StreamsError> {
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let caught_up = self
                .consumer
                .position()
                .map_err(|e| StreamsError::kafka("reading global positions", e))?
                .elements()
                .iter()
                .all(|e| {
                    match (
                        e.offset(),
                        self.ends.get(&(e.topic().to_string(), e.partition())),
                    ) {
                        (_, None) => true,
                        // Transaction markers count: the position moves past them.
                        (Offset::Offset(p), Some(&end)) => p >= end,
                        _ => false,
                    }
                });
            if caught_up {
                tracing::info!(topics = ?self.globals.topics(), "global stores bootstrapped");
                return Ok(());
            }
            self.poll_once()?;
        }
    }

    /// Applies new records until `stop` is set.
    pub fn run(self, stop: &AtomicBool) -> Result<(), StreamsError> {
        while !stop.load(Ordering::Acquire) {
            self.poll_once()?;
        }
        Ok(())
    }
}
