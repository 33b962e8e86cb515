//! `KStream`: an unbounded stream of records and its stateless operators.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::change::Change;
use super::global_ktable::GlobalKTable;
use super::kgrouped::KGroupedStream;
use super::ktable::KTable;
use super::materialized::{Grouped, Materialized};
use super::ops::join::{GlobalKeySelector, StreamGlobalJoin, StreamTableJoin, StreamTableJoiner};
use super::ops::sink::{SinkNode, SinkTarget, TopicChooser};
use super::ops::split::BranchedKStream;
use super::ops::stateless::{Stateless, StatelessFn};
use super::ops::stream_join::{JoinTime, PairJoiner, SideJoiner, StreamJoinSide, Unmatched};
use super::ops::table::TableSource;
use super::ops::{add_merge_node, add_processor_node};
use super::options::{Consumed, Produced, Repartitioned};
use super::windows::JoinWindows;
use crate::graph::Data;
use crate::processor::{FixedKeyProcessor, FixedKeyProcessorNode, Processor, ProcessorNode};
use crate::record::Record;
use crate::serde::BytesSerde;
use crate::serde::Serde;
use crate::state::{StoreBuilder, Stores};
use crate::topology::node::{NodeKind, SinkTopic, SourceTopics, TopicName};
use crate::topology::{InternalTopic, InternalTopicKind, TopologyBuilder, TopologyError};
use std::time::Duration;

