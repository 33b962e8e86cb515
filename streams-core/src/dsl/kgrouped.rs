//! Grouped streams and tables: the step between choosing a key and aggregating by it.

use std::sync::Arc;

use super::change::Change;
use super::kstream::KStream;
use super::ktable::KTable;
use super::materialized::Materialized;
use super::ops::add_processor_node;
use super::ops::aggregate::{
    aggregating, reducing, Combine, Initializer, Reducer, Retract, StreamAggregate, TableAggregate,
};
use super::ops::windowed::{
    EmitProgress, SessionMerge, SessionWindowAggregate, SlidingWindowAggregate, TimeWindowAggregate,
};
use super::windows::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows};
use crate::graph::Data;
use crate::serde::{I64Serde, Nullable, Serde, StringSerde};
use crate::state::{SessionWindowedSerde, TimeWindowedSerde, Windowed};
use crate::state::{StoreBuilder, Stores};
use crate::topology::TopologyBuilder;
use std::time::Duration;

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
    /// updates with every record. With the store's record cache (on by default, see
    /// [`Materialized::with_caching`]) the updates of a key between commits are merged
    /// and only the latest is forwarded, as in Kafka Streams.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let combine = aggregating(Arc::new(initializer), Arc::new(aggregator));
        self.combine("KSTREAM-AGGREGATE-", combine, materialized)
    }

    /// Combines each key's values with `reducer(aggregate, value)`; the first value of a
    /// key is its first aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        self.combine("KSTREAM-REDUCE-", reducing(Arc::new(reducer)), materialized)
    }

    fn combine<VA: Data>(
        &self,
        prefix: &str,
        combine: Combine<K, V, VA>,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let s = &self.stream;
        let value_serde = same_type(&s.value_serde);
        aggregate_in_store(
            s,
            prefix,
            materialized,
            s.key_serde.clone(),
            value_serde,
            move |store| StreamAggregate {
                store,
                combine: combine.clone(),
            },
        )
    }

    /// Counts records per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.aggregate(
            || 0,
            |_, _, count| count + 1,
            with_count_serde(materialized),
        )
    }
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Aggregates per key and time window (tumbling or hopping).
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            stream: self.stream.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }

    /// Aggregates per key and sliding window.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            stream: self.stream.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }

    /// Aggregates per key and session.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            stream: self.stream.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }
}

/// A grouped stream aggregated per time window. Results are keyed by [`Windowed`] key;
/// each update of a window is emitted, or only final results with
/// [`EmitStrategy::OnWindowClose`].
pub struct TimeWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: TimeWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// Chooses when results are emitted: on every update (the default) or once per
    /// window when it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    /// Folds the records of each key and window into an aggregate kept in a window store.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        self.combine(
            aggregating(Arc::new(initializer), Arc::new(aggregator)),
            materialized,
        )
    }

    fn combine<VA: Data>(
        &self,
        combine: Combine<K, V, VA>,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let s = &self.stream;
        let w = self.windows;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare_window(
                &mut b,
                "KSTREAM-AGGREGATE-",
                s.key_serde.clone(),
                same_type(&s.value_serde),
                w.size_ms,
                w.size_ms + w.grace_ms,
            )
        };
        let Some(store) = store else {
            return broken_table(s);
        };
        let emit = self.emit;
        let progress = declare_emit_progress(&mut s.builder.borrow_mut(), emit);
        let mut stores = vec![store.name.clone()];
        stores.extend(progress.clone());
        let stores: Vec<&str> = stores.iter().map(String::as_str).collect();
        let name = store.name.clone();
        let node = add_processor_node::<_, K, V, Windowed<K>, Change<VA>>(
            &s.builder,
            "KSTREAM-WINDOWED-AGGREGATE-",
            vec![s.node],
            &stores,
            move || TimeWindowAggregate {
                store: name.clone(),
                windows: w,
                combine: combine.clone(),
                emit,
                progress: EmitProgress::new(progress.clone()),
                observed: Default::default(),
            },
        );
        let key_serde: Arc<dyn Serde<Windowed<K>>> =
            Arc::new(TimeWindowedSerde::new(store.key_serde, w.size()));
        windowed_table(s, node, key_serde, store.value_serde, w.grace_ms)
    }

    /// Counts records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, n| n + 1, with_count_serde(materialized))
    }

    /// Combines the values of each key and window; a window's first value is its aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer: Reducer<V> = Arc::new(reducer);
        self.combine(reducing(reducer), materialized)
    }
}

