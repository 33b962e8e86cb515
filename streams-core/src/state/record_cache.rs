//! Forwarding through the record cache: DSL processors whose store is cached hand their
//! updates to the cache instead of their children, and the cache forwards the latest
//! update per key, with the value it replaces, when it flushes (at commit) or evicts.
//!
//! A processor opts in with [`forward_through_cache`] (or
//! [`forward_windowed_through_cache`]) in `init` and replaces its `ctx.forward(..)` of a
//! store update by [`forward_or_cache`] (or [`forward_windowed_or_cache`]). Without a
//! cache (caching off for the store, a budget of 0, the test driver) these forward at
//! once, so topologies behave as before. With a cache:
//!
//! * the update's timestamp and headers are kept for its key, and forwarded with the
//!   flushed entry (Kafka forwards the record context of the latest write);
//! * entries evicted by a write are queued by the store and forwarded right after the
//!   write, by the same `forward_or_cache` call, when no store is borrowed;
//! * at commit, [`flush_and_forward`] flushes every cache in node order and forwards what
//!   left it through the owning processor's children.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use streams_state::key_layout::{split_window_store_key, window_store_key};
use streams_state::{FlushListener, SessionKey, StoreError};

use super::definition::StoreKind;
use super::task_stores::StoreSlot;
use super::typed::StoreCodec;
use super::{Window, Windowed};
use crate::dsl::Change;
use crate::graph::{CurrentRecord, Data, ErasedRecord, Exec};
use crate::processor::{ProcessError, ProcessorContext, TaskContext};
use crate::record::{Headers, Record};

/// An entry that left a store's cache: key in the store kind's layout, new value (`None`:
/// delete) and the value the wrapped store held before.
pub(crate) struct FlushedEntry {
    pub key: Vec<u8>,
    pub new: Option<Vec<u8>>,
    pub old: Option<Vec<u8>>,
}

/// Timestamp, headers and input position of the latest update of a cached key (Kafka
/// forwards a flushed entry in the record context of its latest write).
struct RecordContext {
    timestamp: i64,
    headers: Headers,
    metadata: Option<CurrentRecord>,
}

impl RecordContext {
    fn of<K, V>(exec: &Exec<'_>, record: &Record<K, V>) -> Self {
        RecordContext {
            timestamp: record.timestamp,
            headers: record.headers.clone(),
            metadata: exec.state.current.borrow().clone(),
        }
    }
}

/// Turns a flushed entry into the record the owning processor forwards.
type DecodeFn =
    fn(&StoreSlot, FlushedEntry, RecordContext, Forward<'_>) -> Result<(), ProcessError>;
/// Where a decoded flushed entry goes: the forwarding node's children.
type Forward<'f> = &'f mut dyn FnMut(ErasedRecord<'_>) -> Result<(), ProcessError>;

/// The processor that forwards a cached store's flushed entries.
#[derive(Clone, Copy)]
struct Forwarder {
    node: usize,
    decode: DecodeFn,
}

/// The forwarding side of one cached store: what its flush listener queued, who
/// forwards it and the record context of each held-back key.
#[derive(Default)]
pub(crate) struct SlotCache {
    /// Filled by the store's flush listener while `forwarding` is set.
    queue: Arc<Mutex<Vec<FlushedEntry>>>,
    forwarding: Arc<AtomicBool>,
    /// Set once, when the owning processor initializes.
    forwarder: OnceLock<Forwarder>,
    contexts: Mutex<HashMap<Vec<u8>, RecordContext, foldhash::fast::RandomState>>,
}

impl SlotCache {
    /// The flush listener to install on the store's caching layer.
    pub fn listener(&self) -> FlushListener {
        let queue = self.queue.clone();
        let forwarding = self.forwarding.clone();
        Box::new(move |key, new, old| {
            if forwarding.load(Ordering::Relaxed) {
                queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(FlushedEntry {
                        key: key.to_vec(),
                        new: new.map(<[u8]>::to_vec),
                        old: old.map(<[u8]>::to_vec),
                    });
            }
        })
    }

    fn register(&self, forwarder: Forwarder) {
        if self.forwarder.set(forwarder).is_err() {
            tracing::debug!(
                node = forwarder.node,
                "the store's cache already has a forwarder"
            );
        }
        self.forwarding.store(true, Ordering::Relaxed);
    }

    fn forwarder(&self) -> Option<Forwarder> {
        self.forwarder.get().copied()
    }

    fn remember(&self, key: Vec<u8>, context: RecordContext) {
        let mut contexts = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        match contexts.get_mut(key.as_slice()) {
            Some(held) => *held = context,
            None => {
                contexts.insert(key, context);
            }
        }
    }

    fn take_queued(&self) -> Vec<FlushedEntry> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn take_context(&self, key: &[u8]) -> Option<RecordContext> {
        self.contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }
}

fn slot_of<'a>(ctx: &TaskContext<'a>, store: &str) -> Result<&'a StoreSlot, ProcessError> {
    let exec: &'a Exec<'a> = ctx.exec();
    exec.state
        .stores
        .slot(store)
        .ok_or_else(|| ProcessError::Store {
            store: store.to_string(),
            reason: "no such store in this task".to_string(),
        })
}

