//! `KTable`: a changelog stream seen as a table of latest values per key, and its
//! operators (filter, map_values, to_stream, joins, grouping).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::change::{Change, ChangeSerde};
use super::kgrouped::KGroupedTable;
use super::kstream::KStream;
use super::materialized::{Grouped, Materialized};
use super::ops::aggregate::{RowSelector, TableRegroup};
use super::ops::foreign_key;
use super::ops::join::{RowJoiner, TableJoinSide};
use super::ops::suppress::{BufferedSerde, EmitTime, Suppress};
use super::ops::table::{
    RowMapper, RowPredicate, TableFilter, TableMapValues, TableMaterialize, TableToStream,
};
use super::ops::{add_merge_node, add_processor_node};
use super::options::Repartitioned;
use crate::graph::Data;
use crate::serde::{I64Serde, Nullable, Serde};
use crate::state::{StoreBuilder, Stores, Windowed};
use crate::topology::{TopologyBuilder, TopologyError};
use std::time::Duration;

impl<K: Data, V: Data> KTable<Windowed<K>, V> {
    /// Holds back a windowed aggregation's updates and emits each window's final
    /// result once, when the window closes (stream time passes its end plus the grace
    /// period; for sessions, plus the inactivity gap). Deleted windows (sessions merged
    /// into others) are not emitted. The buffer is a change-logged in-memory store, so
    /// held-back results survive restarts.
    pub fn suppress_until_window_closes(&self) -> KTable<Windowed<K>, V> {
        let Some(grace) = self.grace_ms else {
            self.builder.borrow_mut().report(TopologyError::Invalid(
                "suppress_until_window_closes applies to the result of a windowed aggregation"
                    .into(),
            ));
            return self.clone();
        };
        self.suppress_with(
            Arc::new(move |key: &Windowed<K>, _, _| key.window.end.saturating_add(grace)),
            true,
        )
    }
}

