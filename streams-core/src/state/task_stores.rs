//! The stores of one task: opened from the topology's definitions, cached against the
//! thread's budget, logged through a buffer the task hands to its record collector,
//! flushed, restored and checkpointed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use parking_lot::ReentrantMutex;

use streams_state::{
    CacheBudget, CachingKeyValueStore, CachingSessionStore, CachingWindowStore, ChangeLogger,
    InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore,
    KeyValueStore as BytesKeyValueStore, LoggedKeyValueStore, LoggedSessionStore,
    LoggedWindowStore, OffsetCheckpoint, RecordTimestamp, RocksDbConfig, RocksDbKeyValueStore,
    RocksDbSessionStore, RocksDbWindowStore, SessionStore as BytesSessionStore,
    SessionStoreOptions, StateStore, StoreError, TopicPartition, WindowStore as BytesWindowStore,
    WindowStoreOptions,
};

use super::definition::StoreKind;
use super::global::{GlobalSlot, GlobalStores};
use super::record_cache::SlotCache;
use super::{changelog_topic, StoreDefinition};
use crate::graph::OutgoingRecord;
use crate::record::Headers;

/// Changelog records written by a task's stores, waiting to be sent.
pub(crate) type ChangelogBuffer = Arc<Mutex<Vec<OutgoingRecord>>>;

/// Sends a store's changes to its changelog partition, through the task's buffer.
struct BufferLogger {
    topic: String,
    partition: i32,
    buffer: ChangelogBuffer,
}

