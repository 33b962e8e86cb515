//! Purging repartition topics: records of an internal repartition topic are needed only
//! until the reading task committed past them, so they are deleted up to the committed
//! offsets now and then (Kafka Streams' `repartition.purge.interval.ms`).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::internal_topics::admin_client;
use super::StreamsConfig;
use crate::topology::{InternalTopicKind, Topology};

/// Deletes consumed records of repartition topics.
pub(crate) struct RepartitionPurger {
    admin: AdminClient<DefaultClientContext>,
    topics: HashSet<String>,
    interval: Duration,
    last: Instant,
}

impl RepartitionPurger {
    /// A purger for the repartition topics of `topology`, or `None` if it has none.
    pub fn new(topology: &Topology, config: &StreamsConfig) -> Option<Self> {
        let topics: HashSet<String> = topology
            .internal_topics
            .iter()
            .filter(|t| t.kind == InternalTopicKind::Repartition)
            .map(|t| t.name.resolve(&config.application_id))
            .collect();
        if topics.is_empty() {
            return None;
        }
        let admin = admin_client(config, "purger")
            .map_err(|e| tracing::warn!("repartition topics will not be purged: {e}"))
            .ok()?;
        Some(RepartitionPurger {
            admin,
            topics,
            interval: config.repartition_purge_interval,
            last: Instant::now(),
        })
    }

    /// Deletes records below `committed` (next offsets per partition) in repartition
    /// topics, if the purge interval has passed. Failures are logged: purging is only
    /// housekeeping.
    pub fn maybe_purge(&mut self, committed: &BTreeMap<(String, i32), i64>) {
        if self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in committed {
            if self.topics.contains(topic) && *offset > 0 {
                if let Err(e) =
                    offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                {
                    tracing::warn!("cannot purge {topic}-{partition}: {e}");
                }
            }
        }
        if offsets.count() == 0 {
            return;
        }
        match block_on(self.admin.delete_records(&offsets, &AdminOptions::new())) {
            Ok(result) => tracing::debug!(partitions = result.count(), "purged repartition topics"),
            Err(e) => tracing::warn!("purging repartition topics failed: {e}"),
        }
    }
}
