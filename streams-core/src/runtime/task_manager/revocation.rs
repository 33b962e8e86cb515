//! Closing tasks: cleanly on revocation or shutdown (committed, checkpointed), or after
//! a failure (nothing committed, checkpoints deleted so the next owner restores).

use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use streams_state::OffsetCheckpoint;

use super::TaskManager;
use crate::runtime::StreamsError;

impl TaskManager {
    /// Commits and closes every task (eager rebalance or shutdown).
    pub fn on_revoked<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        // Ownership is moving: queries retry until the tasks run again, here or elsewhere.
        self.withdraw_all();
        // The record caches forward what they hold while the processors are still open.
        self.flush_caches()?;
        // Processors close first: what they write in close is part of the final commit.
        for task in self.tasks.values_mut() {
            task.clear_buffers();
            task.close_processors(&self.collector);
        }
        let result = if self.collector.is_transactional() {
            // A clean close under exactly-once: commit, then checkpoint (the checkpoint is
            // deleted while tasks run, so that a crash makes the next owner wipe and restore).
            match self.commit_transaction(consumer) {
                Ok(true) => self.checkpoint(),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            self.commit(consumer)
        };
        for task in self.tasks.values_mut() {
            task.close_stores_only();
        }
        self.restorer.clear();
        self.locks.clear();
        if !self.tasks.is_empty() {
            tracing::info!(thread = self.thread_name, tasks = ?self.task_ids(), "tasks revoked");
        }
        self.tasks.clear();
        self.pending.clear();
        self.by_partition.clear();
        self.paused.clear();
        self.lags.clear();
        result
    }

    /// Drops every task without running processors' `close` (its output would be part of
    /// no committed transaction) and forgets buffers, pauses and restoration.
    pub(super) fn drop_tasks(&mut self) {
        self.withdraw_all();
        for task in self.tasks.values_mut() {
            task.clear_buffers();
            task.close_stores_only();
        }
        self.tasks.clear();
        self.pending.clear();
        self.by_partition.clear();
        self.paused.clear();
        self.lags.clear();
        self.restorer.clear();
    }

    /// Takes every task's stores out of reach of queries.
    fn withdraw_all(&self) {
        for id in self.tasks.keys() {
            self.queryable.withdraw(*id);
            self.queryable.withdraw_stale(*id);
        }
    }

    /// Closes all tasks without committing (after a fatal error); under exactly-once the
    /// open transaction is aborted. Local state written since the last commit may not be
    /// in the changelog, so checkpoints are deleted: the next owner wipes and restores.
    pub fn close_dirty(&mut self) {
        for lock in self.locks.values() {
            if let Err(e) = OffsetCheckpoint::in_dir(lock.dir()).delete() {
                tracing::warn!(
                    thread = self.thread_name,
                    "cannot delete a checkpoint after a failure: {e}"
                );
            }
        }
        if let Err(e) = self.collector.abort_transaction() {
            tracing::warn!(
                thread = self.thread_name,
                "aborting the transaction at close failed: {e:?}"
            );
        }
        self.drop_tasks();
        self.locks.clear();
    }
}
