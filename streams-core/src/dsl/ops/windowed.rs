//! Windowed aggregations: fixed time windows (tumbling, hopping), session windows and
//! sliding windows. Each processor closes windows at the stream time it has observed
//! itself (the largest timestamp of the records that reached it), drops and counts late
//! records, and emits either every update or, with [`EmitStrategy::OnWindowClose`], each
//! window's final result once it closes.

use std::sync::Arc;

use super::aggregate::Combine;
use crate::dsl::change::Change;
use crate::dsl::windows::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows};
use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::{Headers, Record};
use crate::serde::{Serde, SerdeError};
use crate::state::Windowed;

fn drop_late<K, V>(ctx: &ProcessorContext<'_, K, V>, record_time: i64, observed: i64) {
    tracing::debug!(
        node = ctx.node_name(),
        record_time,
        observed_stream_time = observed,
        "dropping a record for a closed window"
    );
    crate::runtime::metrics::record_dropped_late(&ctx.task_id(), ctx.node_name());
}

/// The stream time one processor has observed: the largest timestamp among the records
/// that reached it. Records filtered out upstream, or flowing through other branches of
/// the task, do not move it. Like Kafka Streams, it starts over when the task does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObservedStreamTime(i64);

impl Default for ObservedStreamTime {
    fn default() -> Self {
        ObservedStreamTime(i64::MIN)
    }
}

impl ObservedStreamTime {
    /// Takes `timestamp` into account and returns the observed stream time.
    pub fn observe(&mut self, timestamp: i64) -> i64 {
        self.0 = self.0.max(timestamp);
        self.0
    }
}

/// Forwards one windowed result. Every update and every final result of the windowed
/// aggregations goes through here.
fn forward_result<K: Data, VA: Data>(
    ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    key: Windowed<K>,
    change: Change<VA>,
    timestamp: i64,
    headers: &Headers,
) -> Result<(), ProcessError> {
    ctx.forward(Record {
        key,
        value: change,
        timestamp,
        headers: headers.clone(),
    })
}

/// Where the final results of a window store have been emitted up to: the close time of
/// the last emission (`None` before the first), kept in a change-logged store so a
/// restarted task does not emit them again.
pub(crate) struct EmitProgress {
    /// The key-value store holding the close time (one entry), when emitting on close.
    pub store: Option<String>,
    last_close: Option<i64>,
    loaded: bool,
}

/// The single key under which [`EmitProgress`] keeps its close time.
const EMIT_PROGRESS_KEY: &str = "last-emitted-close-time";

impl EmitProgress {
    /// Progress kept in `store`; `None` when results are emitted on every update.
    pub fn new(store: Option<String>) -> Self {
        EmitProgress {
            store,
            last_close: None,
            loaded: false,
        }
    }

    fn last<K, V>(
        &mut self,
        ctx: &ProcessorContext<'_, K, V>,
    ) -> Result<Option<i64>, ProcessError> {
        if !self.loaded {
            if let Some(store) = &self.store {
                let kv = ctx.key_value_store::<String, i64>(store)?;
                self.last_close = kv.get(&EMIT_PROGRESS_KEY.to_string())?;
            }
            self.loaded = true;
        }
        Ok(self.last_close)
    }

    fn set<K, V>(
        &mut self,
        ctx: &ProcessorContext<'_, K, V>,
        close: i64,
    ) -> Result<(), ProcessError> {
        if let Some(store) = &self.store {
            let kv = ctx.key_value_store::<String, i64>(store)?;
            kv.put(&EMIT_PROGRESS_KEY.to_string(), &close)?;
        }
        self.last_close = Some(close);
        Ok(())
    }
}