/// Makes the calling processor the one that forwards the flushed entries of key-value
/// store `store` as `Change<V>` records. Returns whether the store is cached.
pub(crate) fn forward_through_cache<K: Data, V: Data>(
    ctx: &TaskContext<'_>,
    store: &str,
) -> Result<bool, ProcessError> {
    register(ctx, store, decode_key_value::<K, V>)
}

/// Like [`forward_through_cache`] for window and session stores, whose records carry
/// [`Windowed`] keys.
pub(crate) fn forward_windowed_through_cache<K: Data, V: Data>(
    ctx: &TaskContext<'_>,
    store: &str,
) -> Result<bool, ProcessError> {
    register(ctx, store, decode_windowed::<K, V>)
}

fn register(ctx: &TaskContext<'_>, store: &str, decode: DecodeFn) -> Result<bool, ProcessError> {
    let slot = slot_of(ctx, store)?;
    let Some(cache) = &slot.cache else {
        return Ok(false);
    };
    cache.register(Forwarder {
        node: ctx.node(),
        decode,
    });
    Ok(true)
}

/// Forwards `record`, an update of `record.key` just written to key-value store `store`,
/// or holds it back in the store's cache; then forwards what the write evicted.
pub(crate) fn forward_or_cache<K: Data, V: Data>(
    ctx: &mut ProcessorContext<'_, K, Change<V>>,
    store: &str,
    record: Record<K, Change<V>>,
) -> Result<(), ProcessError> {
    let slot = slot_of(ctx, store)?;
    let Some(cache) = slot.cache.as_ref().filter(|c| c.forwarder.get().is_some()) else {
        return ctx.forward(record);
    };
    let key = StoreCodec::<K, V>::for_slot(slot)?.key_bytes(&record.key)?;
    cache.remember(key, RecordContext::of(ctx.exec(), &record));
    forward_queued(ctx.exec(), slot)
}

/// Like [`forward_or_cache`] for window and session stores.
pub(crate) fn forward_windowed_or_cache<K: Data, V: Data>(
    ctx: &mut ProcessorContext<'_, Windowed<K>, Change<V>>,
    store: &str,
    record: Record<Windowed<K>, Change<V>>,
) -> Result<(), ProcessError> {
    let slot = slot_of(ctx, store)?;
    let Some(cache) = slot.cache.as_ref().filter(|c| c.forwarder().is_some()) else {
        return ctx.forward(record);
    };
    let key = StoreCodec::<K, V>::for_slot(slot)?.key_bytes(&record.key.key)?;
    let window = record.key.window;
    let key = match slot.definition.kind {
        StoreKind::Session { .. } => SessionKey::new(key, window.start, window.end).to_bytes(),
        _ => window_store_key(&key, window.start, 0),
    };
    cache.remember(key, RecordContext::of(ctx.exec(), &record));
    forward_queued(ctx.exec(), slot)
}

/// Forwards the entries `slot`'s cache flushed or evicted since the last call, through
/// the children of the processor that registered for them.
fn forward_queued(exec: &Exec<'_>, slot: &StoreSlot) -> Result<(), ProcessError> {
    let Some(cache) = &slot.cache else {
        return Ok(());
    };
    let entries = cache.take_queued();
    let Some(forwarder) = cache.forwarder() else {
        return Ok(());
    };
    let clock = exec.state.stores.record_time();
    for entry in entries {
        let context = cache
            .take_context(&entry.key)
            .unwrap_or_else(|| RecordContext {
                timestamp: exec.state.stream_time.get(),
                headers: Headers::new(),
                metadata: None,
            });
        exec.state.stores.set_record_time(context.timestamp);
        let previous = exec.state.current.replace(context.metadata.clone());
        let result = (forwarder.decode)(slot, entry, context, &mut |record| {
            exec.forward(forwarder.node, None, record)
        });
        *exec.state.current.borrow_mut() = previous;
        if let Err(e) = result {
            exec.state.stores.set_record_time(clock);
            return Err(e);
        }
    }
    exec.state.stores.set_record_time(clock);
    Ok(())
}