impl ChangeLogger for BufferLogger {
    fn log(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> streams_state::Result<()> {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(OutgoingRecord {
                topic: self.topic.clone(),
                partition: Some(self.partition),
                key: Some(key.to_vec()),
                value: value.map(<[u8]>::to_vec),
                timestamp,
                headers: Headers::new(),
            });
        Ok(())
    }
}

/// A store behind a lock of its own, so that interactive queries on other threads read
/// it without waiting for the task's processing or commits (see
/// [`QueryableStores`](super::queryable::QueryableStores)): the stream thread holds it for
/// one store operation at a time, and may take it again while holding it (one handle
/// in use while another borrows), as a `RefCell` alone allowed.
pub(crate) type SharedStore<T> = ReentrantMutex<RefCell<Box<T>>>;

/// The byte store of a slot, of the kind its definition declares.
pub(crate) enum ByteStore {
    /// A key-value store.
    KeyValue(SharedStore<dyn BytesKeyValueStore>),
    /// A window store.
    Window(SharedStore<dyn BytesWindowStore>),
    /// A session store.
    Session(SharedStore<dyn BytesSessionStore>),
}

impl ByteStore {
    /// Runs `f` on the store as a [`StateStore`] (life cycle and restoration).
    fn with_state_store<T>(&self, f: impl FnOnce(&mut dyn StateStore) -> T) -> T {
        match self {
            ByteStore::KeyValue(store) => f(&mut *store.lock().borrow_mut()),
            ByteStore::Window(store) => f(&mut *store.lock().borrow_mut()),
            ByteStore::Session(store) => f(&mut *store.lock().borrow_mut()),
        }
    }
}

/// One store of a task.
pub(crate) struct StoreSlot {
    pub definition: Arc<StoreDefinition>,
    /// The changelog topic, also the topic passed to the store's serdes.
    pub topic: String,
    pub store: ByteStore,
    /// The forwarding side of the store's record cache; `None` when it has no cache.
    pub cache: Option<SlotCache>,
    /// The time of the record being processed (the task's clock).
    pub clock: RecordTimestamp,
}

impl StoreSlot {
    /// Empties the store's write cache into the layers below.
    pub fn flush_cache(&self) -> Result<(), StoreError> {
        self.store.with_state_store(|s| s.flush_cache())
    }
}

/// Opens the byte store of `definition`: in RocksDB under `location` when the store is
/// persistent and there is a location, in memory otherwise; logged through `logger`
/// when the definition says so; behind a record cache drawing on `budget` when caching
/// is on for the store and the budget is above 0 (stores retaining duplicates are never
/// cached). Returns the store and the forwarding side of its cache.
fn open_store(
    definition: &StoreDefinition,
    location: Option<&StoreLocation<'_>>,
    logger: Option<(BufferLogger, RecordTimestamp)>,
    budget: &CacheBudget,
) -> Result<(ByteStore, Option<SlotCache>), StoreError> {
    let name = definition.name.as_str();
    let location = location.filter(|_| definition.persistent);
    let cached = budget.is_enabled()
        && definition.caching
        && !matches!(
            definition.kind,
            StoreKind::Window {
                retain_duplicates: true,
                ..
            }
        );
    let cache = cached.then(SlotCache::default);
    // The cache sits in front of the change-logging layer: repeated writes of a key
    // between commits reach the store and its changelog once, at flush.
    let store = match definition.kind {
        StoreKind::KeyValue => {
            let base: Box<dyn BytesKeyValueStore> = match location {
                Some(l) => Box::new(RocksDbKeyValueStore::open(name, l.task_dir, l.rocksdb)?),
                None => Box::new(InMemoryKeyValueStore::new(name)),
            };
            let store: Box<dyn BytesKeyValueStore> = match logger {
                Some((logger, clock)) => Box::new(LoggedKeyValueStore::new(base, logger, clock)),
                None => base,
            };
            let store: Box<dyn BytesKeyValueStore> = match &cache {
                Some(cache) => Box::new(
                    CachingKeyValueStore::with_budget(store, budget.clone())
                        .with_flush_listener(cache.listener()),
                ),
                None => store,
            };
            ByteStore::KeyValue(ReentrantMutex::new(RefCell::new(store)))
        }
        StoreKind::Window {
            retention_ms,
            retain_duplicates,
            ..
        } => {
            let options = WindowStoreOptions::new(retention_ms).with_duplicates(retain_duplicates);
            let base: Box<dyn BytesWindowStore> = match location {
                Some(l) => Box::new(RocksDbWindowStore::open(
                    name, l.task_dir, l.rocksdb, options,
                )?),
                None => Box::new(InMemoryWindowStore::new(name, options)?),
            };
            let store: Box<dyn BytesWindowStore> = match logger {
                Some((logger, clock)) => Box::new(LoggedWindowStore::new(base, logger, clock)),
                None => base,
            };
            let store: Box<dyn BytesWindowStore> = match &cache {
                Some(cache) => {
                    let mut cached = CachingWindowStore::new(store, budget.clone());
                    cached.set_flush_listener(cache.listener());
                    Box::new(cached)
                }
                None => store,
            };
            ByteStore::Window(ReentrantMutex::new(RefCell::new(store)))
        }
        StoreKind::Session { retention_ms } => {
            let options = SessionStoreOptions::new(retention_ms);
            let base: Box<dyn BytesSessionStore> = match location {
                Some(l) => Box::new(RocksDbSessionStore::open(
                    name, l.task_dir, l.rocksdb, options,
                )?),
                None => Box::new(InMemorySessionStore::new(name, options)?),
            };
            let store: Box<dyn BytesSessionStore> = match logger {
                Some((logger, clock)) => Box::new(LoggedSessionStore::new(base, logger, clock)),
                None => base,
            };
            let store: Box<dyn BytesSessionStore> = match &cache {
                Some(cache) => {
                    let mut cached = CachingSessionStore::new(store, budget.clone());
                    cached.set_flush_listener(cache.listener());
                    Box::new(cached)
                }
                None => store,
            };
            ByteStore::Session(ReentrantMutex::new(RefCell::new(store)))
        }
    };
    Ok((store, cache))
}

/// Where a task keeps persistent stores.
pub(crate) struct StoreLocation<'a> {
    pub task_dir: &'a Path,
    pub rocksdb: &'a RocksDbConfig,
}

/// All stores of one task.
pub(crate) struct TaskStores {
    slots: HashMap<String, Arc<StoreSlot>>,
    buffer: ChangelogBuffer,
    clock: RecordTimestamp,
    partition: i32,
    task_dir: Option<PathBuf>,
    /// The instance's global stores, readable from every task.
    globals: Arc<GlobalStores>,
}

impl TaskStores {
    /// A task without stores.
    pub fn empty(partition: i32) -> Self {
        TaskStores {
            slots: HashMap::new(),
            buffer: Arc::new(Mutex::new(Vec::new())),
            clock: RecordTimestamp::new(),
            partition,
            task_dir: None,
            globals: Arc::new(GlobalStores::default()),
        }
    }

    /// Gives the task read access to the instance's global stores.
    pub fn with_globals(mut self, globals: Arc<GlobalStores>) -> Self {
        self.globals = globals;
        self
    }

    /// The global store `name`.
    pub fn global(&self, name: &str) -> Option<&GlobalSlot> {
        self.globals.slot(name)
    }