/// Emits the final results of the windows of `store` that closed since the last emission:
/// windows starting within `starts(last close, close)` (inclusive bounds), each with
/// the timestamp `timestamp(window, value)`.
#[allow(clippy::too_many_arguments)]
fn emit_closed_windows<K: Data, VA: Data>(
    ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    progress: &mut EmitProgress,
    store: &str,
    close: i64,
    starts: impl Fn(Option<i64>, i64) -> (i64, i64),
    timestamp: impl Fn(
        &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        &Windowed<K>,
    ) -> Result<i64, ProcessError>,
    headers: &Headers,
) -> Result<(), ProcessError> {
    let last = progress.last(ctx)?;
    if last.is_some_and(|last| last >= close) {
        return Ok(());
    }
    let (from, to) = starts(last, close);
    if to < 0 || to < from {
        // No window has closed since the last emission.
        return Ok(());
    }
    let closed = ctx
        .window_store::<K, VA>(store)?
        .fetch_all(from.max(0), to)?;
    for (key, value) in closed {
        let ts = timestamp(ctx, &key)?;
        forward_result(ctx, key, Change::new(Some(value), None), ts, headers)?;
    }
    progress.set(ctx, close)
}

/// Aggregates records into every time window they fall in. Results carry the largest
/// timestamp among the window's records, kept per window in the `timestamps` store.
pub(crate) struct TimeWindowAggregate<K, V, VA> {
    pub store: String,
    pub timestamps: String,
    pub windows: TimeWindows,
    pub combine: Combine<K, V, VA>,
    pub emit: EmitStrategy,
    pub progress: EmitProgress,
    pub observed: ObservedStreamTime,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for TimeWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let observed = self.observed.observe(record.timestamp);
        let close = observed.saturating_sub(self.windows.grace_ms);
        if self.emit == EmitStrategy::OnWindowClose {
            // Windows ending at or before the close time are final: those starting up
            // to `close - size`, after the ones an earlier emission covered. Emitted
            // before the record's own writes, which may expire them from the store.
            let size = self.windows.size_ms;
            let timestamps = self.timestamps.clone();
            emit_closed_windows(
                ctx,
                &mut self.progress,
                &self.store,
                close,
                |last, close| {
                    let from = last.map_or(0, |last| (last - size).max(0) + 1);
                    (from, close - size)
                },
                |ctx, key| {
                    let stored = ctx
                        .window_store::<K, i64>(&timestamps)?
                        .fetch(&key.key, key.window.start)?;
                    Ok(stored.unwrap_or(key.window.end - 1))
                },
                &record.headers,
            )?;
        }
        let store = ctx.window_store::<K, VA>(&self.store)?;
        let timestamps = ctx.window_store::<K, i64>(&self.timestamps)?;
        let mut updates = Vec::new();
        for start in self.windows.windows_for(record.timestamp) {
            let end = start + self.windows.size_ms;
            if end <= close {
                drop_late(ctx, record.timestamp, observed);
                continue;
            }
            let old = store.fetch(&record.key, start)?;
            let new = (self.combine)(&record.key, record.value.clone(), old.clone());
            store.put(&record.key, &new, start)?;
            let latest = match (&old, timestamps.fetch(&record.key, start)?) {
                (Some(_), Some(stored)) => stored.max(record.timestamp),
                _ => record.timestamp,
            };
            timestamps.put(&record.key, &latest, start)?;
            updates.push((
                Windowed::new(record.key.clone(), start, end),
                new,
                old,
                latest,
            ));
        }
        if self.emit == EmitStrategy::OnWindowUpdate {
            for (key, new, old, latest) in updates {
                let change = Change::new(Some(new), old);
                forward_result(ctx, key, change, latest, &record.headers)?;
            }
        }
        Ok(())
    }
}

/// Folds `aggregate` (`None`: no session merged yet) with a merged session's aggregate.
pub(crate) type SessionMerge<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;

/// Aggregates records into sessions, merging the sessions a record bridges.
pub(crate) struct SessionWindowAggregate<K, V, VA> {
    pub store: String,
    pub windows: SessionWindows,
    pub combine: Combine<K, V, VA>,
    pub merge: SessionMerge<K, VA>,
    pub emit: EmitStrategy,
    /// With [`EmitStrategy::OnWindowClose`]: a window store indexing the live sessions
    /// of every key by their end (window start = session end, value = session start),
    /// to find the sessions that have closed.
    pub ends: Option<String>,
    pub progress: EmitProgress,
    pub observed: ObservedStreamTime,
}

