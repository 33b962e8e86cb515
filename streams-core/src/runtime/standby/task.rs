//! One standby task: a copy of an active task's persistent stores, kept in the task's
//! own state directory by applying its changelogs, and checkpointed so that the task,
//! when it becomes active here, restores only what the copy had not applied yet.

use std::collections::BTreeMap;

use streams_state::{ChangelogRecord, StoreError, TaskDirLock, TopicPartition};

use crate::processor::TaskId;
use crate::runtime::task_state::TaskState;
use crate::runtime::StreamsError;
use crate::state::task_stores::TaskStores;

/// Where one changelog partition of a standby stands.
#[derive(Clone, Debug)]
pub(crate) struct ChangelogPosition {
    /// The store it fills.
    pub store: String,
    /// The next offset to apply.
    pub position: i64,
    /// The end of the changelog when last looked up (`None` before the first lookup).
    pub end: Option<i64>,
}

/// A standby task with its stores open and its directory locked.
pub(crate) struct StandbyTask {
    pub id: TaskId,
    pub stores: TaskStores,
    _lock: Option<TaskDirLock>,
    pub changelogs: BTreeMap<TopicPartition, ChangelogPosition>,
    /// Records applied since the standby was opened.
    pub applied: u64,
}

impl StandbyTask {
    /// The standby of `id` over its opened local state; each changelog partition starts
    /// at the checkpoint (or the beginning of the log, `0`).
    pub fn new(id: TaskId, state: TaskState) -> Self {
        let changelogs = state
            .stores
            .changelog_partitions()
            .into_iter()
            .map(|(tp, store)| {
                let position = state.checkpointed.get(&tp).copied().unwrap_or(0);
                (
                    tp,
                    ChangelogPosition {
                        store,
                        position,
                        end: None,
                    },
                )
            })
            .collect();
        StandbyTask {
            id,
            stores: state.stores,
            _lock: state.lock,
            changelogs,
            applied: 0,
        }
    }

    /// Applies changelog records of `tp` up to offset `last` (inclusive).
    pub fn apply(
        &mut self,
        tp: &TopicPartition,
        records: &[ChangelogRecord],
        last: i64,
    ) -> Result<(), StreamsError> {
        let Some(changelog) = self.changelogs.get_mut(tp) else {
            return Ok(());
        };
        self.stores
            .restore(&changelog.store, records)
            .map_err(|e| {
                StreamsError::state(
                    format!("updating standby task {} from {}", self.id, tp.topic),
                    e,
                )
            })?;
        changelog.position = changelog.position.max(last + 1);
        self.applied += records.len() as u64;
        Ok(())
    }

    /// Flushes the stores and records how far they are, so that an active task opening
    /// this directory restores only the rest.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.stores.flush()?;
        let offsets = self
            .changelogs
            .iter()
            .map(|(tp, c)| (tp.clone(), c.position))
            .collect();
        self.stores.write_checkpoint(&offsets)
    }

    /// Checkpoints and closes the stores; the directory lock goes with `self`.
    pub fn close(self) {
        if let Err(e) = self.checkpoint() {
            tracing::warn!(task = %self.id, "checkpointing the standby failed: {e}");
        }
        self.stores.close();
        tracing::info!(task = %self.id, applied = self.applied, "standby closed");
    }
}
