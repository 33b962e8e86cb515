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
use crate::state::record_cache::{forward_windowed_or_cache, forward_windowed_through_cache};
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

/// Forwards one final result (emitting on window close) at once.
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

/// Forwards an update of window or session store `store` (emitting on every update), or
/// holds it back in the store's record cache until the next commit or eviction.
fn forward_update<K: Data, VA: Data>(
    ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    store: &str,
    key: Windowed<K>,
    change: Change<VA>,
    timestamp: i64,
    headers: &Headers,
) -> Result<(), ProcessError> {
    let record = Record {
        key,
        value: change,
        timestamp,
        headers: headers.clone(),
    };
    forward_windowed_or_cache(ctx, store, record)
}

/// Makes an aggregation that emits every update forward its store's record cache (final
/// results, emitted on window close, never go through the cache, as in Kafka Streams).
fn forward_updates_through_cache<K: Data, VA: Data>(
    ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    emit: EmitStrategy,
    store: &str,
) -> Result<(), ProcessError> {
    if emit == EmitStrategy::OnWindowUpdate {
        forward_windowed_through_cache::<K, VA>(ctx, store)?;
    }
    Ok(())
}

/// Where the final results of a window store have been emitted up to: the close time of
/// the last emission (`None` before the first), kept in a change-logged store so a
/// restarted task does not emit them again.
pub(crate) struct EmitProgress {
    /// The key-value store holding the close time (one entry), when emitting on close.
    store: Option<String>,
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
/// windows starting within `starts(last close, close)` (inclusive bounds), each stamped
/// with `timestamp(context, window)`.
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
/// timestamp among the window's records, kept with each aggregate (a timestamped store).
pub(crate) struct TimeWindowAggregate<K, V, VA> {
    pub store: String,
    pub windows: TimeWindows,
    pub combine: Combine<K, V, VA>,
    pub emit: EmitStrategy,
    pub progress: EmitProgress,
    pub observed: ObservedStreamTime,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for TimeWindowAggregate<K, V, VA>
{
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        forward_updates_through_cache(ctx, self.emit, &self.store)
    }

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
            let store = self.store.clone();
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
                        .window_store::<K, VA>(&store)?
                        .fetch_with_timestamp(&key.key, key.window.start)?;
                    Ok(stored
                        .and_then(|(_, timestamp)| timestamp)
                        .unwrap_or(key.window.end - 1))
                },
                &record.headers,
            )?;
        }
        let store = ctx.window_store::<K, VA>(&self.store)?;
        let mut updates = Vec::new();
        for start in self.windows.windows_for(record.timestamp) {
            let end = start + self.windows.size_ms;
            if end <= close {
                drop_late(ctx, record.timestamp, observed);
                continue;
            }
            let (old, stored) = match store.fetch_with_timestamp(&record.key, start)? {
                Some((old, stored)) => (Some(old), stored),
                None => (None, None),
            };
            let latest = stored.map_or(record.timestamp, |t| t.max(record.timestamp));
            let new = (self.combine)(&record.key, record.value.clone(), old.clone());
            store.put_with_timestamp(&record.key, &new, start, latest)?;
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
                forward_update(ctx, &self.store, key, change, latest, &record.headers)?;
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
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        forward_updates_through_cache(ctx, self.emit, &self.store)
    }

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
            forward_update(ctx, &self.store, session, change, at, &record.headers)?;
        }
        forward_update(
            ctx,
            &self.store,
            merged,
            Change::new(Some(aggregate), None),
            end,
            &record.headers,
        )
    }
}

/// Aggregates records into sliding windows, as Kafka Streams does: for every record the
/// window `[t - d, t]` ending at it (`[0, d]` for records before `d`), and the window
/// starting right after it once later records fall in it. Each window's aggregate is
/// kept with the largest timestamp among its records (a timestamped store). A
/// record updates the open windows holding it, and creates the windows it starts from
/// the aggregate of a neighbouring window: its left window from the window ending just
/// before it, its right window as a copy of the window holding the records after it,
/// the previous record's right window from the record alone. Aggregates thus fold their
/// records in arrival order. A record is dropped only when even its own right window
/// has closed (`t + d` behind the close time).
pub(crate) struct SlidingWindowAggregate<K, V, VA> {
    pub store: String,
    pub windows: SlidingWindows,
    pub combine: Combine<K, V, VA>,
    pub emit: EmitStrategy,
    pub progress: EmitProgress,
    pub observed: ObservedStreamTime,
}

