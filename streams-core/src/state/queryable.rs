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
#[derive(Default)]
pub(crate) struct QueryableStores {
    by_store: RwLock<HashMap<String, BTreeMap<TaskId, Arc<StoreSlot>>>>,
}

impl QueryableStores {
    /// Makes the stores of running task `task` queryable.
    pub fn publish(&self, task: TaskId, stores: &TaskStores) {
        let mut by_store = self.by_store.write().unwrap_or_else(|e| e.into_inner());
        for (name, slot) in stores.shared_slots() {
            by_store
                .entry(name.to_string())
                .or_default()
                .insert(task, slot);
        }
    }

    /// Makes the stores of `task` unreachable (before they close).
    pub fn withdraw(&self, task: TaskId) {
        let mut by_store = self.by_store.write().unwrap_or_else(|e| e.into_inner());
        for tasks in by_store.values_mut() {
            tasks.remove(&task);
        }
        by_store.retain(|_, tasks| !tasks.is_empty());
    }

    /// The queryable slots of store `name`, by task.
    pub fn slots(&self, name: &str) -> Vec<(TaskId, Arc<StoreSlot>)> {
        self.by_store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|tasks| tasks.iter().map(|(id, slot)| (*id, slot.clone())).collect())
            .unwrap_or_default()
    }
}