/// A table: the latest value per key of a changelog. Updates flow downstream as
/// [`Change`]s (new and old value), so aggregations and joins can undo what an old value
/// contributed.
///
/// A table is *materialized* when a store holds its current values (tables read from
/// topics and aggregation results are); joins materialize the tables they read when needed.
pub struct KTable<K, V> {
    pub(crate) builder: Rc<RefCell<TopologyBuilder>>,
    pub(crate) node: usize,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) store: Option<String>,
    /// For windowed tables, the grace period of their windows: a window is final once
    /// stream time passes its end plus this.
    pub(crate) grace_ms: Option<i64>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            builder: self.builder.clone(),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            store: self.store.clone(),
            grace_ms: self.grace_ms,
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The name of the store holding this table's current values, if it has one. Pass
    /// it to processors (`process_with_stores`) or query it.
    pub fn store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    fn derived<V2: Data>(
        &self,
        node: usize,
        value_serde: Option<Arc<dyn Serde<V2>>>,
    ) -> KTable<K, V2> {
        KTable {
            builder: self.builder.clone(),
            node,
            key_serde: self.key_serde.clone(),
            value_serde,
            store: None,
            grace_ms: self.grace_ms,
        }
    }

    /// Keeps rows matching `predicate`; a row that stops matching is deleted downstream.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        let predicate: RowPredicate<K, V> = Arc::new(predicate);
        let node = add_processor_node::<_, K, Change<V>, K, Change<V>>(
            &self.builder,
            "KTABLE-FILTER-",
            vec![self.node],
            &[],
            move || TableFilter {
                predicate: predicate.clone(),
            },
        );
        self.derived(node, self.value_serde.clone())
    }

    /// Keeps rows not matching `predicate`.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Maps every value.
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        self.map_values_with_key(move |_, v| mapper(v))
    }

    /// Maps every value, seeing the key too.
    pub fn map_values_with_key<V2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let mapper: RowMapper<K, V, V2> = Arc::new(mapper);
        let node = add_processor_node::<_, K, Change<V>, K, Change<V2>>(
            &self.builder,
            "KTABLE-MAPVALUES-",
            vec![self.node],
            &[],
            move || TableMapValues {
                mapper: mapper.clone(),
            },
        );
        self.derived(node, None)
    }

    /// Keeps this table's current values in a store (named by `materialized`), so that it
    /// can be joined, read by processors, or queried.
    pub fn materialize(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let store = {
            let mut b = self.builder.borrow_mut();
            materialized.declare(
                &mut b,
                "KTABLE-",
                self.key_serde.clone(),
                self.value_serde.clone(),
            )
        };
        let Some(store) = store else {
            return self.clone();
        };
        let name = store.name.clone();
        let node = add_processor_node::<_, K, Change<V>, K, Change<V>>(
            &self.builder,
            "KTABLE-MATERIALIZE-",
            vec![self.node],
            &[&store.name],
            move || TableMaterialize {
                store: name.clone(),
            },
        );
        KTable {
            store: Some(store.name),
            grace_ms: None,
            ..self.derived(node, Some(store.value_serde))
        }
    }

    /// This table, materialized if it is not yet.
    pub(crate) fn ensure_materialized(&self) -> KTable<K, V> {
        if self.store.is_some() {
            self.clone()
        } else {
            self.materialize(Materialized::new())
        }
    }

    /// The stream of updates: each change's new value, `None` for deletes (write it with
    /// a [`Nullable`] serde to keep tombstones).
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let node = add_processor_node::<_, K, Change<V>, K, Option<V>>(
            &self.builder,
            "KTABLE-TOSTREAM-",
            vec![self.node],
            &[],
            || TableToStream,
        );
        let value_serde: Option<Arc<dyn Serde<Option<V>>>> = self
            .value_serde
            .clone()
            .map(|s| Arc::new(Nullable(s)) as Arc<dyn Serde<Option<V>>>);
        KStream::new(
            self.builder.clone(),
            node,
            self.key_serde.clone(),
            value_serde,
        )
    }

    /// The store of the timestamps of this table's rows' latest changes, which joins
    /// keep beside the table's own store `store` (named after it, shared by every join
    /// of the table).
    pub(crate) fn row_times_store(&self, store: &str, key_serde: Arc<dyn Serde<K>>) -> String {
        let name = format!("{store}-ROW-TIMES");
        let mut b = self.builder.borrow_mut();
        if !b.has_store(&name) {
            b.add_store(
                Stores::key_value(name.clone(), key_serde, I64Serde)
                    .into_definition()
                    .0,
            );
        }
        name
    }

    fn join_with<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        prefix: &str,
        joiner: RowJoiner<V, VO, VR>,
    ) -> KTable<K, VR> {
        let left = self.ensure_materialized();
        let right = other.ensure_materialized();
        let (Some(left_store), Some(right_store), Some(key_serde)) = (
            left.store.clone(),
            right.store.clone(),
            left.key_serde.clone(),
        ) else {
            // A missing serde was reported; keep the chain going for build() to fail.
            return self.derived(self.node, None);
        };
        let left_times = left.row_times_store(&left_store, key_serde.clone());
        let right_times = right.row_times_store(&right_store, key_serde);
        let j = joiner.clone();
        let (store, this_times, other_times) =
            (right_store.clone(), left_times.clone(), right_times.clone());
        let left_node = add_processor_node::<_, K, Change<V>, K, Change<VR>>(
            &self.builder,
            &format!("{prefix}THIS-"),
            vec![left.node],
            &[&right_store, &left_times, &right_times],
            move || TableJoinSide {
                other_store: store.clone(),
                this_times: this_times.clone(),
                other_times: other_times.clone(),
                joiner: j.clone(),
            },
        );
        let store = left_store.clone();
        let (this_times, other_times) = (right_times.clone(), left_times.clone());
        let right_node = add_processor_node::<_, K, Change<VO>, K, Change<VR>>(
            &self.builder,
            &format!("{prefix}OTHER-"),
            vec![right.node],
            &[&left_store, &left_times, &right_times],
            move || TableJoinSide {
                other_store: store.clone(),
                this_times: this_times.clone(),
                other_times: other_times.clone(),
                joiner: {
                    let joiner = joiner.clone();
                    Arc::new(move |right: Option<&VO>, left: Option<&V>| joiner(left, right))
                        as RowJoiner<VO, V, VR>
                },
            },
        );
        let merged = add_merge_node(
            &self.builder,
            &format!("{prefix}MERGE-"),
            vec![left_node, right_node],
        );
        self.derived(merged, None)
    }

    /// Inner join with `other` on the key: a row exists while both sides have one.
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(
            other,
            "KTABLE-JOIN-",
            Arc::new(move |l: Option<&V>, r: Option<&VO>| match (l, r) {
                (Some(l), Some(r)) => Some(joiner(l, r)),
                _ => None,
            }),
        )
    }

    /// Left join: a row exists while this side has one; `other`'s value may be missing.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(
            other,
            "KTABLE-LEFTJOIN-",
            Arc::new(move |l: Option<&V>, r: Option<&VO>| l.map(|l| joiner(l, r))),
        )
    }

    /// Outer join: a row exists while either side has one.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(
            other,
            "KTABLE-OUTERJOIN-",
            Arc::new(move |l: Option<&V>, r: Option<&VO>| {
                (l.is_some() || r.is_some()).then(|| joiner(l, r))
            }),
        )
    }

    /// Inner join on a foreign key (Kafka's KIP-213): each row of this table joins the
    /// row of `other` whose key `foreign_key` extracts from its value. A result row,
    /// keyed like this table, exists while both rows do; it follows updates on either
    /// side, including a row of this table switching to another foreign key.
    ///
    /// The tables need not be co-partitioned: subscriptions travel to `other`'s tasks
    /// through `<application.id>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`
    /// (partitioned by foreign key) and answers come back through
    /// `<application.id>-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic`, to the partition
    /// the row of this table was read from; answers for a value this row no longer has
    /// are dropped, so no stale result is emitted. As in Kafka Streams, a row whose
    /// update or delete leaves it without a result emits a tombstone even when it had no
    /// result before (the join cannot know), and a deleted row's result is deleted when
    /// its answer comes back. Both tables need key and value serdes (read from topics,
    /// or materialized with serdes); the foreign key is serialized with `other`'s key serde.
    ///
    /// The subscription topic is created with as many partitions as `other`'s tasks and
    /// the response topic with as many as this table's, so each is co-partitioned with
    /// the table it is read with.
    pub fn join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        foreign_key::join(
            self,
            other,
            Arc::new(foreign_key),
            Arc::new(move |v: &V, o: Option<&VO>| o.map(|o| joiner(v, o))),
            false,
        )
    }

    /// Left join on a foreign key: like [`join_on_foreign_key`](Self::join_on_foreign_key),
    /// but a result row exists while this table's row does; the joiner sees `None` while
    /// `other` has no row for the foreign key.
    pub fn left_join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        foreign_key::join(
            self,
            other,
            Arc::new(foreign_key),
            Arc::new(move |v: &V, o: Option<&VO>| Some(joiner(v, o))),
            true,
        )
    }

    /// Holds back each key's updates for `limit` (of stream time) after its first
    /// held-back update, then emits only the latest one.
    pub fn suppress_until_time_limit(&self, limit: Duration) -> KTable<K, V> {
        let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        self.suppress_with(
            Arc::new(move |_: &K, timestamp, first: Option<i64>| {
                first.unwrap_or_else(|| timestamp.saturating_add(limit))
            }),
            false,
        )
    }

    /// Suppresses with `emit_time`; `final_results` drops deletions instead of emitting them.
    fn suppress_with(&self, emit_time: EmitTime<K>, final_results: bool) -> KTable<K, V> {
        let (Some(key_serde), Some(value_serde)) =
            (self.key_serde.clone(), self.value_serde.clone())
        else {
            self.builder
                .borrow_mut()
                .report(TopologyError::MissingSerde {
                    node: "KTABLE-SUPPRESS (materialize the table with serdes first)".into(),
                    what: if self.key_serde.is_none() {
                        "key"
                    } else {
                        "value"
                    },
                });
            return self.clone();
        };
        let store = {
            let mut b = self.builder.borrow_mut();
            let name = b.next_name("KTABLE-SUPPRESS-STATE-STORE-");
            let buffer =
                Stores::key_value(name.clone(), key_serde, BufferedSerde::new(value_serde))
                    .in_memory();
            b.add_store(buffer.into_definition().0);
            name
        };
        let name = store.clone();
        let node = add_processor_node::<_, K, Change<V>, K, Change<V>>(
            &self.builder,
            "KTABLE-SUPPRESS-",
            vec![self.node],
            &[&store],
            move || {
                let suppress = Suppress::new(name.clone(), emit_time.clone());
                if final_results {
                    suppress.final_results()
                } else {
                    suppress
                }
            },
        );
        self.derived(node, self.value_serde.clone())
    }

    /// Groups rows by a new key (and value) for a table aggregation; rows are
    /// repartitioned by the new key through an internal topic. An update whose old and
    /// new rows map to the same key travels as one record, so the aggregation emits one
    /// result for it (the grouping keys are compared with `==`).
    pub fn group_by<K2: Data + PartialEq, V2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<K2, V2>,
    ) -> KGroupedTable<K2, V2> {
        let selector: RowSelector<K, V, K2, V2> = Arc::new(selector);
        let node = add_processor_node::<_, K, Change<V>, K2, Change<V2>>(
            &self.builder,
            "KTABLE-SELECT-",
            vec![self.node],
            &[],
            move || TableRegroup {
                selector: selector.clone(),
            },
        );
        let value_serde = grouped.value_serde.clone();
        let change_serde: Option<Arc<dyn Serde<Change<V2>>>> = value_serde
            .clone()
            .map(|s| Arc::new(ChangeSerde::new(s)) as Arc<dyn Serde<Change<V2>>>);
        if grouped.key_serde.is_none() || change_serde.is_none() {
            let what = if grouped.key_serde.is_none() {
                "key"
            } else {
                "value"
            };
            self.builder
                .borrow_mut()
                .report(TopologyError::MissingSerde {
                    node: "KTABLE-SELECT (group_by: pass Grouped::with(key serde, value serde))"
                        .into(),
                    what,
                });
        }
        let regrouped: KStream<K2, Change<V2>> = KStream::new(
            self.builder.clone(),
            node,
            grouped.key_serde.clone(),
            change_serde,
        );
        let mut repartitioned = Repartitioned::new();
        if let Some(name) = &grouped.name {
            repartitioned = repartitioned.with_name(name.clone());
        }
        KGroupedTable {
            stream: regrouped.repartition(repartitioned),
            key_serde: grouped.key_serde,
            value_serde,
        }
    }
}