/// A grouped stream aggregated per sliding window. Results are keyed by [`Windowed`]
/// key (start and end included in the window); each update is emitted, or only final
/// results with [`EmitStrategy::OnWindowClose`].
pub struct SlidingWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SlidingWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// Chooses when results are emitted: on every update (the default) or once per
    /// window when it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    /// Folds the records of each key and window into an aggregate kept in a window store.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        self.combine(
            aggregating(Arc::new(initializer), Arc::new(aggregator)),
            materialized,
        )
    }

    /// Counts records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, n| n + 1, with_count_serde(materialized))
    }

    /// Combines the values of each key and window.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer: Reducer<V> = Arc::new(reducer);
        self.combine(reducing(reducer), materialized)
    }

    fn combine<VA: Data>(
        &self,
        combine: Combine<K, V, VA>,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let s = &self.stream;
        let w = self.windows;
        // A record reads windows starting up to two time differences before it.
        let min_retention = 2 * w.difference_ms + w.grace_ms + 1;
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare_window(
                &mut b,
                "KSTREAM-SLIDING-AGGREGATE-",
                s.key_serde.clone(),
                same_type(&s.value_serde),
                w.difference_ms,
                min_retention,
            )
        };
        let Some(store) = store else {
            return broken_table(s);
        };
        let emit = self.emit;
        let progress = declare_emit_progress(&mut s.builder.borrow_mut(), emit);
        let mut stores = vec![store.name.clone()];
        stores.extend(progress.clone());
        let stores: Vec<&str> = stores.iter().map(String::as_str).collect();
        let name = store.name.clone();
        let node = add_processor_node::<_, K, V, Windowed<K>, Change<VA>>(
            &s.builder,
            "KSTREAM-SLIDING-AGGREGATE-",
            vec![s.node],
            &stores,
            move || SlidingWindowAggregate {
                store: name.clone(),
                windows: w,
                combine: combine.clone(),
                emit,
                progress: EmitProgress::new(progress.clone()),
                observed: Default::default(),
            },
        );
        let key_serde: Arc<dyn Serde<Windowed<K>>> = Arc::new(TimeWindowedSerde::new(
            store.key_serde,
            Duration::from_millis(w.difference_ms as u64),
        ));
        windowed_table(s, node, key_serde, store.value_serde, w.grace_ms)
    }
}