impl<K: Data, V: Data, VA: Data> SessionWindowAggregate<K, V, VA> {
    /// Records that `session` exists (`Some`) or is gone (`None`) in the index of ends.
    fn index(
        &self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        session: &Windowed<K>,
        exists: bool,
    ) -> Result<(), ProcessError> {
        if let Some(ends) = &self.ends {
            let start = exists.then_some(session.window.start);
            ctx.window_store::<K, Option<i64>>(ends)?.put(
                &session.key,
                &start,
                session.window.end,
            )?;
        }
        Ok(())
    }

    /// Emits the sessions that ended before `close` and after the last emission, by end.
    fn emit_closed(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        close: i64,
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        let Some(ends) = self.ends.clone() else {
            return Ok(());
        };
        let last = self.progress.last(ctx)?;
        if last.is_some_and(|last| last >= close) {
            return Ok(());
        }
        // Session ends are inclusive: ends within [last close, close - 1] are final.
        let (from, to) = (last.unwrap_or(0).max(0), close - 1);
        if to < from {
            return Ok(());
        }
        let closed = ctx
            .window_store::<K, Option<i64>>(&ends)?
            .fetch_all(from, to)?;
        for (at_end, start) in closed {
            let Some(start) = start else { continue };
            let end = at_end.window.start;
            let store = ctx.session_store::<K, VA>(&self.store)?;
            let Some(aggregate) = store.fetch_session(&at_end.key, start, end)? else {
                continue;
            };
            let session = Windowed::new(at_end.key, start, end);
            forward_result(
                ctx,
                session,
                Change::new(Some(aggregate), None),
                end,
                headers,
            )?;
        }
        self.progress.set(ctx, close)
    }
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for SessionWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let ts = record.timestamp;
        let gap = self.windows.gap_ms;
        let observed = self.observed.observe(ts);
        // A session can still grow until a record one gap after its end could arrive.
        let close = observed
            .saturating_sub(self.windows.grace_ms)
            .saturating_sub(gap);
        if self.emit == EmitStrategy::OnWindowClose {
            // Before the record's own writes, which may expire closed sessions.
            self.emit_closed(ctx, close, &record.headers)?;
        }
        let store = ctx.session_store::<K, VA>(&self.store)?;
        let overlapping =
            store.find_sessions(&record.key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let (mut start, mut end) = (ts, ts);
        let mut aggregate = None;
        for (session, value) in &overlapping {
            start = start.min(session.window.start);
            end = end.max(session.window.end);
            aggregate = Some((self.merge)(&record.key, aggregate, value.clone()));
        }
        if end < close {
            drop_late(ctx, ts, observed);
            return Ok(());
        }
        // Unless the record is a session of its own, every session it touches is
        // replaced by the merged one: each is deleted downstream, even one whose window
        // stays the same. Results carry the session's end as their timestamp.
        let mut deleted = Vec::new();
        if (start, end) != (ts, ts) {
            for (session, value) in overlapping {
                store.remove(&session)?;
                deleted.push((session, value));
            }
        }
        let aggregate = (self.combine)(&record.key, record.value.clone(), aggregate);
        let merged = Windowed::new(record.key.clone(), start, end);
        store.put(&merged, &aggregate)?;
        for (session, _) in &deleted {
            self.index(ctx, session, false)?;
        }
        self.index(ctx, &merged, true)?;
        if self.emit == EmitStrategy::OnWindowClose {
            return Ok(());
        }
        for (session, value) in deleted {
            let at = session.window.end;
            let change = Change::new(None, Some(value));
            forward_result(ctx, session, change, at, &record.headers)?;
        }
        forward_result(
            ctx,
            merged,
            Change::new(Some(aggregate), None),
            end,
            &record.headers,
        )
    }
}

