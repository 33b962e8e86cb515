//! [`QueryableStores`]: the stores of an instance's running tasks, for interactive
//! queries. Queries read the stores through it, never through a stream thread's task
//! manager, so they do not wait behind processing or commits: each store has a lock of
//! its own, held by the stream thread for one store operation at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use super::task_stores::{StoreSlot, TaskStores};
use crate::processor::TaskId;

/// The stores of the tasks of one instance that can be queried: tasks appear once their
/// stores are restored and disappear before they close.
///
/// Standby copies and the stores of tasks still restoring are listed apart: only
/// queries that accept stale answers read them.
#[derive(Default)]
pub(crate) struct QueryableStores {
    by_store: RwLock<Published>,
    stale: RwLock<Published>,
}

type Published = HashMap<String, BTreeMap<TaskId, Arc<StoreSlot>>>;

fn publish(map: &RwLock<Published>, task: TaskId, stores: &TaskStores) {
    let mut by_store = map.write().unwrap_or_else(|e| e.into_inner());
    for (name, slot) in stores.shared_slots() {
        by_store
            .entry(name.to_string())
            .or_default()
            .insert(task, slot);
    }
}

fn withdraw(map: &RwLock<Published>, task: TaskId) {
    let mut by_store = map.write().unwrap_or_else(|e| e.into_inner());
    for tasks in by_store.values_mut() {
        tasks.remove(&task);
    }
    by_store.retain(|_, tasks| !tasks.is_empty());
}

fn slots(map: &RwLock<Published>, name: &str) -> Vec<(TaskId, Arc<StoreSlot>)> {
    map.read()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .map(|tasks| tasks.iter().map(|(id, slot)| (*id, slot.clone())).collect())
        .unwrap_or_default()
}

impl QueryableStores {
    /// Makes the stores of running task `task` queryable.
    pub fn publish(&self, task: TaskId, stores: &TaskStores) {
        publish(&self.by_store, task, stores);
    }

    /// Makes the stores of `task` unreachable (before they close).
    pub fn withdraw(&self, task: TaskId) {
        withdraw(&self.by_store, task);
    }

    /// The queryable slots of store `name`, by task.
    pub fn slots(&self, name: &str) -> Vec<(TaskId, Arc<StoreSlot>)> {
        slots(&self.by_store, name)
    }

    /// Makes the stores of `task` (a standby, or a task restoring) readable by stale
    /// queries.
    pub fn publish_stale(&self, task: TaskId, stores: &TaskStores) {
        publish(&self.stale, task, stores);
    }

    /// Takes the stale stores of `task` out of reach (before they close, or once the
    /// task runs).
    pub fn withdraw_stale(&self, task: TaskId) {
        withdraw(&self.stale, task);
    }

    /// The slots of store `name` in running tasks, then stale ones (standbys, tasks
    /// restoring) of other partitions.
    pub fn slots_with_stale(&self, name: &str) -> Vec<(TaskId, Arc<StoreSlot>)> {
        let mut found = self.slots(name);
        for (task, slot) in slots(&self.stale, name) {
            if !found.iter().any(|(t, _)| *t == task) {
                found.push((task, slot));
            }
        }
        found
    }
}
