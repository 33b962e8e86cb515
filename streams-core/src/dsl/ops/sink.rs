//! Sink nodes: serialize records, pick their partition (a custom partitioner, or the
//! base key of windowed keys as Kafka Streams), and hand them to the record collector.

use std::sync::Arc;

use crate::dsl::options::StreamPartitioner;
use crate::graph::{Data, ErasedNode, ErasedRecord, Exec, OutgoingRecord};
use crate::processor::ProcessError;
use crate::runtime::partitioner::partition_for_key;
use crate::serde::Serde;
use crate::topology::node::TopicName;

/// Picks a topic per record.
pub(crate) type TopicChooser<K, V> = Arc<dyn Fn(&K, &V) -> String + Send + Sync>;

/// Where a sink node sends each record.
#[derive(Clone)]
pub(crate) enum SinkTarget<K, V> {
    Fixed(TopicName),
    Dynamic(TopicChooser<K, V>),
}

pub(crate) struct SinkNode<K, V> {
    pub target: SinkTarget<K, V>,
    pub key_serde: Arc<dyn Serde<K>>,
    pub value_serde: Arc<dyn Serde<V>>,
    pub partitioner: Option<StreamPartitioner<K, V>>,
}

impl<K, V> SinkNode<K, V> {
    /// Whether the sink writes to an internal (repartition or subscription) topic.
    fn writes_internal_topic(&self) -> bool {
        matches!(&self.target, SinkTarget::Fixed(t) if t.internal)
    }
}

impl<K: Data, V: Data> ErasedNode for SinkNode<K, V> {
    fn process(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError> {
        let record =
            record
                .into_typed::<K, V>()
                .map_err(|(key, value)| ProcessError::TypeMismatch {
                    node: exec.node_name(me).to_string(),
                    key,
                    value,
                })?;
        let topic = match &self.target {
            SinkTarget::Fixed(t) => t.resolve(&exec.state.application_id),
            SinkTarget::Dynamic(choose) => choose(&record.key, &record.value),
        };
        let serialize_error = |source| ProcessError::Serialize {
            node: exec.node_name(me).to_string(),
            topic: topic.clone(),
            source,
        };
        let key = self
            .key_serde
            .serialize(&topic, &record.key)
            .map_err(serialize_error)?;
        let value = self
            .value_serde
            .serialize(&topic, &record.value)
            .map_err(serialize_error)?;
        let partition = match &self.partitioner {
            Some(choose) => exec
                .collector
                .partition_count(&topic)
                .and_then(|n| choose(&topic, &record.key, &record.value, n)),
            // User topics only, as Kafka Streams' sink nodes: internal topics are
            // partitioned by the whole serialized key.
            None if !self.writes_internal_topic() => {
                match self.key_serde.partition_bytes(&topic, &record.key) {
                    Some(bytes) => match bytes.map_err(serialize_error)? {
                        Some(bytes) => exec
                            .collector
                            .partition_count(&topic)
                            .map(|n| partition_for_key(&bytes, n)),
                        None => None,
                    },
                    None => None,
                }
            }
            None => None,
        };
        exec.collector.send(OutgoingRecord {
            topic,
            partition,
            key,
            value,
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}