/// A window's aggregate and the largest timestamp among its records.
#[derive(Clone)]
struct Stamped<VA> {
    aggregate: VA,
    timestamp: i64,
}

/// What one sliding-window record does to the windows of its key, gathered while
/// walking the existing windows and applied in the order Kafka Streams applies it.
struct SlidingStep<'r, K, V, VA> {
    record: &'r Record<K, V>,
    close: i64,
    observed: i64,
    d: i64,
    /// Window writes in order: start, previous aggregate, new aggregate and timestamp.
    writes: Vec<(i64, Option<VA>, Stamped<VA>)>,
    starts: Vec<i64>,
}

impl<K: Data, V: Data, VA: Data> SlidingStep<'_, K, V, VA> {
    /// Folds the record into the window at `start` holding `base` (`None`: a new window
    /// starting from the initializer), if the window is still open.
    fn update(
        &mut self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        combine: &Combine<K, V, VA>,
        start: i64,
        base: Option<Stamped<VA>>,
        existed: bool,
    ) {
        let ts = self.record.timestamp;
        if start + self.d < self.close {
            drop_late(ctx, ts, self.observed);
            return;
        }
        let timestamp = base.as_ref().map_or(ts, |b| b.timestamp.max(ts));
        let previous = base.map(|b| b.aggregate);
        let aggregate = combine(
            &self.record.key,
            self.record.value.clone(),
            previous.clone(),
        );
        let old = if existed { previous } else { None };
        self.writes.push((
            start,
            old,
            Stamped {
                aggregate,
                timestamp,
            },
        ));
    }

    /// Creates the record's right window as a copy of `right` (the records after it).
    fn copy_right(&mut self, right: Stamped<VA>) {
        self.writes.push((self.record.timestamp + 1, None, right));
    }
}

impl<K: Data, V: Data, VA: Data> SlidingWindowAggregate<K, V, VA> {
    /// The windows of `key` starting within `[from, to]` with their aggregates and
    /// timestamps, by ascending start.
    fn windows_between(
        &self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        key: &K,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Stamped<VA>)>, ProcessError> {
        let aggregates = ctx.window_store::<K, VA>(&self.store)?;
        let mut out = Vec::new();
        for (start, aggregate, timestamp) in
            aggregates.fetch_time_range_with_timestamps(key, from, to)?
        {
            let timestamp = timestamp.unwrap_or(start + self.windows.difference_ms);
            out.push((
                start,
                Stamped {
                    aggregate,
                    timestamp,
                },
            ));
        }
        Ok(out)
    }

    /// A record at or after the time difference: windows from the latest start down.
    fn step_late(
        &self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        step: &mut SlidingStep<'_, K, V, VA>,
    ) -> Result<(), ProcessError> {
        let (ts, d) = (step.record.timestamp, step.d);
        let found = self.windows_between(ctx, &step.record.key, (ts - 2 * d).max(0), ts + 1)?;
        step.starts = found.iter().map(|(s, _)| *s).collect();
        let (mut left_created, mut right_created) = (false, false);
        let (mut left_base, mut right_base, mut previous) = (None, None, None);
        for (start, window) in found.into_iter().rev() {
            let end = start + d;
            if start == ts + 1 {
                right_created = true;
            } else if end > ts {
                if right_base.is_none() {
                    right_base = Some(window.clone());
                }
                step.update(ctx, &self.combine, start, Some(window), true);
            } else if end == ts {
                left_created = true;
                let latest = window.timestamp;
                step.update(ctx, &self.combine, start, Some(window), true);
                if latest >= ts {
                    // A record at this very time came before: its windows exist.
                    return Ok(());
                }
                previous = Some(latest);
            } else {
                previous = Some(window.timestamp);
                left_base = Some(window);
                break;
            }
        }
        if let Some(p) = previous {
            let start = p + 1;
            if !step.starts.contains(&start) && start + d >= ts {
                step.update(ctx, &self.combine, start, None, false);
            }
        }
        if !left_created {
            let base = match (previous, left_base) {
                (Some(p), Some(base)) if ts - d <= p => Some(Stamped {
                    aggregate: base.aggregate,
                    timestamp: ts,
                }),
                _ => None,
            };
            step.update(ctx, &self.combine, ts - d, base, false);
        }
        if let Some(right) = right_base.filter(|r| !right_created && r.timestamp > ts) {
            step.copy_right(right);
        }
        Ok(())
    }