/// A raw record of a sliding-window aggregation with its arrival rank among the records
/// of its key near it, so windows fold their records in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Arrived<V> {
    pub rank: i64,
    pub value: V,
}

/// `[8-byte big-endian rank][value]`.
pub(crate) struct ArrivedSerde<V> {
    value: Arc<dyn Serde<V>>,
}

impl<V> ArrivedSerde<V> {
    pub fn new(value: Arc<dyn Serde<V>>) -> Self {
        ArrivedSerde { value }
    }
}

impl<V: 'static> Serde<Arrived<V>> for ArrivedSerde<V> {
    fn serialize(&self, topic: &str, a: &Arrived<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let value = self.value.serialize(topic, &a.value)?.unwrap_or_default();
        let mut out = Vec::with_capacity(8 + value.len());
        out.extend_from_slice(&a.rank.to_be_bytes());
        out.extend_from_slice(&value);
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Arrived<V>, SerdeError> {
        let bytes = bytes.ok_or_else(|| SerdeError::Null {
            topic: topic.to_string(),
        })?;
        if bytes.len() < 8 {
            return Err(SerdeError::Length {
                expected: 8,
                actual: bytes.len(),
            });
        }
        let rank = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        Ok(Arrived {
            rank,
            value: self.value.deserialize(topic, Some(&bytes[8..]))?,
        })
    }
}

/// Aggregates records into sliding windows, as Kafka Streams does: for every record the
/// window `[t - d, t]` ending at it (`[0, d]` at the earliest), and the window starting
/// right after it once later records fall in it. A record updates the windows holding
/// it that are still open and creates the windows it starts; it is dropped only when
/// even its own right window has closed (`t + d` behind the close time).
///
/// Raw records are kept (in a window store with duplicates, with their arrival rank) so
/// new windows can be built from their records in arrival order, and results carry the
/// largest timestamp among the window's records.
pub(crate) struct SlidingWindowAggregate<K, V, VA> {
    pub records_store: String,
    pub store: String,
    pub windows: SlidingWindows,
    pub combine: Combine<K, V, VA>,
    pub emit: EmitStrategy,
    pub progress: EmitProgress,
    pub observed: ObservedStreamTime,
}

/// A window a sliding aggregation writes: its start, its aggregate before the record
/// (`None` for a window the record creates) and after.
struct SlidingUpdate<VA> {
    start: i64,
    old: Option<VA>,
    new: VA,
    timestamp: i64,
}

impl<K: Data, V: Data, VA: Data> SlidingWindowAggregate<K, V, VA> {
    /// The windows the record at `ts` writes, in the order Kafka Streams emits them.
    fn updates(
        &self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: &Record<K, V>,
        close: i64,
        observed: i64,
    ) -> Result<Vec<SlidingUpdate<VA>>, ProcessError> {
        let d = self.windows.difference_ms;
        let ts = record.timestamp;
        let key = &record.key;
        let records = ctx.window_store::<K, Arrived<V>>(&self.records_store)?;
        // Every record a window touching this one can hold.
        let mut nearby = records.fetch_time_range(
            key,
            ts.saturating_sub(d + 1).max(0),
            ts.saturating_add(d + 1),
        )?;
        let rank = nearby.iter().map(|(_, a)| a.rank + 1).max().unwrap_or(0);
        let arrived = Arrived {
            rank,
            value: record.value.clone(),
        };
        records.put(key, &arrived, ts)?;
        nearby.push((ts, arrived));
        nearby.sort_by_key(|(_, a)| a.rank);

        let aggregates = ctx.window_store::<K, VA>(&self.store)?;
        let left = (ts - d).max(0);
        let own_right = ts + 1;
        // Existing windows holding the record: those starting within [left, ts].
        let existing = aggregates.fetch_time_range(key, left, ts)?;
        let exists = |start: i64| existing.iter().any(|(s, _)| *s == start);
        let own_right_exists = aggregates.fetch(key, own_right)?.is_some();
        let max_time = |start: i64| {
            nearby
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| (start..=start + d).contains(t))
                .max()
                .unwrap_or(ts)
        };
        let fold = |start: i64| {
            let mut aggregate = None;
            for (_, a) in nearby
                .iter()
                .filter(|(t, _)| (start..=start + d).contains(t))
            {
                aggregate = Some((self.combine)(key, a.value.clone(), aggregate));
            }
            aggregate
        };

