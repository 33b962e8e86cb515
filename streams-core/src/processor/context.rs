//! What a processor can do besides returning: forward, schedule, commit, read metadata.

use std::marker::PhantomData;
use std::time::Duration;

use super::{FixedKeyRecord, ProcessError, PunctuationType, PunctuatorId, TaskId};
use crate::graph::{Data, ErasedRecord, Exec};
use crate::record::{Record, RecordMetadata};
use crate::state::task_stores::StoreSlot;
use crate::state::{GlobalKeyValueStore, KeyValueStore, SessionStore, WindowStore};

/// What every processor context offers besides forwarding: scheduling, commits, time,
/// metadata of the current record and the task's identity.
pub struct TaskContext<'a> {
    exec: &'a Exec<'a>,
    node: usize,
}

impl<'a> TaskContext<'a> {
    /// Schedules periodic calls of this processor's `punctuate`.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> PunctuatorId {
        let now = self.exec.state.wall_clock.get();
        self.exec
            .state
            .punctuations
            .borrow_mut()
            .schedule(self.node, kind, interval, now)
    }

    /// Cancels a schedule made with [`schedule`](Self::schedule).
    pub fn cancel(&mut self, id: PunctuatorId) {
        self.exec.state.punctuations.borrow_mut().cancel(id);
    }

    /// Asks the runtime to commit the task as soon as possible, before the commit interval.
    pub fn commit(&mut self) {
        self.exec.state.commit_requested.set(true);
    }

    /// Topic, partition and offset of the record being processed; `None` in punctuation.
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.exec
            .state
            .current
            .borrow()
            .as_ref()
            .map(|c| c.metadata())
    }

    /// The task's stream time: the highest record timestamp it has processed
    /// (`i64::MIN` before the first record).
    pub fn stream_time(&self) -> i64 {
        self.exec.state.stream_time.get()
    }

    /// Wall-clock time in ms (the test driver's clock under the driver).
    pub fn wall_clock_time(&self) -> i64 {
        self.exec.state.wall_clock.get()
    }

    /// The task this processor instance belongs to.
    pub fn task_id(&self) -> TaskId {
        self.exec.state.task_id
    }

    /// The application id of the running topology.
    pub fn application_id(&self) -> &str {
        &self.exec.state.application_id
    }

    /// The task's execution state, for the crate's own operators.
    pub(crate) fn exec(&self) -> &'a Exec<'a> {
        self.exec
    }

    /// This processor's node index.
    pub(crate) fn node(&self) -> usize {
        self.node
    }

    /// This processor's node name.
    pub fn node_name(&self) -> &str {
        self.exec.node_name(self.node)
    }

    /// The slot of store `name`, if this processor is connected to it.
    fn connected_store(&self, name: &str) -> Result<&'a StoreSlot, ProcessError> {
        let exec: &'a Exec<'a> = self.exec;
        let store_error = |reason: String| ProcessError::Store {
            store: name.to_string(),
            reason,
        };
        if !exec.layout[self.node].stores.iter().any(|s| s == name) {
            return Err(store_error(format!(
                "processor {} is not connected to it; list it in process_with_stores",
                exec.node_name(self.node)
            )));
        }
        exec.state
            .stores
            .slot(name)
            .ok_or_else(|| store_error("no such store in this task".to_string()))
    }

    /// The global store `name` (of a [`GlobalKTable`](crate::dsl::GlobalKTable)), read-only
    /// and shared by every task; no connection is needed.
    pub fn global_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<GlobalKeyValueStore<'a, K, V>, ProcessError> {
        let exec: &'a Exec<'a> = self.exec;
        let slot = exec
            .state
            .stores
            .global(name)
            .ok_or_else(|| ProcessError::Store {
                store: name.to_string(),
                reason: "no such global store".to_string(),
            })?;
        GlobalKeyValueStore::from_slot(slot)
    }

    /// The key-value store `name`, typed by the serdes it was declared with. The
    /// processor must be connected to it (`process_with_stores(.., &[name])`).
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStore<'a, K, V>, ProcessError> {
        KeyValueStore::from_slot(self.connected_store(name)?)
    }

    /// The window store `name` (declared with [`Stores::window`](crate::state::Stores::window)),
    /// typed by the serdes it was declared with. The processor must be connected to it
    /// (`process_with_stores(.., &[name])`); asking for other types or another store kind
    /// fails, naming both.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStore<'a, K, V>, ProcessError> {
        WindowStore::from_slot(self.connected_store(name)?)
    }

    /// The session store `name` (declared with
    /// [`Stores::session`](crate::state::Stores::session)), typed by the serdes it was
    /// declared with. The processor must be connected to it
    /// (`process_with_stores(.., &[name])`); asking for other types or another store kind
    /// fails, naming both.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStore<'a, K, V>, ProcessError> {
        SessionStore::from_slot(self.connected_store(name)?)
    }

    /// Names of this processor's children, in the order they were connected.
    pub fn children(&self) -> Vec<&str> {
        self.exec.layout[self.node]
            .children
            .iter()
            .map(|&c| self.exec.layout[c].name.as_str())
            .collect()
    }
}