/// A grouped stream aggregated per session. Results are keyed by [`Windowed`] key (the
/// session's first and last record times); merged sessions are deleted downstream. Each
/// update is emitted, or only final results with [`EmitStrategy::OnWindowClose`].
pub struct SessionWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SessionWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// Chooses when results are emitted: on every update (the default) or once per
    /// session when it closes (stream time past its end plus gap and grace).
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    /// Folds each session's records into an aggregate; `merger` combines the aggregates
    /// of sessions a record bridges (starting from the initializer's value).
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let initializer: Initializer<VA> = Arc::new(initializer);
        let start = initializer.clone();
        let merge: SessionMerge<K, VA> = Arc::new(move |k, aggregate: Option<VA>, session| {
            merger(k, aggregate.unwrap_or_else(|| start()), session)
        });
        self.combine(
            "KSTREAM-SESSION-AGGREGATE-",
            aggregating(initializer, Arc::new(aggregator)),
            merge,
            materialized,
        )
    }

    /// Combines the values of each session with `reducer(aggregate, value)`; a session's
    /// first value is its aggregate, and merged sessions are combined the same way.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer: Reducer<V> = Arc::new(reducer);
        let merge_with = reducer.clone();
        let merge: SessionMerge<K, V> =
            Arc::new(move |_, aggregate: Option<V>, session| match aggregate {
                Some(aggregate) => merge_with(aggregate, session),
                None => session,
            });
        self.combine(
            "KSTREAM-SESSION-REDUCE-",
            reducing(reducer),
            merge,
            materialized,
        )
    }

    fn combine<VA: Data>(
        &self,
        prefix: &str,
        combine: Combine<K, V, VA>,
        merge: SessionMerge<K, VA>,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let s = &self.stream;
        let w = self.windows;
        // Sessions stay findable for two gaps after their end: a record within the grace
        // period may still bridge them to a newer session.
        let store = {
            let mut b = s.builder.borrow_mut();
            materialized.declare_session(
                &mut b,
                prefix,
                s.key_serde.clone(),
                same_type(&s.value_serde),
                2 * w.gap_ms + w.grace_ms + 1,
            )
        };
        let Some(store) = store else {
            return broken_table(s);
        };
        let emit = self.emit;
        let (progress, ends) = {
            let mut b = s.builder.borrow_mut();
            let progress = declare_emit_progress(&mut b, emit);
            let ends = progress.as_ref().map(|_| {
                // Live sessions by end, for finding the closed ones across keys.
                let name = format!("{}-ends", store.name);
                let ends = Stores::window(
                    name.clone(),
                    store.key_serde.clone(),
                    Nullable(I64Serde),
                    Duration::from_millis((2 * w.gap_ms + w.grace_ms + 1) as u64),
                    Duration::from_millis(1),
                    false,
                )
                .in_memory();
                b.add_store(ends.into_definition().0);
                name
            });
            (progress, ends)
        };
        let mut stores = vec![store.name.clone()];
        stores.extend(progress.clone());
        stores.extend(ends.clone());
        let stores: Vec<&str> = stores.iter().map(String::as_str).collect();
        let name = store.name.clone();
        let node = add_processor_node::<_, K, V, Windowed<K>, Change<VA>>(
            &s.builder,
            prefix,
            vec![s.node],
            &stores,
            move || SessionWindowAggregate {
                store: name.clone(),
                windows: w,
                combine: combine.clone(),
                merge: merge.clone(),
                emit,
                ends: ends.clone(),
                progress: EmitProgress::new(progress.clone()),
                observed: Default::default(),
            },
        );
        let key_serde: Arc<dyn Serde<Windowed<K>>> =
            Arc::new(SessionWindowedSerde::new(store.key_serde));
        // A session is final once no record can extend it: gap plus grace after its end.
        windowed_table(s, node, key_serde, store.value_serde, w.gap_ms + w.grace_ms)
    }

    /// Counts records per session.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = with_count_serde(materialized);
        self.aggregate(|| 0, |_, _, n| n + 1, |_, a, b| a + b, materialized)
    }
}

/// Declares the store keeping how far final results have been emitted, when `emit` is
/// [`EmitStrategy::OnWindowClose`]; returns its name.
fn declare_emit_progress(b: &mut TopologyBuilder, emit: EmitStrategy) -> Option<String> {
    if emit != EmitStrategy::OnWindowClose {
        return None;
    }
    let name = b.next_name("KSTREAM-EMIT-PROGRESS-STATE-STORE-");
    let store = Stores::key_value(name.clone(), StringSerde, I64Serde).in_memory();
    b.add_store(store.into_definition().0);
    Some(name)
}

fn with_count_serde<K>(materialized: Materialized<K, i64>) -> Materialized<K, i64> {
    if materialized.value_serde.is_none() {
        materialized.with_value_serde(I64Serde)
    } else {
        materialized
    }
}

