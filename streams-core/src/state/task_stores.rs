//! The stores of one task: opened from the topology's definitions, logged through a
//! buffer the task hands to its record collector, flushed, restored and checkpointed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use streams_state::{
    ChangeLogger, InMemoryKeyValueStore, KeyValueStore as BytesKeyValueStore, LoggedKeyValueStore,
    OffsetCheckpoint, RecordTimestamp, RocksDbConfig, RocksDbKeyValueStore, StateStore, StoreError,
    TopicPartition,
};

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

/// One store of a task.
pub(crate) struct StoreSlot {
    pub definition: Arc<StoreDefinition>,
    /// The changelog topic, also the topic passed to the store's serdes.
    pub topic: String,
    pub store: RefCell<Box<dyn BytesKeyValueStore>>,
}

/// Where a task keeps persistent stores.
pub(crate) struct StoreLocation<'a> {
    pub task_dir: &'a Path,
    pub rocksdb: &'a RocksDbConfig,
}

/// All stores of one task.
pub(crate) struct TaskStores {
    slots: HashMap<String, StoreSlot>,
    buffer: ChangelogBuffer,
    clock: RecordTimestamp,
    partition: i32,
    task_dir: Option<PathBuf>,
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
        }
    }

    /// Opens the stores of `definitions` for the task of `partition`: persistent ones in
    /// RocksDB under `location` (in memory when `location` is `None`, as in the test driver).
    pub fn open(
        definitions: &[Arc<StoreDefinition>],
        application_id: &str,
        partition: i32,
        location: Option<StoreLocation<'_>>,
    ) -> Result<Self, StoreError> {
        let mut stores = TaskStores::empty(partition);
        stores.task_dir = location.as_ref().map(|l| l.task_dir.to_path_buf());
        for definition in definitions {
            let topic = changelog_topic(application_id, &definition.name);
            let base: Box<dyn BytesKeyValueStore> = match (&location, definition.persistent) {
                (Some(location), true) => Box::new(RocksDbKeyValueStore::open(
                    &definition.name,
                    location.task_dir,
                    location.rocksdb,
                )?),
                _ => Box::new(InMemoryKeyValueStore::new(definition.name.clone())),
            };
            let store: Box<dyn BytesKeyValueStore> = if definition.logging {
                let logger = BufferLogger {
                    topic: topic.clone(),
                    partition,
                    buffer: stores.buffer.clone(),
                };
                Box::new(LoggedKeyValueStore::new(base, logger, stores.clock.clone()))
            } else {
                base
            };
            stores.slots.insert(
                definition.name.clone(),
                StoreSlot {
                    definition: definition.clone(),
                    topic,
                    store: RefCell::new(store),
                },
            );
        }
        Ok(stores)
    }

    /// The store named `name`.
    pub fn slot(&self, name: &str) -> Option<&StoreSlot> {
        self.slots.get(name)
    }

    /// Sets the timestamp that changelog records of the next writes carry.
    pub fn set_record_time(&self, timestamp: i64) {
        self.clock.set(timestamp);
    }

    /// Takes the changelog records written since the last call.
    pub fn take_changelog(&self) -> Vec<OutgoingRecord> {
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

    /// Applies changelog records to the store `name`, without logging them again.
    pub fn restore(
        &self,
        name: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        match self.slots.get(name) {
            Some(slot) => slot.store.borrow_mut().restore_batch(records),
            None => Ok(()),
        }
    }

    /// Flushes every store (RocksDB memtables to disk: its write-ahead log is off, the
    /// changelog being the backup).
    pub fn flush(&self) -> Result<(), StoreError> {
        for slot in self.slots.values() {
            slot.store.borrow_mut().flush()?;
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
            if let Err(e) = slot.store.borrow_mut().close() {
                tracing::warn!(
                    store = slot.definition.name,
                    "closing the store failed: {e}"
                );
            }
        }
    }
}