/// An unbounded stream of key-value records.
///
/// Operators return new streams; a stream may feed several operators. Operators that may
/// change the key (`map`, `flat_map`, `select_key`, `process`) mark the result as needing
/// a repartition: the next key-based operation (grouping, joins) then writes the stream
/// through an internal repartition topic first, so that equal keys meet in one task.
pub struct KStream<K, V> {
    pub(crate) builder: Rc<RefCell<TopologyBuilder>>,
    pub(crate) node: usize,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder.clone(),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

/// Keeps a serde across an operator that may change the type: when the new type is the
/// old one (a `select_key` from `String` to `String`), the old serde still applies.
fn carry<T: Data, U: Data>(serde: &Option<Arc<dyn Serde<T>>>) -> Option<Arc<dyn Serde<U>>> {
    let any: Box<dyn std::any::Any> = Box::new(serde.clone()?);
    any.downcast::<Arc<dyn Serde<U>>>().ok().map(|s| *s)
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(
        builder: Rc<RefCell<TopologyBuilder>>,
        node: usize,
        key_serde: Option<Arc<dyn Serde<K>>>,
        value_serde: Option<Arc<dyn Serde<V>>>,
    ) -> Self {
        KStream {
            builder,
            node,
            key_serde,
            value_serde,
            repartition_required: false,
        }
    }

    /// A stream of the same types at another node.
    pub(crate) fn derive(&self, node: usize, repartition_required: bool) -> Self {
        KStream {
            node,
            repartition_required,
            ..self.clone()
        }
    }

    /// Whether a key-based operation on this stream would repartition it first.
    pub fn repartition_required(&self) -> bool {
        self.repartition_required
    }

    /// Renames the node that produces this stream (by default `KSTREAM-<OP>-<n>`).
    pub fn named(self, name: impl Into<String>) -> Self {
        self.builder.borrow_mut().rename(self.node, name);
        self
    }

    fn add_stateless<K2: Data, V2: Data>(
        &self,
        prefix: &str,
        f: StatelessFn<K, V, K2, V2>,
    ) -> usize {
        let mut b = self.builder.borrow_mut();
        let name = b.next_name(prefix);
        b.add_node(
            name,
            NodeKind::Processor {
                factory: Arc::new(move || Box::new(ProcessorNode::new(Stateless::new(f.clone())))),
            },
            vec![self.node],
        )
    }

    /// Keeps the records for which `predicate` is true.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let node = self.add_stateless::<K, V>(
            "KSTREAM-FILTER-",
            Arc::new(move |r, emit| {
                if predicate(&r.key, &r.value) {
                    emit(r)
                } else {
                    Ok(())
                }
            }),
        );
        self.derive(node, self.repartition_required)
    }

    /// Keeps the records for which `predicate` is false.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Replaces key and value. Marks the stream for repartitioning.
    pub fn map<K2: Data, V2: Data>(
        &self,
        mapper: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let node = self.add_stateless::<K2, V2>(
            "KSTREAM-MAP-",
            Arc::new(move |r: Record<K, V>, emit| {
                let (key, value) = mapper(r.key, r.value);
                emit(Record {
                    key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            }),
        );
        KStream::new(
            self.builder.clone(),
            node,
            carry(&self.key_serde),
            carry(&self.value_serde),
        )
        .with_repartition(true)
    }

    /// Replaces the value, keeping the key (and so the partitioning).
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.map_values_with_key(move |_, v| mapper(v))
    }

    /// Replaces the value using the key as well.
    pub fn map_values_with_key<V2: Data>(
        &self,
        mapper: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let node = self.add_stateless::<K, V2>(
            "KSTREAM-MAPVALUES-",
            Arc::new(move |r: Record<K, V>, emit| {
                let value = mapper(&r.key, r.value);
                emit(Record {
                    key: r.key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            }),
        );
        self.with_values(node)
    }

    /// Replaces each record by zero or more records. Marks the stream for repartitioning.
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        mapper: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let node = self.add_stateless::<K2, V2>(
            "KSTREAM-FLATMAP-",
            Arc::new(move |r: Record<K, V>, emit| {
                for (key, value) in mapper(r.key, r.value) {
                    emit(Record {
                        key,
                        value,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })?;
                }
                Ok(())
            }),
        );
        KStream::new(
            self.builder.clone(),
            node,
            carry(&self.key_serde),
            carry(&self.value_serde),
        )
        .with_repartition(true)
    }

    /// Replaces each value by zero or more values under the same key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        mapper: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        let node = self.add_stateless::<K, V2>(
            "KSTREAM-FLATMAPVALUES-",
            Arc::new(move |r: Record<K, V>, emit| {
                for value in mapper(r.value) {
                    emit(Record {
                        key: r.key.clone(),
                        value,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })?;
                }
                Ok(())
            }),
        );
        self.with_values(node)
    }

    /// Sets a new key computed from key and value. Marks the stream for repartitioning.
    pub fn select_key<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let node = self.add_stateless::<K2, V>(
            "KSTREAM-KEY-SELECT-",
            Arc::new(move |r: Record<K, V>, emit| {
                let key = selector(&r.key, &r.value);
                emit(r.with_key(key))
            }),
        );
        KStream::new(
            self.builder.clone(),
            node,
            carry(&self.key_serde),
            self.value_serde.clone(),
        )
        .with_repartition(true)
    }

    /// Calls `action` on each record and passes it on unchanged.
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let node = self.add_stateless::<K, V>(
            "KSTREAM-PEEK-",
            Arc::new(move |r, emit| {
                action(&r.key, &r.value);
                emit(r)
            }),
        );
        self.derive(node, self.repartition_required)
    }

    /// Calls `action` on each record; the stream ends here.
    pub fn foreach(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) {
        self.add_stateless::<K, V>(
            "KSTREAM-FOREACH-",
            Arc::new(move |r, _emit| {
                action(&r.key, &r.value);
                Ok(())
            }),
        );
    }

    /// Starts splitting the stream into named branches; see [`BranchedKStream`].
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream::new(self.clone(), String::new())
    }

    /// Like [`split`](Self::split), with `prefix` in front of every branch name.
    pub fn split_with_prefix(&self, prefix: impl Into<String>) -> BranchedKStream<K, V> {
        BranchedKStream::new(self.clone(), prefix.into())
    }

    /// One stream with the records of both. No ordering between the two is promised
    /// beyond each one's own order.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let node = add_merge_node(&self.builder, "KSTREAM-MERGE-", vec![self.node, other.node]);
        let mut merged = self.derive(
            node,
            self.repartition_required || other.repartition_required,
        );
        if merged.key_serde.is_none() {
            merged.key_serde = other.key_serde.clone();
        }
        if merged.value_serde.is_none() {
            merged.value_serde = other.value_serde.clone();
        }
        merged
    }

    /// Runs a user [`Processor`]; `supplier` makes one instance per task. The result may
    /// have any key, so it is marked for repartitioning.
    pub fn process<KOut: Data, VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
    {
        self.process_with_stores(supplier, &[])
    }

    /// Like [`process`](Self::process), with access to the named state stores.
    pub fn process_with_stores<KOut: Data, VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
    {
        let node = self.add_processor("KSTREAM-PROCESSOR-", stores, move || {
            Box::new(ProcessorNode::<P, K, V, KOut, VOut>::new(supplier()))
        });
        KStream::new(
            self.builder.clone(),
            node,
            carry(&self.key_serde),
            carry(&self.value_serde),
        )
        .with_repartition(true)
    }

    /// Runs a user [`FixedKeyProcessor`], which keeps keys and so the partitioning.
    pub fn process_values<VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<K, VOut>
    where
        P: FixedKeyProcessor<K, V, VOut>,
    {
        self.process_values_with_stores(supplier, &[])
    }

    /// Like [`process_values`](Self::process_values), with access to the named state stores.
    pub fn process_values_with_stores<VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K, VOut>
    where
        P: FixedKeyProcessor<K, V, VOut>,
    {
        let node = self.add_processor("KSTREAM-PROCESSVALUES-", stores, move || {
            Box::new(FixedKeyProcessorNode::<P, K, V, VOut>::new(supplier()))
        });
        self.with_values(node)
    }

    fn add_processor(
        &self,
        prefix: &str,
        stores: &[&str],
        make: impl Fn() -> Box<dyn crate::graph::ErasedNode> + Send + Sync + 'static,
    ) -> usize {
        let mut b = self.builder.borrow_mut();
        let name = b.next_name(prefix);
        let node = b.add_node(
            name,
            NodeKind::Processor {
                factory: Arc::new(make),
            },
            vec![self.node],
        );
        for store in stores {
            b.connect_store(node, store);
        }
        node
    }

    /// Writes every record to `topic`.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        self.add_sink(SinkTarget::Fixed(TopicName::user(topic)), produced);
    }

    /// Writes each record to the topic `choose` names for it. The topics must exist.
    pub fn to_dynamic(
        &self,
        choose: impl Fn(&K, &V) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        let chooser: TopicChooser<K, V> = Arc::new(choose);
        self.add_sink(SinkTarget::Dynamic(chooser), produced);
    }

    fn add_sink(&self, target: SinkTarget<K, V>, produced: Produced<K, V>) -> Option<usize> {
        let mut b = self.builder.borrow_mut();
        let name = produced
            .name
            .clone()
            .unwrap_or_else(|| b.next_name("KSTREAM-SINK-"));
        let key_serde = produced.key_serde.or_else(|| self.key_serde.clone());
        let value_serde = produced.value_serde.or_else(|| self.value_serde.clone());
        let (Some(key_serde), Some(value_serde)) = (key_serde.clone(), value_serde.clone()) else {
            let what = if key_serde.is_none() { "key" } else { "value" };
            b.report(TopologyError::MissingSerde { node: name, what });
            return None;
        };
        let topic = match &target {
            SinkTarget::Fixed(t) => SinkTopic::Fixed(t.clone()),
            SinkTarget::Dynamic(_) => SinkTopic::Dynamic,
        };
        let partitioner = produced.partitioner;
        let node = b.add_node(
            name,
            NodeKind::Sink {
                topic,
                factory: Arc::new(move || {
                    Box::new(SinkNode {
                        target: target.clone(),
                        key_serde: key_serde.clone(),
                        value_serde: value_serde.clone(),
                        partitioner: partitioner.clone(),
                    })
                }),
            },
            vec![self.node],
        );
        Some(node)
    }

    /// Writes the stream through an internal topic `<application.id>-<name>-repartition`
    /// and reads it back, so that records are partitioned by their current key.
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> KStream<K, V> {
        let base = {
            let mut b = self.builder.borrow_mut();
            repartitioned
                .produced
                .name
                .clone()
                .unwrap_or_else(|| b.next_name("KSTREAM-REPARTITION-"))
        };
        let topic = TopicName::internal(format!("{base}-repartition"));
        let key_serde = repartitioned
            .produced
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone());
        let value_serde = repartitioned
            .produced
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone());
        let produced = Produced {
            name: Some(format!("{base}-sink")),
            ..repartitioned.produced
        };
        self.add_sink(SinkTarget::Fixed(topic.clone()), produced);
        self.builder.borrow_mut().add_internal_topic(InternalTopic {
            name: topic.clone(),
            kind: InternalTopicKind::Repartition,
            partitions: repartitioned.partitions,
            like_node: None,
        });
        match (key_serde, value_serde) {
            (Some(k), Some(v)) => {
                let consumed = Consumed {
                    key_serde: k,
                    value_serde: v,
                    timestamp_extractor: None,
                    offset_reset: None,
                    name: Some(format!("{base}-source")),
                };
                let builder = crate::dsl::StreamsBuilder {
                    inner: self.builder.clone(),
                };
                builder.stream_from(SourceTopics::Names(vec![topic]), consumed)
            }
            // add_sink has reported the missing serde; keep the chain going for build() to fail.
            _ => self.clone(),
        }
    }

    /// Groups records by their current key for an aggregation. If an earlier operator
    /// may have changed the key, records are first repartitioned (through
    /// `<application.id>-<name>-repartition`) so that each key meets in one task.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        let mut stream = self.clone();
        if let Some(serde) = grouped.key_serde {
            stream.key_serde = Some(serde);
        }
        if let Some(serde) = grouped.value_serde {
            stream.value_serde = Some(serde);
        }
        KGroupedStream {
            stream: stream.repartition_if_required(grouped.name.as_deref()),
        }
    }

    /// Groups records by a key computed from key and value (always repartitions).
    pub fn group_by<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key(grouped)
    }

    /// Reads the stream as a table, as Kafka Streams' `toTable`: each record becomes its
    /// key's latest value, kept in a store named by `materialized` (or generated), and
    /// the table's changes carry the value each record replaced. If an earlier operator
    /// may have changed the key, records are first repartitioned.
    pub fn to_table(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let stream = self.repartition_if_required(None);
        let store = materialized.declare(
            &mut self.builder.borrow_mut(),
            "KSTREAM-TOTABLE-",
            stream.key_serde.clone(),
            stream.value_serde.clone(),
        );
        let Some(store) = store else {
            // A missing serde was reported; keep the chain going for build() to fail.
            return KTable {
                builder: self.builder.clone(),
                node: stream.node,
                key_serde: None,
                value_serde: None,
                store: None,
                grace_ms: None,
            };
        };
        // The table source takes optional values (a null one deletes); a stream's never is.
        let values = stream.map_values(Some);
        let name = store.name.clone();
        let node = add_processor_node::<_, K, Option<V>, K, Change<V>>(
            &self.builder,
            "KSTREAM-TOTABLE-",
            vec![values.node],
            &[&store.name],
            move || TableSource {
                store: name.clone(),
            },
        );
        KTable {
            builder: self.builder.clone(),
            node,
            key_serde: Some(store.key_serde),
            value_serde: Some(store.value_serde),
            store: Some(store.name),
            grace_ms: None,
        }
    }

    fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        prefix: &str,
        joiner: StreamTableJoiner<V, VT, VR>,
    ) -> KStream<K, VR> {
        let stream = self.repartition_if_required(None);
        let table = table.ensure_materialized();
        let Some(store) = table.store.clone() else {
            // A missing serde was reported; keep the chain going for build() to fail.
            return KStream::new(self.builder.clone(), self.node, None, None);
        };
        let table_store = store.clone();
        let node = add_processor_node::<_, K, V, K, VR>(
            &self.builder,
            prefix,
            vec![stream.node],
            &[&store],
            move || StreamTableJoin {
                table_store: table_store.clone(),
                joiner: joiner.clone(),
            },
        );
        KStream::new(self.builder.clone(), node, stream.key_serde.clone(), None)
    }

    /// Joins each record with the table's current value for its key; records without
    /// one are dropped. Stream and table must be co-partitioned (same partition count,
    /// same partitioning); the stream is repartitioned first if its key may have changed.
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_table(
            table,
            "KSTREAM-JOIN-",
            Arc::new(move |v: &V, t: Option<&VT>| t.map(|t| joiner(v, t))),
        )
    }

    /// Like [`join`](Self::join), keeping records without a table value (`None`).
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_table(
            table,
            "KSTREAM-LEFTJOIN-",
            Arc::new(move |v: &V, t: Option<&VT>| Some(joiner(v, t))),
        )
    }

    fn join_stream_with<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        windows: JoinWindows,
        prefix: &str,
        joiner: PairJoiner<V, VO, VR>,
        emit_unmatched: (bool, bool),
    ) -> KStream<K, VR> {
        let left = self.repartition_if_required(None);
        let right = other.repartition_if_required(None);
        let (Some(key_serde), Some(left_serde), Some(right_serde)) = (
            left.key_serde.clone(),
            left.value_serde.clone(),
            right.value_serde.clone(),
        ) else {
            self.builder
                .borrow_mut()
                .report(TopologyError::MissingSerde {
                    node: format!(
                        "{prefix}(stream-stream join: both streams need key and value serdes)"
                    ),
                    what: if left.key_serde.is_none() {
                        "key"
                    } else {
                        "value"
                    },
                });
            return KStream::new(self.builder.clone(), self.node, None, None);
        };
        let retention = Duration::from_millis(
            (windows.before_ms + windows.after_ms + windows.grace_ms).max(1) as u64,
        );
        let size = Duration::from_millis((windows.before_ms + windows.after_ms).max(1) as u64);
        let (this_store, other_store) = {
            let mut b = self.builder.borrow_mut();
            let this_store = b.next_name(&format!("{prefix}THIS-STORE-"));
            let other_store = b.next_name(&format!("{prefix}OTHER-STORE-"));
            b.add_store(
                Stores::window(
                    this_store.clone(),
                    key_serde.clone(),
                    left_serde,
                    retention,
                    size,
                    true,
                )
                .into_definition()
                .0,
            );
            b.add_store(
                Stores::window(
                    other_store.clone(),
                    key_serde.clone(),
                    right_serde,
                    retention,
                    size,
                    true,
                )
                .into_definition()
                .0,
            );
            (this_store, other_store)
        };
        // Left and outer joins hold unmatched records in a store shared by both sides.
        let unmatched_store = (emit_unmatched.0 || emit_unmatched.1).then(|| {
            let mut b = self.builder.borrow_mut();
            let name = b.next_name(&format!("{prefix}UNMATCHED-STORE-"));
            b.add_store(
                Stores::key_value(name.clone(), BytesSerde, BytesSerde)
                    .into_definition()
                    .0,
            );
            name
        });
        let mut stores = vec![this_store.as_str(), other_store.as_str()];
        stores.extend(unmatched_store.as_deref());
        let (left_serde, right_serde) = (
            left.value_serde.clone().expect("checked above"),
            right.value_serde.clone().expect("checked above"),
        );
        let left_joiner = {
            let j = joiner.clone();
            Arc::new(move |l: &V, r: Option<&VO>| j(Some(l), r)) as SideJoiner<V, VO, VR>
        };
        let right_joiner = {
            let j = joiner.clone();
            Arc::new(move |r: &VO, l: Option<&V>| j(l, Some(r))) as SideJoiner<VO, V, VR>
        };
        let (ts, os, us) = (
            this_store.clone(),
            other_store.clone(),
            unmatched_store.clone(),
        );
        // Both sides observe one stream time per task.
        let time = JoinTime::default();
        let lt = time.clone();
        let (ks, ls, rs, lj, rj) = (
            key_serde.clone(),
            left_serde.clone(),
            right_serde.clone(),
            left_joiner.clone(),
            right_joiner.clone(),
        );
        let left_node = add_processor_node::<_, K, V, K, VR>(
            &self.builder,
            &format!("{prefix}THIS-"),
            vec![left.node],
            &stores,
            move || StreamJoinSide {
                this_store: ts.clone(),
                other_store: os.clone(),
                before_ms: windows.before_ms,
                after_ms: windows.after_ms,
                grace_ms: windows.grace_ms,
                joiner: lj.clone(),
                left: true,
                time: lt.clone(),
                unmatched: us.clone().map(|store| Unmatched {
                    store,
                    left: true,
                    track_this: emit_unmatched.0,
                    key_serde: ks.clone(),
                    this_serde: ls.clone(),
                    other_serde: rs.clone(),
                    other_joiner: rj.clone(),
                }),
            },
        );
        let (ts, os, us, ks) = (
            this_store.clone(),
            other_store.clone(),
            unmatched_store.clone(),
            key_serde.clone(),
        );
        let right_node = add_processor_node::<_, K, VO, K, VR>(
            &self.builder,
            &format!("{prefix}OTHER-"),
            vec![right.node],
            &stores,
            move || StreamJoinSide {
                this_store: os.clone(),
                other_store: ts.clone(),
                // Seen from the right, left records may be `after` earlier or `before` later.
                before_ms: windows.after_ms,
                after_ms: windows.before_ms,
                grace_ms: windows.grace_ms,
                joiner: right_joiner.clone(),
                left: false,
                time: time.clone(),
                unmatched: us.clone().map(|store| Unmatched {
                    store,
                    left: false,
                    track_this: emit_unmatched.1,
                    key_serde: ks.clone(),
                    this_serde: right_serde.clone(),
                    other_serde: left_serde.clone(),
                    other_joiner: left_joiner.clone(),
                }),
            },
        );
        let merged = add_merge_node(
            &self.builder,
            &format!("{prefix}MERGE-"),
            vec![left_node, right_node],
        );
        KStream::new(self.builder.clone(), merged, Some(key_serde), None)
    }

    /// Joins records of two streams with the same key whose timestamps are within
    /// `windows`; each pair is emitted once, with the later timestamp. Both streams are
    /// co-partitioned (repartitioned first if their keys may have changed).
    pub fn join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |l: Option<&V>, r: Option<&VO>| match (l, r) {
            (Some(l), Some(r)) => joiner(l, r),
            _ => unreachable!("an inner join only joins matched records"),
        });
        self.join_stream_with(other, windows, "KSTREAM-JOIN-", joiner, (false, false))
    }

    /// Like [`join_stream`](Self::join_stream), also emitting each record of this stream
    /// that found no match (with `None`) once its join window has closed (the join's
    /// stream time past its timestamp plus `after` plus the grace period), as Kafka
    /// Streams does: a record matched later is never emitted alone. A record arriving
    /// after its own window (timestamp plus `after` below the join's stream time) that
    /// finds no match is emitted alone at once. Unmatched records go out ordered by
    /// their timestamp, before the results of the record that closed their window.
    pub fn left_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |l: Option<&V>, r: Option<&VO>| match l {
            Some(l) => joiner(l, r),
            None => unreachable!("a left join never emits a right record alone"),
        });
        self.join_stream_with(other, windows, "KSTREAM-LEFTJOIN-", joiner, (true, false))
    }

    /// Like [`left_join_stream`](Self::left_join_stream), for both sides: unmatched
    /// records of either stream are emitted alone when their window closes (a right
    /// record at `before` plus grace past its timestamp); at equal timestamps right
    /// records go out first.
    pub fn outer_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.join_stream_with(
            other,
            windows,
            "KSTREAM-OUTERJOIN-",
            Arc::new(joiner),
            (true, true),
        )
    }

    fn join_global_with<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalKTable<GK, GV>,
        prefix: &str,
        key_selector: GlobalKeySelector<K, V, GK>,
        joiner: StreamTableJoiner<V, GV, VR>,
    ) -> KStream<K, VR> {
        let store = global.store.clone();
        let node = add_processor_node::<_, K, V, K, VR>(
            &self.builder,
            prefix,
            vec![self.node],
            &[],
            move || StreamGlobalJoin {
                global_store: store.clone(),
                key_selector: key_selector.clone(),
                joiner: joiner.clone(),
            },
        );
        // The key is unchanged and no repartitioning is needed: the table is everywhere.
        KStream::new(self.builder.clone(), node, self.key_serde.clone(), None)
            .with_repartition(self.repartition_required)
    }

    /// Joins each record with the global table row whose key `key_selector` computes;
    /// records without a row are dropped.
    pub fn join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_global_with(
            global,
            "KSTREAM-GLOBALJOIN-",
            Arc::new(key_selector),
            Arc::new(move |v: &V, g: Option<&GV>| g.map(|g| joiner(v, g))),
        )
    }

    /// Like [`join_global`](Self::join_global), keeping records without a row (`None`).
    pub fn left_join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_global_with(
            global,
            "KSTREAM-GLOBALLEFTJOIN-",
            Arc::new(key_selector),
            Arc::new(move |v: &V, g: Option<&GV>| Some(joiner(v, g))),
        )
    }

    /// Repartitions through an internal topic if an earlier operator may have changed the key.
    /// Key-based operators (grouping, joins) call this first.
    pub(crate) fn repartition_if_required(&self, name: Option<&str>) -> KStream<K, V> {
        if !self.repartition_required {
            return self.clone();
        }
        let repartitioned = match name {
            Some(n) => Repartitioned::new().with_name(n),
            None => Repartitioned::new(),
        };
        self.repartition(repartitioned)
    }

    fn with_values<V2: Data>(&self, node: usize) -> KStream<K, V2> {
        KStream::new(
            self.builder.clone(),
            node,
            self.key_serde.clone(),
            carry(&self.value_serde),
        )
        .with_repartition(self.repartition_required)
    }

    fn with_repartition(mut self, required: bool) -> Self {
        self.repartition_required = required;
        self
    }
}