    /// A record before the time difference: its left window is `[0, d]`, updated last.
    fn step_early(
        &self,
        ctx: &ProcessorContext<'_, Windowed<K>, Change<VA>>,
        step: &mut SlidingStep<'_, K, V, VA>,
    ) -> Result<(), ProcessError> {
        let ts = step.record.timestamp;
        let found = self.windows_between(ctx, &step.record.key, 0, ts + 1)?;
        step.starts = found.iter().map(|(s, _)| *s).collect();
        let (mut combined, mut right_base, mut previous) = (None, None, None);
        let mut right_created = false;
        for (start, window) in found {
            if start == 0 {
                if window.timestamp < ts {
                    previous = Some(window.timestamp);
                }
                combined = Some(window);
            } else if start <= ts {
                right_base = Some(window.clone());
                step.update(ctx, &self.combine, start, Some(window), true);
            } else if start == ts + 1 {
                right_created = true;
            }
        }
        if right_base.is_none() {
            right_base = combined.clone().filter(|c| c.timestamp > ts);
        }
        if let Some(right) = right_base.filter(|r| !right_created && r.timestamp > ts) {
            step.copy_right(right);
        }
        if let Some(p) = previous {
            if !step.starts.contains(&(p + 1)) {
                step.update(ctx, &self.combine, p + 1, None, false);
            }
        }
        let existed = combined.is_some();
        step.update(ctx, &self.combine, 0, combined, existed);
        Ok(())
    }
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for SlidingWindowAggregate<K, V, VA>
{
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        forward_updates_through_cache(ctx, self.emit, &self.store)
    }

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
            let store = self.store.clone();
            emit_closed_windows(
                ctx,
                &mut self.progress,
                &self.store,
                close,
                |last, close| (last.map_or(0, |last| last - d), close - d - 1),
                |ctx, key| {
                    let stored = ctx
                        .window_store::<K, VA>(&store)?
                        .fetch_with_timestamp(&key.key, key.window.start)?;
                    Ok(stored
                        .and_then(|(_, timestamp)| timestamp)
                        .unwrap_or(key.window.end))
                },
                &record.headers,
            )?;
        }
        if ts.saturating_add(d) < close {
            // Even the window right after the record has closed.
            drop_late(ctx, ts, observed);
            return Ok(());
        }
        let mut step = SlidingStep {
            record: &record,
            close,
            observed,
            d,
            writes: Vec::new(),
            starts: Vec::new(),
        };
        if ts < d {
            self.step_early(ctx, &mut step)?;
        } else {
            self.step_late(ctx, &mut step)?;
        }
        let writes = step.writes;
        let aggregates = ctx.window_store::<K, VA>(&self.store)?;
        for (start, _, window) in &writes {
            aggregates.put_with_timestamp(
                &record.key,
                &window.aggregate,
                *start,
                window.timestamp,
            )?;
        }
        if self.emit == EmitStrategy::OnWindowUpdate {
            for (start, old, window) in writes {
                let key = Windowed::new(record.key.clone(), start, start + d);
                let change = Change::new(Some(window.aggregate), old);
                forward_update(
                    ctx,
                    &self.store,
                    key,
                    change,
                    window.timestamp,
                    &record.headers,
                )?;
            }
        }
        Ok(())
    }
}
