//! Options passed to DSL calls: how a source reads, how a sink writes, how a stream is repartitioned.

use std::sync::Arc;

use crate::serde::Serde;
use crate::topology::OffsetReset;

/// Picks a record's timestamp: `(key, value, record timestamp, partition time) -> ms`.
/// Partition time is the highest timestamp seen so far on the record's partition.
pub type TimestampExtractor<K, V> = Arc<dyn Fn(&K, &V, i64, i64) -> i64 + Send + Sync>;

/// Picks a partition: `(topic, key, value, partition count) -> Some(partition)`, or
/// `None` for the default (murmur2 of the serialized key, as Kafka's Java producer).
pub type StreamPartitioner<K, V> = Arc<dyn Fn(&str, &K, &V, i32) -> Option<i32> + Send + Sync>;

/// How a source reads its topic: serdes, timestamp extractor, offset reset, node name.
pub struct Consumed<K, V> {
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) timestamp_extractor: Option<TimestampExtractor<K, V>>,
    pub(crate) offset_reset: Option<OffsetReset>,
    pub(crate) name: Option<String>,
}

impl<K, V> Consumed<K, V> {
    /// Reads keys and values with these serdes; record timestamps are the event times.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Consumed {
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            timestamp_extractor: None,
            offset_reset: None,
            name: None,
        }
    }

    /// Takes event time from the record itself (e.g. a field of the value). A negative
    /// result makes the record invalid: it is skipped and counted.
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl Fn(&K, &V, i64, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.timestamp_extractor = Some(Arc::new(extractor));
        self
    }

    /// Where to start when the application has no committed offset for a partition.
    pub fn with_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.offset_reset = Some(reset);
        self
    }

    /// Names the source node (otherwise `KSTREAM-SOURCE-<n>`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a sink writes: serdes (defaulting to the stream's own), partitioner, node name.
pub struct Produced<K, V> {
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) partitioner: Option<StreamPartitioner<K, V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced {
            key_serde: None,
            value_serde: None,
            partitioner: None,
            name: None,
        }
    }
}

impl<K, V> Produced<K, V> {
    /// Writes with the stream's own serdes (those of its source, or of the last
    /// operator that set them). Building fails if the stream has none.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Produced {
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
            ..Self::default()
        }
    }

    /// Chooses partitions with `partitioner` instead of murmur2 of the key.
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&str, &K, &V, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Names the sink node (otherwise `KSTREAM-SINK-<n>`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How `KStream::repartition` writes its internal topic.
pub struct Repartitioned<K, V> {
    pub(crate) produced: Produced<K, V>,
    pub(crate) partitions: Option<i32>,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned {
            produced: Produced::default(),
            partitions: None,
        }
    }
}

impl<K, V> Repartitioned<K, V> {
    /// Stream serdes, generated name, partition count of the upstream source topics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the repartition topic with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Repartitioned {
            produced: Produced::with(key_serde, value_serde),
            partitions: None,
        }
    }

    /// Gives the internal topic this many partitions.
    pub fn with_partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Names the topic `<application.id>-<name>-repartition` and its nodes after `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.produced.name = Some(name.into());
        self
    }

    /// Chooses partitions with `partitioner`.
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&str, &K, &V, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.produced.partitioner = Some(Arc::new(partitioner));
        self
    }
}