        let mut updates = Vec::new();
        let mut write = |start: i64, old: Option<VA>, new: Option<VA>| {
            if start + d < close {
                drop_late(ctx, ts, observed);
                return;
            }
            if let Some(new) = new {
                updates.push(SlidingUpdate {
                    start,
                    old,
                    new,
                    timestamp: max_time(start),
                });
            }
        };
        let update = |old: &VA| (self.combine)(key, record.value.clone(), Some(old.clone()));
        let previous = nearby.iter().map(|(t, _)| *t).filter(|t| *t < ts).max();
        let previous_right = previous
            .map(|p| p + 1)
            .filter(|&s| s + d >= ts && s != left && !exists(s));
        let later_in_own_right = nearby.iter().any(|(t, _)| *t > ts && *t <= own_right + d);
        let create_own_right = !own_right_exists && later_in_own_right;

        if ts >= d {
            // Existing windows from the latest start down, then the windows the record
            // creates: the previous record's right window, its own left and right ones.
            for (start, old) in existing.iter().rev() {
                write(*start, Some(old.clone()), Some(update(old)));
            }
            if let Some(start) = previous_right {
                write(start, None, fold(start));
            }
            if !exists(left) {
                write(left, None, fold(left));
            }
            if create_own_right {
                write(own_right, None, fold(own_right));
            }
        } else {
            // An early record: windows after zero first, then its right window, the
            // previous record's right window, and last the window [0, d].
            for (start, old) in existing.iter().filter(|(s, _)| *s > 0) {
                write(*start, Some(old.clone()), Some(update(old)));
            }
            if create_own_right {
                write(own_right, None, fold(own_right));
            }
            if let Some(start) = previous_right {
                write(start, None, fold(start));
            }
            match existing.iter().find(|(s, _)| *s == 0) {
                Some((_, old)) => write(0, Some(old.clone()), Some(update(old))),
                None => write(0, None, fold(0)),
            }
        }
        Ok(updates)
    }
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for SlidingWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let d = self.windows.difference_ms;
        let ts = record.timestamp;
        let observed = self.observed.observe(ts);
        let close = observed.saturating_sub(self.windows.grace_ms);
        if self.emit == EmitStrategy::OnWindowClose {
            // Windows ending before the close time are final (both ends are inclusive).
            // Emitted before the record's own writes, which may expire them.
            let records_store = self.records_store.clone();
            emit_closed_windows(
                ctx,
                &mut self.progress,
                &self.store,
                close,
                |last, close| (last.map_or(0, |last| last - d), close - d - 1),
                |ctx, key| {
                    let records = ctx.window_store::<K, Arrived<V>>(&records_store)?;
                    let held =
                        records.fetch_time_range(&key.key, key.window.start, key.window.end)?;
                    Ok(held.iter().map(|(t, _)| *t).max().unwrap_or(key.window.end))
                },
                &record.headers,
            )?;
        }
        if ts.saturating_add(d) < close {
            // Even the window right after the record has closed.
            drop_late(ctx, ts, observed);
            return Ok(());
        }
        let updates = self.updates(ctx, &record, close, observed)?;
        let aggregates = ctx.window_store::<K, VA>(&self.store)?;
        for u in &updates {
            aggregates.put(&record.key, &u.new, u.start)?;
        }
        if self.emit == EmitStrategy::OnWindowUpdate {
            for u in updates {
                let key = Windowed::new(record.key.clone(), u.start, u.start + d);
                let change = Change::new(Some(u.new), u.old);
                forward_result(ctx, key, change, u.timestamp, &record.headers)?;
            }
        }
        Ok(())
    }
}