/// The context handed to a [`Processor`](super::Processor) on every call, typed by the
/// key and value types it forwards. Derefs to [`TaskContext`] for scheduling, commits,
/// time and metadata.
///
/// Forwarding is depth-first and synchronous, as in Kafka Streams: when `forward`
/// returns, every downstream node has processed the record.
pub struct ProcessorContext<'a, K, V> {
    base: TaskContext<'a>,
    _out: PhantomData<fn(K, V)>,
}

impl<'a, K: Data, V: Data> ProcessorContext<'a, K, V> {
    pub(crate) fn new(exec: &'a Exec<'a>, node: usize) -> Self {
        ProcessorContext {
            base: TaskContext { exec, node },
            _out: PhantomData,
        }
    }

    /// Sends `record` to every child of this processor.
    pub fn forward(&mut self, record: Record<K, V>) -> Result<(), ProcessError> {
        let (exec, node) = (self.base.exec, self.base.node);
        exec.forward(node, None, ErasedRecord::new(&mut Some(record)))
    }

    /// Sends `record` only to the child named `child` (e.g. a branch of `split`).
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> Result<(), ProcessError> {
        let (exec, node) = (self.base.exec, self.base.node);
        exec.forward(node, Some(child), ErasedRecord::new(&mut Some(record)))
    }
}

/// The context of a [`FixedKeyProcessor`](super::FixedKeyProcessor): it forwards only
/// [`FixedKeyRecord`]s, whose key cannot change, so no repartition is needed downstream.
/// Derefs to [`TaskContext`].
pub struct FixedKeyContext<'a, K, V> {
    inner: ProcessorContext<'a, K, V>,
}

impl<'a, K: Data, V: Data> FixedKeyContext<'a, K, V> {
    pub(crate) fn new(exec: &'a Exec<'a>, node: usize) -> Self {
        FixedKeyContext {
            inner: ProcessorContext::new(exec, node),
        }
    }

    /// Sends `record` to every child.
    pub fn forward(&mut self, record: FixedKeyRecord<K, V>) -> Result<(), ProcessError> {
        self.inner.forward(record.into_record())
    }

    /// Sends `record` only to the child named `child`.
    pub fn forward_to(
        &mut self,
        child: &str,
        record: FixedKeyRecord<K, V>,
    ) -> Result<(), ProcessError> {
        self.inner.forward_to(child, record.into_record())
    }
}

macro_rules! deref_to_task_context {
    ($ty:ident, $($field:ident).+) => {
        impl<'a, K, V> std::ops::Deref for $ty<'a, K, V> {
            type Target = TaskContext<'a>;
            fn deref(&self) -> &Self::Target {
                &self.$($field).+
            }
        }
        impl<K, V> std::ops::DerefMut for $ty<'_, K, V> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.$($field).+
            }
        }
    };
}
deref_to_task_context!(ProcessorContext, base);
deref_to_task_context!(FixedKeyContext, inner.base);