    /// Opens the stores of `definitions` for the task of `partition`: persistent ones in
    /// RocksDB under `location` (in memory when `location` is `None`, as in the test driver),
    /// stores with caching on behind a record cache drawing on the thread's `cache` budget
    /// (a budget of 0: no caches).
    pub fn open(
        definitions: &[Arc<StoreDefinition>],
        application_id: &str,
        partition: i32,
        location: Option<StoreLocation<'_>>,
        cache: &CacheBudget,
    ) -> Result<Self, StoreError> {
        let mut stores = TaskStores::empty(partition);
        stores.task_dir = location.as_ref().map(|l| l.task_dir.to_path_buf());
        for definition in definitions {
            let topic = changelog_topic(application_id, &definition.name);
            let logger = definition.logging.then(|| {
                let logger = BufferLogger {
                    topic: topic.clone(),
                    partition,
                    buffer: stores.buffer.clone(),
                };
                (logger, stores.clock.clone())
            });
            let (store, slot_cache) = open_store(definition, location.as_ref(), logger, cache)?;
            stores.slots.insert(
                definition.name.clone(),
                Arc::new(StoreSlot {
                    definition: definition.clone(),
                    topic,
                    store,
                    cache: slot_cache,
                    clock: stores.clock.clone(),
                }),
            );
        }
        Ok(stores)
    }

    /// The store named `name`.
    pub fn slot(&self, name: &str) -> Option<&StoreSlot> {
        self.slots.get(name).map(|slot| &**slot)
    }

    /// Every store of the task.
    pub fn slots(&self) -> impl Iterator<Item = &StoreSlot> {
        self.slots.values().map(|slot| &**slot)
    }

    /// The store named `name`, shareable with query threads.
    pub fn shared_slot(&self, name: &str) -> Option<Arc<StoreSlot>> {
        self.slots.get(name).cloned()
    }

    /// Every store of the task by name, shareable with query threads.
    pub fn shared_slots(&self) -> impl Iterator<Item = (&str, Arc<StoreSlot>)> {
        self.slots
            .iter()
            .map(|(name, slot)| (name.as_str(), slot.clone()))
    }

    /// Sets the timestamp that changelog records of the next writes carry.
    pub fn set_record_time(&self, timestamp: i64) {
        self.clock.set(timestamp);
    }

    /// The timestamp that changelog records of the next writes carry.
    pub fn record_time(&self) -> i64 {
        self.clock.get()
    }

    /// Takes the changelog records written since the last call.
    pub fn take_changelog(&self) -> Vec<OutgoingRecord> {
        // Called after every record: tasks without stores skip the lock.
        if self.slots.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changelog partitions of logged stores, with the store each one restores.
    pub fn changelog_partitions(&self) -> Vec<(TopicPartition, String)> {
        let mut partitions: Vec<(TopicPartition, String)> = self
            .slots
            .values()
            .filter(|s| s.definition.logging)
            .map(|s| {
                (
                    TopicPartition::new(s.topic.clone(), self.partition),
                    s.definition.name.clone(),
                )
            })
            .collect();
        partitions.sort();
        partitions
    }

    /// Whether the stores keep data on disk between runs (so a checkpoint means something).
    pub fn has_persistent_stores(&self) -> bool {
        self.task_dir.is_some() && self.slots.values().any(|s| s.definition.persistent)
    }

    /// The checkpoint file of the task directory, for tasks with persistent stores.
    pub fn checkpoint(&self) -> Option<OffsetCheckpoint> {
        self.task_dir
            .as_deref()
            .filter(|_| self.has_persistent_stores())
            .map(OffsetCheckpoint::in_dir)
    }

    /// Applies changelog records to the store `name`, without logging them again. Keys
    /// are in the changelog layout of the store's kind (see [`StateStore::restore_batch`]).
    pub fn restore(
        &self,
        name: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        match self.slots.get(name) {
            Some(slot) => slot.store.with_state_store(|s| s.restore_batch(records)),
            None => Ok(()),
        }
    }

    /// Flushes every store (RocksDB memtables to disk: its write-ahead log is off, the
    /// changelog being the backup).
    pub fn flush(&self) -> Result<(), StoreError> {
        for slot in self.slots.values() {
            slot.store.with_state_store(|s| s.flush())?;
        }
        Ok(())
    }

    /// Writes the task's checkpoint: the changelog offset up to which the local stores
    /// hold every change. Only persistent stores have one.
    pub fn write_checkpoint(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), StoreError> {
        match self.checkpoint() {
            Some(file) if !offsets.is_empty() => file.write(offsets),
            _ => Ok(()),
        }
    }

    /// Closes every store.
    pub fn close(&self) {
        for slot in self.slots.values() {
            if let Err(e) = slot.store.with_state_store(|s| s.close()) {
                tracing::warn!(
                    store = slot.definition.name,
                    "closing the store failed: {e}"
                );
            }
        }
    }
}
