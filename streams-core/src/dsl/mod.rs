//! The high-level DSL: [`StreamsBuilder`] creates streams from topics, [`KStream`] operators
//! transform them, and `build` yields a [`Topology`].
//!
//! ```
//! use streams_core::dsl::{Consumed, Produced, StreamsBuilder};
//! use streams_core::serde::{I64Serde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("payments", Consumed::with(StringSerde, I64Serde))
//!     .filter(|_customer, amount| *amount > 0)
//!     .map_values(|amount| amount * 100)
//!     .to("payments-in-cents", Produced::new());
//! let topology = builder.build().unwrap();
//! println!("{}", topology.describe());
//! ```

mod change;
mod global_ktable;
mod kgrouped;
mod kstream;
mod ktable;
mod materialized;
pub(crate) mod ops;
mod options;
mod windows;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub use change::Change;
pub use global_ktable::GlobalKTable;
pub use kgrouped::{KGroupedStream, KGroupedTable};
pub use kgrouped::{SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream};
pub use kstream::KStream;
pub use ktable::KTable;
pub use materialized::{Grouped, Materialized};
pub use ops::split::BranchedKStream;
pub use options::{Consumed, Produced, Repartitioned, StreamPartitioner, TimestampExtractor};
pub use windows::{EmitStrategy, JoinWindows, SessionWindows, SlidingWindows, TimeWindows};

use crate::graph::Data;
use crate::topology::node::{NodeKind, SourceTopics, TopicName};
use crate::topology::{Topology, TopologyBuilder, TopologyError};

/// Entry point of the DSL: declares source streams and builds the topology.
///
/// Not `Send`: build the topology on one thread, then hand the [`Topology`] to the runtime.
#[derive(Default)]
pub struct StreamsBuilder {
    inner: Rc<RefCell<TopologyBuilder>>,
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a state store that processors can use once connected by name (see
    /// [`KStream::process_with_stores`]).
    pub fn add_state_store(&self, store: impl crate::state::StoreBuilder) -> &Self {
        self.inner.borrow_mut().add_store(store.into_definition().0);
        self
    }

    /// Reads `topic` as a table: the latest value per key, kept in a store (named by
    /// `materialized`, or generated). A record with a null value deletes its key.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let key_serde = consumed.key_serde.clone();
        let value_serde = consumed.value_serde.clone();
        // Tombstones are part of a table's topic: read values as optional.
        let nullable: Consumed<K, Option<V>> = Consumed {
            key_serde: consumed.key_serde,
            value_serde: Arc::new(crate::serde::Nullable(consumed.value_serde)),
            timestamp_extractor: consumed.timestamp_extractor.map(|extract| {
                let extract: TimestampExtractor<K, Option<V>> =
                    Arc::new(move |k: &K, v: &Option<V>, ts: i64, pt: i64| match v {
                        Some(v) => extract(k, v, ts, pt),
                        None => ts,
                    });
                extract
            }),
            offset_reset: consumed.offset_reset,
            name: consumed.name,
        };
        let source = self.stream_from(SourceTopics::Names(vec![TopicName::user(topic)]), nullable);
        let store = {
            let mut b = self.inner.borrow_mut();
            materialized.declare(
                &mut b,
                "KTABLE-SOURCE-",
                Some(key_serde.clone()),
                Some(value_serde.clone()),
            )
        };
        let Some(store) = store else {
            return KTable {
                builder: self.inner.clone(),
                node: source.node,
                key_serde: None,
                value_serde: None,
                store: None,
                grace_ms: None,
            };
        };
        let name = store.name.clone();
        let node = ops::add_processor_node::<_, K, Option<V>, K, Change<V>>(
            &self.inner,
            "KTABLE-SOURCE-",
            vec![source.node],
            &[&store.name],
            move || ops::table::TableSource {
                store: name.clone(),
            },
        );
        KTable {
            builder: self.inner.clone(),
            node,
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            store: Some(store.name),
            grace_ms: None,
        }
    }

    /// Reads `topic` in full, on every instance, into a global store (named by
    /// `materialized`, or generated); the table stays up to date while the application
    /// runs. On a broker, `KafkaStreams::start` returns once every global table has
    /// caught up with its topic. Keys and values are stored as the topic holds them, so
    /// the serdes must be the topic's.
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<K, V> {
        let mut b = self.inner.borrow_mut();
        let name = materialized
            .store_name
            .clone()
            .unwrap_or_else(|| b.next_name("GLOBALKTABLE-STATE-STORE-"));
        let key_serde = materialized.key_serde.unwrap_or(consumed.key_serde);
        let value_serde = materialized.value_serde.unwrap_or(consumed.value_serde);
        let definition = crate::state::Stores::key_value(name.clone(), key_serde, value_serde)
            .in_memory()
            .with_logging(false);
        b.add_global_table(
            topic,
            crate::state::StoreBuilder::into_definition(definition).0,
        );
        GlobalKTable {
            store: name,
            types: std::marker::PhantomData,
        }
    }

    /// A stream of the records of `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        self.stream_from(SourceTopics::Names(vec![TopicName::user(topic)]), consumed)
    }

    /// One stream of the records of several topics.
    pub fn stream_topics<K: Data, V: Data>(
        &self,
        topics: &[&str],
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        self.stream_from(
            SourceTopics::Names(topics.iter().map(|t| TopicName::user(*t)).collect()),
            consumed,
        )
    }

    /// A stream of the records of every topic whose whole name matches `pattern`
    /// (a regular expression), including topics created while the application runs.
    pub fn stream_pattern<K: Data, V: Data>(
        &self,
        pattern: &str,
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(re) => self.stream_from(SourceTopics::Pattern(re), consumed),
            Err(e) => {
                self.inner
                    .borrow_mut()
                    .report(TopologyError::Invalid(format!("pattern {pattern}: {e}")));
                self.stream_from(SourceTopics::Names(Vec::new()), consumed)
            }
        }
    }

    pub(crate) fn stream_from<K: Data, V: Data>(
        &self,
        topics: SourceTopics,
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        let decoder = ops::source::decoder(&consumed);
        let mut b = self.inner.borrow_mut();
        let name = consumed
            .name
            .clone()
            .unwrap_or_else(|| b.next_name("KSTREAM-SOURCE-"));
        let node = b.add_node(
            name,
            NodeKind::Source {
                topics,
                decoder,
                offset_reset: consumed.offset_reset,
            },
            Vec::new(),
        );
        drop(b);
        KStream::new(
            self.inner.clone(),
            node,
            Some(consumed.key_serde),
            Some(consumed.value_serde),
        )
    }

    /// Finishes the topology. Fails on errors found while it was declared (duplicate
    /// names, missing serdes, a topic read twice...).
    pub fn build(self) -> Result<Topology, TopologyError> {
        let inner = Rc::try_unwrap(self.inner)
            .map(RefCell::into_inner)
            .unwrap_or_else(|shared| std::mem::take(&mut *shared.borrow_mut()));
        inner.build()
    }
}
