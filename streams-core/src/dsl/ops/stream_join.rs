//! Windowed stream-stream joins: each side keeps its recent records in a window store and
//! looks up the other side's records within the join window. Both sides of one join share
//! the stream time the join has observed; left and outer joins hold unmatched records in
//! a store ordered by timestamp until their window closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext, TaskId};
use crate::record::Record;
use crate::serde::Serde;

/// Joins a record of this side with one of the other side, or with nothing (`None`).
pub(crate) type SideJoiner<VThis, VOther, VR> =
    Arc<dyn Fn(&VThis, Option<&VOther>) -> VR + Send + Sync>;

/// Joins a left and a right record, either of which may be missing in left and outer joins.
pub(crate) type PairJoiner<VL, VR, VO> = Arc<dyn Fn(Option<&VL>, Option<&VR>) -> VO + Send + Sync>;

/// The stream time one join has observed: the largest timestamp either of its sides has
/// processed in a task. Records filtered out upstream, or other sources of the task, do
/// not move it. Starts afresh when a task's join is created (as Kafka Streams' shared
/// time tracker does).
#[derive(Clone, Default)]
pub(crate) struct JoinTime {
    tasks: Arc<Mutex<HashMap<TaskId, TaskJoinTime>>>,
}

/// The join's time in one task, and which of its sides are open there.
#[derive(Clone, Copy)]
struct TaskJoinTime {
    time: i64,
    /// Open sides: left, right.
    open: [bool; 2],
    /// No unmatched record earlier than this is held (`None`: not known since the task
    /// started). Lets the emission of closed windows skip the store until something can
    /// have closed, and start its scan there rather than at the deletions of earlier
    /// emissions (as Kafka Streams' shared time tracker keeps the minimum time).
    held_from: Option<i64>,
}

impl Default for TaskJoinTime {
    fn default() -> Self {
        TaskJoinTime {
            time: i64::MIN,
            open: [false; 2],
            held_from: None,
        }
    }
}

impl JoinTime {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, TaskJoinTime>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A side (`left` or right) of the join opens in `task`. A side opening while it is
    /// still open belongs to a new instance of the task, whose predecessor was dropped
    /// without closing: the time starts afresh.
    fn attach(&self, task: TaskId, left: bool) {
        let mut tasks = self.lock();
        let entry = tasks.entry(task).or_default();
        let side = usize::from(!left);
        if entry.open[side] {
            *entry = TaskJoinTime::default();
        }
        entry.open[side] = true;
    }

    /// A side of the join closes in `task`; the time is forgotten with the last side.
    fn detach(&self, task: TaskId, left: bool) {
        let mut tasks = self.lock();
        if let Some(entry) = tasks.get_mut(&task) {
            entry.open[usize::from(!left)] = false;
            if entry.open == [false; 2] {
                tasks.remove(&task);
            }
        }
    }

    /// Observes `ts` in `task`; returns the join's stream time after it.
    /// Notes that an unmatched record at `ts` is held.
    fn held(&self, task: TaskId, ts: i64) {
        let mut tasks = self.lock();
        let entry = tasks.entry(task).or_default();
        entry.held_from = entry.held_from.map(|from| from.min(ts));
    }

    /// No unmatched record earlier than this is held, if known.
    fn held_from(&self, task: TaskId) -> Option<i64> {
        self.lock().get(&task).and_then(|entry| entry.held_from)
    }

    fn set_held_from(&self, task: TaskId, from: i64) {
        self.lock().entry(task).or_default().held_from = Some(from);
    }

    fn advance(&self, task: TaskId, ts: i64) -> i64 {
        let mut tasks = self.lock();
        let entry = tasks.entry(task).or_default();
        entry.time = entry.time.max(ts);
        entry.time
    }
}

/// Unmatched records of a left or outer join, held until their join window closes so
/// that a record matched later is never emitted alone. Kept in a logged key-value store
/// shared by both sides, keyed `[timestamp][side: 1 left, 0 right][key]` as Kafka
/// Streams keys its outer-join store, so a scan meets them by timestamp, the right side
/// first at equal times; the value lists the held values of that key, side and time in
/// arrival order (`[u32 length][value]` each).
pub(crate) struct Unmatched<K, VThis, VOther, VR> {
    pub store: String,
    /// Whether this is the left side.
    pub left: bool,
    /// Whether this side's unmatched records are emitted (left of a left join, both of
    /// an outer join).
    pub track_this: bool,
    pub key_serde: Arc<dyn Serde<K>>,
    pub this_serde: Arc<dyn Serde<VThis>>,
    pub other_serde: Arc<dyn Serde<VOther>>,
    /// Emits an other-side record alone.
    pub other_joiner: SideJoiner<VOther, VThis, VR>,
}

fn serde_error(what: &str, e: crate::serde::SerdeError) -> ProcessError {
    ProcessError::user(format!("stream-stream join {what}: {e}"))
}

