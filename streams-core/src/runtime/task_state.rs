//! Opening the local state of a task, for an active task and a standby alike: locking
//! its directory (persistent stores), trusting its data up to the checkpoint (and wiping
//! it when a logged persistent store has none), and opening its stores.

use std::collections::BTreeMap;
use std::sync::Arc;

use streams_state::{
    CacheBudget, OffsetCheckpoint, RocksDbConfig, StateDirectory, StoreError, TaskDirLock,
    TopicPartition,
};

use super::StreamsError;
use crate::processor::TaskId;
use crate::state::task_stores::{StoreLocation, TaskStores};
use crate::state::{changelog_topic, StoreDefinition};

/// The local state of one task, opened.
pub(crate) struct TaskState {
    /// The lock of the task directory, when the task has persistent stores.
    pub lock: Option<TaskDirLock>,
    pub stores: TaskStores,
    /// The changelog offsets the local stores hold every change up to.
    pub checkpointed: BTreeMap<TopicPartition, i64>,
}

/// Where a task's state lives and how its stores are built.
pub(crate) struct StateLocation<'a> {
    pub state_dir: &'a StateDirectory,
    pub rocksdb: &'a RocksDbConfig,
    pub application_id: &'a str,
    pub cache: &'a CacheBudget,
}

impl StateLocation<'_> {
    /// Opens the stores `definitions` of task `id`. Fails with a `DirectoryLocked` store
    /// error while another owner (a closing task, a standby) holds the directory.
    pub fn open(
        &self,
        id: TaskId,
        definitions: &[Arc<StoreDefinition>],
    ) -> Result<TaskState, StreamsError> {
        let store_error = |e: StoreError| {
            StreamsError::state(format!("opening the state stores of task {id}"), e)
        };
        let task_name = id.to_string();
        let mut checkpointed = BTreeMap::new();
        let mut lock = None;
        if definitions.iter().any(|d| d.persistent) {
            let held = self.state_dir.lock(&task_name).map_err(store_error)?;
            checkpointed = OffsetCheckpoint::in_dir(held.dir())
                .read()
                .unwrap_or_else(|e| {
                    tracing::warn!(task = %id, "ignoring the checkpoint: {e}");
                    BTreeMap::new()
                });
            let untrusted = definitions
                .iter()
                .filter(|d| d.persistent && d.logging)
                .any(|d| {
                    let tp = TopicPartition::new(
                        changelog_topic(self.application_id, &d.name),
                        id.partition,
                    );
                    !checkpointed.contains_key(&tp)
                });
            if untrusted {
                self.state_dir.wipe(&task_name).map_err(store_error)?;
                checkpointed.clear();
            }
            lock = Some(held);
        }
        let location = lock.as_ref().map(|lock| StoreLocation {
            task_dir: lock.dir(),
            rocksdb: self.rocksdb,
        });
        let stores = TaskStores::open(
            definitions,
            self.application_id,
            id.partition,
            location,
            self.cache,
        )
        .map_err(store_error)?;
        Ok(TaskState {
            lock,
            stores,
            checkpointed,
        })
    }
}
