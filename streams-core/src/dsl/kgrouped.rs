//! Grouped streams and tables: the step between choosing a key and aggregating by it.

use std::sync::Arc;

use super::change::Change;
use super::kstream::KStream;
use super::ktable::KTable;
use super::materialized::Materialized;
use super::ops::add_processor_node;
use super::ops::aggregate::{
    Aggregator, Initializer, Reducer, StreamAggregate, StreamReduce, TableAggregate, TableReduce,
};
use crate::graph::Data;
use crate::serde::{I64Serde, Serde};

/// Keeps a serde for `U` when `U` is `T`.
fn same_type<T: Data, U: Data>(serde: &Option<Arc<dyn Serde<T>>>) -> Option<Arc<dyn Serde<U>>> {
    let any: Box<dyn std::any::Any> = Box::new(serde.clone()?);
    any.downcast::<Arc<dyn Serde<U>>>().ok().map(|s| *s)
}

/// A stream grouped by key (records of one key meet in one task), ready to aggregate.
/// Made by [`KStream::group_by_key`] and [`KStream::group_by`].
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Folds each key's records into an aggregate kept in a store; the result table
    /// updates with every record (no caching: each update is emitted).
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let s = &self.stream;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare(
                &mut b,
                "KSTREAM-AGGREGATE-",
                s.key_serde.clone(),
                same_type(&s.value_serde),
            )
        };
        let initializer: Initializer<VA> = Arc::new(initializer);
        let aggregator: Aggregator<K, V, VA> = Arc::new(aggregator);
        let Some(store) = store else {
            return KTable {
                builder: s.builder.clone(),
                node: s.node,
                key_serde: None,
                value_serde: None,
                store: None,
            };
        };
        let name = store.name.clone();
        let node = add_processor_node::<_, K, V, K, Change<VA>>(
            &s.builder,
            "KSTREAM-AGGREGATE-",
            vec![s.node],
            &[&store.name],
            move || StreamAggregate {
                store: name.clone(),
                initializer: initializer.clone(),
                aggregator: aggregator.clone(),
            },
        );
        KTable {
            builder: s.builder.clone(),
            node,
            key_serde: Some(store.key_serde),
            value_serde: Some(store.value_serde),
            store: Some(store.name),
        }
    }

    /// Combines each key's values with `reducer(aggregate, value)`; the first value of a
    /// key is its first aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let reducer: Reducer<V> = Arc::new(reducer);
        let s = &self.stream;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare(
                &mut b,
                "KSTREAM-REDUCE-",
                s.key_serde.clone(),
                s.value_serde.clone(),
            )
        };
        let Some(store) = store else {
            return KTable {
                builder: s.builder.clone(),
                node: s.node,
                key_serde: None,
                value_serde: None,
                store: None,
            };
        };
        let name = store.name.clone();
        let node = add_processor_node::<_, K, V, K, Change<V>>(
            &s.builder,
            "KSTREAM-REDUCE-",
            vec![s.node],
            &[&store.name],
            move || StreamReduce {
                store: name.clone(),
                reducer: reducer.clone(),
            },
        );
        KTable {
            builder: s.builder.clone(),
            node,
            key_serde: Some(store.key_serde),
            value_serde: Some(store.value_serde),
            store: Some(store.name),
        }
    }

    /// Counts records per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = if materialized.value_serde.is_none() {
            materialized.with_value_serde(I64Serde)
        } else {
            materialized
        };
        self.aggregate(|| 0, |_, _, count| count + 1, materialized)
    }
}

/// A table re-keyed for aggregation. Made by [`KTable::group_by`].
pub struct KGroupedTable<K, V> {
    pub(crate) stream: KStream<K, Change<V>>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    /// Aggregates rows per key: `adder` folds in new rows, `subtractor` removes old ones
    /// (a row that moves to another key is subtracted from its old key's aggregate).
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let s = &self.stream;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare(
                &mut b,
                "KTABLE-AGGREGATE-",
                self.key_serde.clone(),
                same_type(&self.value_serde),
            )
        };
        let Some(store) = store else {
            return KTable {
                builder: s.builder.clone(),
                node: s.node,
                key_serde: None,
                value_serde: None,
                store: None,
            };
        };
        let initializer: Initializer<VA> = Arc::new(initializer);
        let adder: Aggregator<K, V, VA> = Arc::new(adder);
        let subtractor: Aggregator<K, V, VA> = Arc::new(subtractor);
        let name = store.name.clone();
        let node = add_processor_node::<_, K, Change<V>, K, Change<VA>>(
            &s.builder,
            "KTABLE-AGGREGATE-",
            vec![s.node],
            &[&store.name],
            move || TableAggregate {
                store: name.clone(),
                initializer: initializer.clone(),
                adder: adder.clone(),
                subtractor: subtractor.clone(),
            },
        );
        KTable {
            builder: s.builder.clone(),
            node,
            key_serde: Some(store.key_serde),
            value_serde: Some(store.value_serde),
            store: Some(store.name),
        }
    }

    /// Counts rows per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = if materialized.value_serde.is_none() {
            materialized.with_value_serde(I64Serde)
        } else {
            materialized
        };
        self.aggregate(|| 0, |_, _, n| n + 1, |_, _, n| n - 1, materialized)
    }

    /// Combines rows per key with `adder(aggregate, row)`, and removes old rows with
    /// `subtractor(aggregate, row)`; a key's first row is its first aggregate.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let s = &self.stream;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare(
                &mut b,
                "KTABLE-REDUCE-",
                self.key_serde.clone(),
                self.value_serde.clone(),
            )
        };
        let Some(store) = store else {
            return KTable {
                builder: s.builder.clone(),
                node: s.node,
                key_serde: None,
                value_serde: None,
                store: None,
            };
        };
        let adder: Reducer<V> = Arc::new(adder);
        let subtractor: Reducer<V> = Arc::new(subtractor);
        let name = store.name.clone();
        let node = add_processor_node::<_, K, Change<V>, K, Change<V>>(
            &s.builder,
            "KTABLE-REDUCE-",
            vec![s.node],
            &[&store.name],
            move || TableReduce {
                store: name.clone(),
                adder: adder.clone(),
                subtractor: subtractor.clone(),
            },
        );
        KTable {
            builder: s.builder.clone(),
            node,
            key_serde: Some(store.key_serde),
            value_serde: Some(store.value_serde),
            store: Some(store.name),
        }
    }
}