/// The result of a windowed aggregation at `node`: keyed by windowed key, final once
/// stream time passes a window's end plus `grace_ms`; its store is a window or session
/// store, reached by name, not through the table.
fn windowed_table<K, V, VA>(
    stream: &KStream<K, V>,
    node: usize,
    key_serde: Arc<dyn Serde<Windowed<K>>>,
    value_serde: Arc<dyn Serde<VA>>,
    grace_ms: i64,
) -> KTable<Windowed<K>, VA> {
    KTable {
        builder: stream.builder.clone(),
        node,
        key_serde: Some(key_serde),
        value_serde: Some(value_serde),
        store: None,
        grace_ms: Some(grace_ms),
    }
}

/// A table at `stream`'s node with no serdes, returned after a reported build error so
/// DSL chains stay infallible; `build` fails.
fn broken_table<K, V, K2, V2>(stream: &KStream<K, V>) -> KTable<K2, V2> {
    KTable {
        builder: stream.builder.clone(),
        node: stream.node,
        key_serde: None,
        value_serde: None,
        store: None,
        grace_ms: None,
    }
}

/// Adds the aggregation node `make(store name)` under `stream`, with its results in a
/// key-value store declared by `materialized` (falling back to the given serdes); the
/// result is the materialized table.
fn aggregate_in_store<K: Data, VIn: Data, VA: Data, P>(
    stream: &KStream<K, VIn>,
    prefix: &str,
    materialized: Materialized<K, VA>,
    key_serde: Option<Arc<dyn Serde<K>>>,
    value_serde: Option<Arc<dyn Serde<VA>>>,
    make: impl Fn(String) -> P + Send + Sync + 'static,
) -> KTable<K, VA>
where
    P: crate::processor::Processor<K, VIn, K, Change<VA>>,
{
    let store = {
        let mut b = stream.builder.borrow_mut();
        materialized.declare_timestamped(&mut b, prefix, key_serde, value_serde)
    };
    let Some(store) = store else {
        return broken_table(stream);
    };
    let name = store.name.clone();
    let node = add_processor_node::<_, K, VIn, K, Change<VA>>(
        &stream.builder,
        prefix,
        vec![stream.node],
        &[&store.name],
        move || make(name.clone()),
    );
    KTable {
        builder: stream.builder.clone(),
        node,
        key_serde: Some(store.key_serde),
        value_serde: Some(store.value_serde),
        store: Some(store.name),
        grace_ms: None,
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
        let initializer: Initializer<VA> = Arc::new(initializer);
        let start = initializer.clone();
        let retract: Retract<K, V, VA> = Arc::new(move |k, row, aggregate: Option<VA>| {
            Some(subtractor(k, row, aggregate.unwrap_or_else(|| start())))
        });
        self.combine(
            "KTABLE-AGGREGATE-",
            aggregating(initializer, Arc::new(adder)),
            retract,
            materialized,
        )
    }

    fn combine<VA: Data>(
        &self,
        prefix: &str,
        add: Combine<K, V, VA>,
        retract: Retract<K, V, VA>,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let value_serde = same_type(&self.value_serde);
        aggregate_in_store(
            &self.stream,
            prefix,
            materialized,
            self.key_serde.clone(),
            value_serde,
            move |store| TableAggregate {
                store,
                add: add.clone(),
                retract: retract.clone(),
            },
        )
    }

    /// Counts rows per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.aggregate(
            || 0,
            |_, _, n| n + 1,
            |_, _, n| n - 1,
            with_count_serde(materialized),
        )
    }

    /// Combines rows per key with `adder(aggregate, row)`, and removes old rows with
    /// `subtractor(aggregate, row)`; a key's first row is its first aggregate.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let retract: Retract<K, V, V> =
            Arc::new(move |_, row, aggregate: Option<V>| aggregate.map(|a| subtractor(a, row)));
        self.combine(
            "KTABLE-REDUCE-",
            reducing(Arc::new(adder)),
            retract,
            materialized,
        )
    }
}