/// The store key of held records of one key (serialized), side and timestamp.
fn held_key(ts: i64, left: bool, key: &[u8]) -> Vec<u8> {
    let mut held = ts.to_be_bytes().to_vec();
    held.push(u8::from(left));
    held.extend_from_slice(key);
    held
}

/// Splits a held value list into its values.
fn held_values(mut list: &[u8]) -> Vec<&[u8]> {
    let mut values = Vec::new();
    while let Some(len) = list.get(..4) {
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(value) = list.get(4..4 + len) else {
            break;
        };
        values.push(value);
        list = &list[4 + len..];
    }
    values
}

impl<K: Data, VThis: Data, VOther: Data, VR: Data> Unmatched<K, VThis, VOther, VR> {
    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.key_serde
            .serialize(&self.store, key)
            .map_err(|e| serde_error("key", e))?
            .ok_or_else(|| ProcessError::user("stream-stream join keys must not serialize to null"))
    }

    /// Holds an unmatched record of this side until its window closes.
    fn hold(
        &self,
        ctx: &ProcessorContext<'_, K, VR>,
        record: &Record<K, VThis>,
        time: &JoinTime,
    ) -> Result<(), ProcessError> {
        time.held(ctx.task_id(), record.timestamp);
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        let key = held_key(record.timestamp, self.left, &self.key_bytes(&record.key)?);
        let value = self
            .this_serde
            .serialize(&self.store, &record.value)
            .map_err(|e| serde_error("value", e))?
            .unwrap_or_default();
        let mut list = store.get(&key)?.unwrap_or_default();
        list.extend_from_slice(&(value.len() as u32).to_be_bytes());
        list.extend_from_slice(&value);
        store.put(&key, &list)
    }

    /// Forgets held other-side records of `key` at `other_ts`: they matched.
    fn matched(
        &self,
        ctx: &ProcessorContext<'_, K, VR>,
        other_ts: i64,
        key: &K,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        let held = held_key(other_ts, !self.left, &self.key_bytes(key)?);
        if store.get(&held)?.is_some() {
            store.delete(&held)?;
        }
        Ok(())
    }

    /// Emits (alone) and forgets every held record whose window has closed at stream
    /// time `now`: a record of this side once `ts + this_lookback + grace < now`, one of
    /// the other side once `ts + other_lookback + grace < now`. They go out in store
    /// order: by timestamp, the right side first, then by key.
    fn emit_closed(
        &self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        this_joiner: &SideJoiner<VThis, VOther, VR>,
        now: i64,
        (this_lookback, other_lookback, grace): (i64, i64, i64),
        time: &JoinTime,
    ) -> Result<(), ProcessError> {
        let bound = now
            .saturating_sub(grace)
            .saturating_sub(this_lookback.min(other_lookback));
        if bound <= 0 {
            return Ok(());
        }
        let task = ctx.task_id();
        let from = time.held_from(task);
        if from.is_some_and(|from| from >= bound) {
            return Ok(());
        }
        let from = from.map(|from| from.max(0).to_be_bytes().to_vec());
        // Records at or after `bound` stay; so do earlier ones whose window is longer.
        let mut still_held = bound;
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        let expiring = store.range(from.as_ref(), Some(&bound.to_be_bytes().to_vec()))?;
        time.set_held_from(task, bound);
        for (held, list) in expiring {
            let (Some(ts), Some(&side), Some(key)) = (held.get(..8), held.get(8), held.get(9..))
            else {
                continue;
            };
            let ts = i64::from_be_bytes(ts.try_into().expect("8 bytes"));
            let this_side = (side == 1) == self.left;
            let lookback = if this_side {
                this_lookback
            } else {
                other_lookback
            };
            if ts.saturating_add(lookback).saturating_add(grace) >= now {
                still_held = still_held.min(ts);
                time.set_held_from(task, still_held);
                continue;
            }
            store.delete(&held)?;
            let key = self
                .key_serde
                .deserialize(&self.store, Some(key))
                .map_err(|e| serde_error("key", e))?;
            for bytes in held_values(&list) {
                let joined = if this_side {
                    let v = self
                        .this_serde
                        .deserialize(&self.store, Some(bytes))
                        .map_err(|e| serde_error("value", e))?;
                    this_joiner(&v, None)
                } else {
                    let v = self
                        .other_serde
                        .deserialize(&self.store, Some(bytes))
                        .map_err(|e| serde_error("value", e))?;
                    (self.other_joiner)(&v, None)
                };
                ctx.forward(Record::new(key.clone(), joined, ts))?;
            }
        }
        Ok(())
    }
}

/// One side of a stream-stream join.
pub(crate) struct StreamJoinSide<K, VThis, VOther, VR> {
    pub this_store: String,
    pub other_store: String,
    /// Other-side records may be this much earlier...
    pub before_ms: i64,
    /// ...or this much later than this side's record.
    pub after_ms: i64,
    pub grace_ms: i64,
    pub joiner: SideJoiner<VThis, VOther, VR>,
    /// Whether this is the left side.
    pub left: bool,
    /// The stream time of this join, shared with its other side.
    pub time: JoinTime,
    /// Left and outer joins: records without a match, emitted alone once their window
    /// closes.
    pub unmatched: Option<Unmatched<K, VThis, VOther, VR>>,
}