/// Flushes every cached store of the task and forwards what left the caches, upstream
/// stores first; repeats while forwarding filled caches further down.
pub(crate) fn flush_and_forward(exec: &Exec<'_>) -> Result<(), ProcessError> {
    let stores = &exec.state.stores;
    let mut slots: Vec<&StoreSlot> = stores.slots().filter(|s| s.cache.is_some()).collect();
    slots.sort_by_key(|s| {
        s.cache
            .as_ref()
            .and_then(SlotCache::forwarder)
            .map_or(usize::MAX, |f| f.node)
    });
    let result = (|| {
        // Each pass flushes every cache; a forward only reaches stores further down, so
        // the passes end once the last store of the graph flushed nothing new.
        for _ in 0..=slots.len() {
            let mut forwarded = false;
            for slot in &slots {
                slot.flush_cache().map_err(|e| store_error(slot, e))?;
                let queued = slot
                    .cache
                    .as_ref()
                    .is_some_and(|c| !c.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
                forwarded |= queued;
                forward_queued(exec, slot)?;
            }
            if !forwarded {
                break;
            }
        }
        Ok(())
    })();
    result
}

fn store_error(slot: &StoreSlot, error: StoreError) -> ProcessError {
    ProcessError::Store {
        store: slot.definition.name.clone(),
        reason: error.to_string(),
    }
}

fn decode_value<K: 'static, V: 'static>(
    codec: &StoreCodec<'_, K, V>,
    bytes: Option<Vec<u8>>,
) -> Result<Option<V>, ProcessError> {
    bytes.map(|b| codec.value(&b)).transpose()
}

fn decode_key_value<K: Data, V: Data>(
    slot: &StoreSlot,
    entry: FlushedEntry,
    RecordContext {
        timestamp, headers, ..
    }: RecordContext,
    forward: Forward<'_>,
) -> Result<(), ProcessError> {
    let codec = StoreCodec::<K, V>::for_slot(slot)?;
    let key = codec.key(&entry.key)?;
    let change = Change::new(
        decode_value(&codec, entry.new)?,
        decode_value(&codec, entry.old)?,
    );
    forward(ErasedRecord::new(&mut Some(
        Record::new(key, change, timestamp).with_headers(headers),
    )))
}

fn decode_windowed<K: Data, V: Data>(
    slot: &StoreSlot,
    entry: FlushedEntry,
    RecordContext {
        timestamp, headers, ..
    }: RecordContext,
    forward: Forward<'_>,
) -> Result<(), ProcessError> {
    let codec = StoreCodec::<K, V>::for_slot(slot)?;
    let malformed = || codec.error("a flushed cache entry has a malformed key");
    let (key, window) = match slot.definition.kind {
        StoreKind::Session { .. } => {
            let session = SessionKey::from_bytes(&entry.key).ok_or_else(malformed)?;
            (
                codec.key(&session.key)?,
                Window::new(session.start, session.end),
            )
        }
        StoreKind::Window { window_size_ms, .. } => {
            let (key, start, _) = split_window_store_key(&entry.key).ok_or_else(malformed)?;
            (
                codec.key(key)?,
                Window::new(start, start.saturating_add(window_size_ms)),
            )
        }
        StoreKind::KeyValue => return Err(malformed()),
    };
    let change = Change::new(
        decode_value(&codec, entry.new)?,
        decode_value(&codec, entry.old)?,
    );
    forward(ErasedRecord::new(&mut Some(
        Record::new(Windowed { key, window }, change, timestamp).with_headers(headers),
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::serde::{I64Serde, StringSerde};
    use crate::state::Stores;
    use crate::test_driver::{TestDriverConfig, TopologyTestDriver};
    use crate::{Consumed, StreamsBuilder};

    type Seen = Arc<Mutex<Vec<Record<Windowed<String>, Change<i64>>>>>;

    /// Counts each record twice in its 10 ms window, forwarding both updates.
    struct TwiceInWindow;

    impl crate::processor::Processor<String, String, Windowed<String>, Change<i64>> for TwiceInWindow {
        fn init(
            &mut self,
            ctx: &mut ProcessorContext<'_, Windowed<String>, Change<i64>>,
        ) -> Result<(), ProcessError> {
            forward_windowed_through_cache::<String, i64>(ctx, "w").map(|_| ())
        }

        fn process(
            &mut self,
            ctx: &mut ProcessorContext<'_, Windowed<String>, Change<i64>>,
            record: Record<String, String>,
        ) -> Result<(), ProcessError> {
            let start = record.timestamp - record.timestamp % 10;
            let key = Windowed::new(record.key.clone(), start, start + 10);
            for _ in 0..2 {
                let store = ctx.window_store::<String, i64>("w")?;
                let old = store.fetch(&record.key, start)?;
                let new = old.unwrap_or(0) + 1;
                store.put(&record.key, &new, start)?;
                let update =
                    Record::new(key.clone(), Change::new(Some(new), old), record.timestamp);
                forward_windowed_or_cache(ctx, "w", update)?;
            }
            Ok(())
        }
    }

    /// Merges each record into the key's previous session, if any, forwarding the
    /// removal of the previous session and the merged one.
    struct MergeSessions;

    impl crate::processor::Processor<String, String, Windowed<String>, Change<i64>> for MergeSessions {
        fn init(
            &mut self,
            ctx: &mut ProcessorContext<'_, Windowed<String>, Change<i64>>,
        ) -> Result<(), ProcessError> {
            forward_windowed_through_cache::<String, i64>(ctx, "s").map(|_| ())
        }

        fn process(
            &mut self,
            ctx: &mut ProcessorContext<'_, Windowed<String>, Change<i64>>,
            record: Record<String, String>,
        ) -> Result<(), ProcessError> {
            let store = ctx.session_store::<String, i64>("s")?;
            let previous = store.fetch(&record.key)?.pop();
            let mut start = record.timestamp;
            let mut count = 1;
            if let Some((session, aggregate)) = previous {
                store.remove(&session)?;
                start = session.window.start;
                count += aggregate;
                let removal = Record::new(
                    session,
                    Change::new(None, Some(aggregate)),
                    record.timestamp,
                );
                forward_windowed_or_cache(ctx, "s", removal)?;
            }
            let store = ctx.session_store::<String, i64>("s")?;
            let merged = Windowed::new(record.key.clone(), start, record.timestamp);
            store.put(&merged, &count)?;
            let update = Record::new(merged, Change::new(Some(count), None), record.timestamp);
            forward_windowed_or_cache(ctx, "s", update)
        }
    }

    struct Collect(Seen);

    impl crate::processor::Processor<Windowed<String>, Change<i64>, Windowed<String>, Change<i64>>
        for Collect
    {
        fn process(
            &mut self,
            _ctx: &mut ProcessorContext<'_, Windowed<String>, Change<i64>>,
            record: Record<Windowed<String>, Change<i64>>,
        ) -> Result<(), ProcessError> {
            self.0.lock().unwrap().push(record);
            Ok(())
        }
    }

    fn run(
        session: bool,
        cache_bytes: usize,
        inputs: &[(&str, i64)],
    ) -> Vec<Record<Windowed<String>, Change<i64>>> {
        let seen: Seen = Arc::default();
        let builder = StreamsBuilder::new();
        let stream = builder.stream("in", Consumed::with(StringSerde, StringSerde));
        let updates = if session {
            builder.add_state_store(
                Stores::session("s", StringSerde, I64Serde, Duration::from_secs(60))
                    .with_caching(true),
            );
            stream.process_with_stores(|| MergeSessions, &["s"])
        } else {
            builder.add_state_store(
                Stores::window(
                    "w",
                    StringSerde,
                    I64Serde,
                    Duration::from_secs(60),
                    Duration::from_millis(10),
                    false,
                )
                .with_caching(true),
            );
            stream.process_with_stores(|| TwiceInWindow, &["w"])
        };
        let sink = seen.clone();
        updates.process(move || Collect(sink.clone()));
        let driver = TopologyTestDriver::with_config(
            builder.build().unwrap(),
            TestDriverConfig::default().with_store_cache_max_bytes(cache_bytes),
        );
        let input = driver.input_topic("in", StringSerde, StringSerde);
        for (key, ts) in inputs {
            input.pipe_input_at(key.to_string(), String::new(), *ts);
        }
        drop(driver);
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        seen
    }

    fn update(
        key: &str,
        window: (i64, i64),
        new: Option<i64>,
        old: Option<i64>,
        ts: i64,
    ) -> Record<Windowed<String>, Change<i64>> {
        Record::new(
            Windowed::new(key.to_string(), window.0, window.1),
            Change::new(new, old),
            ts,
        )
    }

    #[test]
    fn a_cached_window_store_forwards_the_latest_update_of_a_window_per_commit() {
        let inputs = [("a", 3), ("a", 7), ("b", 12)];
        // The driver commits after every record: the two updates each record makes to
        // its window merge into one, whose old value is the window's value before.
        assert_eq!(
            run(false, 1 << 20, &inputs),
            vec![
                update("a", (0, 10), Some(2), None, 3),
                update("a", (0, 10), Some(4), Some(2), 7),
                update("b", (10, 20), Some(2), None, 12),
            ]
        );
        // Without a cache, every update is forwarded.
        assert_eq!(run(false, 0, &inputs).len(), 6);
    }

    #[test]
    fn a_cached_session_store_forwards_the_removed_session_then_the_merged_one() {
        let inputs = [("a", 3), ("a", 7)];
        let expected = vec![
            update("a", (3, 3), Some(1), None, 3),
            update("a", (3, 3), None, Some(1), 7),
            update("a", (3, 7), Some(2), None, 7),
        ];
        assert_eq!(run(true, 1 << 20, &inputs), expected);
        assert_eq!(run(true, 0, &inputs), expected);
    }
}