impl<K: Data, VThis: Data, VOther: Data, VR: Data> Processor<K, VThis, K, VR>
    for StreamJoinSide<K, VThis, VOther, VR>
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VR>) -> Result<(), ProcessError> {
        self.time.attach(ctx.task_id(), self.left);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, VThis>,
    ) -> Result<(), ProcessError> {
        let ts = record.timestamp;
        let now = self.time.advance(ctx.task_id(), ts);
        // Late records are kept: the window store drops what is past its retention, and
        // a late record still joins whatever the other side's store retains.
        ctx.window_store::<K, VThis>(&self.this_store)?
            .put(&record.key, &record.value, ts)?;
        if ts == now {
            if let Some(unmatched) = &self.unmatched {
                // Records whose window this one closes go out before its join results.
                let lookbacks = (self.after_ms, self.before_ms, self.grace_ms);
                unmatched.emit_closed(ctx, &self.joiner, now, lookbacks, &self.time)?;
            }
        }
        let matches = ctx
            .window_store::<K, VOther>(&self.other_store)?
            .fetch_time_range(
                &record.key,
                ts.saturating_sub(self.before_ms).max(0),
                ts.saturating_add(self.after_ms).max(0),
            )?;
        if matches.is_empty() {
            if let Some(unmatched) = self.unmatched.as_ref().filter(|u| u.track_this) {
                if ts.saturating_add(self.after_ms) < now {
                    // No later other-side record can fall in its window any more.
                    let alone = (self.joiner)(&record.value, None);
                    ctx.forward(record.with_value(alone))?;
                } else {
                    unmatched.hold(ctx, &record, &self.time)?;
                }
            }
            return Ok(());
        }
        for (other_ts, other_value) in matches {
            if let Some(unmatched) = &self.unmatched {
                unmatched.matched(ctx, other_ts, &record.key)?;
            }
            let joined = (self.joiner)(&record.value, Some(&other_value));
            ctx.forward(
                record
                    .clone()
                    .with_value(joined)
                    .with_timestamp(ts.max(other_ts)),
            )?;
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_, K, VR>) {
        self.time.detach(ctx.task_id(), self.left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: TaskId = TaskId {
        subtopology: 0,
        partition: 1,
    };
    const OTHER_TASK: TaskId = TaskId {
        subtopology: 0,
        partition: 2,
    };

    #[test]
    fn both_sides_of_a_task_share_one_time_and_tasks_are_apart() {
        let time = JoinTime::default();
        time.attach(TASK, true);
        time.attach(TASK, false);
        assert_eq!(time.advance(TASK, 10), 10);
        assert_eq!(time.advance(TASK, 5), 10);
        assert_eq!(time.advance(OTHER_TASK, 3), 3);
        time.detach(TASK, true);
        assert_eq!(time.advance(TASK, 7), 10, "the right side is still open");
        time.detach(TASK, false);
        assert_eq!(
            time.advance(TASK, 7),
            7,
            "closed: the next instance starts afresh"
        );
    }

    #[test]
    fn a_task_instance_dropped_without_closing_leaves_no_time_behind() {
        let time = JoinTime::default();
        time.attach(TASK, true);
        time.attach(TASK, false);
        time.advance(TASK, 100);
        // The next instance of the task opens while the old one never closed.
        time.attach(TASK, true);
        time.attach(TASK, false);
        assert_eq!(time.advance(TASK, 40), 40);
    }

    #[test]
    fn held_values_split_in_arrival_order() {
        let mut list = Vec::new();
        for value in [&b"ab"[..], b"", b"c"] {
            list.extend_from_slice(&(value.len() as u32).to_be_bytes());
            list.extend_from_slice(value);
        }
        assert_eq!(held_values(&list), [&b"ab"[..], b"", b"c"]);
        // Right before left at equal times, then by key.
        assert!(held_key(5, false, b"z") < held_key(5, true, b"a"));
        assert!(held_key(5, true, b"z") < held_key(6, false, b"a"));
    }

    #[test]
    fn the_held_lower_bound_is_unknown_until_a_scan_sets_it_then_follows_holds() {
        let time = JoinTime::default();
        time.attach(TASK, true);
        time.held(TASK, 5);
        assert_eq!(
            time.held_from(TASK),
            None,
            "unknown after the task starts: its store may hold older records"
        );
        time.set_held_from(TASK, 20);
        time.held(TASK, 30);
        assert_eq!(time.held_from(TASK), Some(20));
        time.held(TASK, 12);
        assert_eq!(time.held_from(TASK), Some(12));
        assert_eq!(time.held_from(OTHER_TASK), None);
    }
}
