//! The state a task's nodes share while it processes: graph layout, task state, collector.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use super::collector::RecordCollector;
use super::{ErasedNode, ErasedRecord};
use crate::processor::{ProcessError, Punctuations, TaskId};
use crate::record::RecordMetadata;
use crate::state::task_stores::TaskStores;

/// Name and children of one node of an instantiated graph.
#[derive(Clone, Debug)]
pub(crate) struct NodeLayout {
    pub name: String,
    pub children: Vec<usize>,
    /// State stores the node is connected to and may use.
    pub stores: Vec<String>,
}

/// Where the record being processed was read from; the public [`RecordMetadata`] is
/// made from it only when a processor asks (the topic name is shared, not copied).
#[derive(Clone, Debug)]
pub(crate) struct CurrentRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

impl CurrentRecord {
    /// The public form.
    pub fn metadata(&self) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Per-task state reachable from every node's context.
pub(crate) struct TaskState {
    pub task_id: TaskId,
    pub application_id: Arc<str>,
    /// Highest record timestamp seen by the task; `i64::MIN` before the first record.
    pub stream_time: Cell<i64>,
    /// Wall-clock time in ms, set by the runtime (system clock) or the test driver.
    pub wall_clock: Cell<i64>,
    pub current: RefCell<Option<CurrentRecord>>,
    pub punctuations: RefCell<Punctuations>,
    pub commit_requested: Cell<bool>,
    /// The task's state stores.
    pub stores: TaskStores,
}

impl TaskState {
    pub fn new(task_id: TaskId, application_id: Arc<str>, stores: TaskStores) -> Self {
        TaskState {
            task_id,
            application_id,
            stream_time: Cell::new(i64::MIN),
            wall_clock: Cell::new(0),
            current: RefCell::new(None),
            punctuations: RefCell::new(Punctuations::default()),
            commit_requested: Cell::new(false),
            stores,
        }
    }
}

/// Everything a node needs while it runs. Covariant in `'a`, so contexts can borrow it.
pub(crate) struct Exec<'a> {
    pub nodes: &'a [RefCell<Box<dyn ErasedNode>>],
    pub layout: &'a [NodeLayout],
    pub state: &'a TaskState,
    pub collector: &'a dyn RecordCollector,
}

impl Exec<'_> {
    /// Sends `record` depth-first to the children of `from` (or only to the child named
    /// `child`), copying it for all but the last receiver.
    pub fn forward(
        &self,
        from: usize,
        child: Option<&str>,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError> {
        let children = &self.layout[from].children;
        match child {
            Some(name) => {
                let target = children
                    .iter()
                    .copied()
                    .find(|&c| self.layout[c].name == name)
                    .ok_or_else(|| ProcessError::UnknownChild {
                        node: self.layout[from].name.clone(),
                        child: name.to_string(),
                    })?;
                self.deliver(target, record)
            }
            None => match children.split_last() {
                None => Ok(()),
                Some((&last, others)) => {
                    for &c in others {
                        let mut copy = record.clone_boxed();
                        self.deliver(c, ErasedRecord::from_boxed(&mut copy))?;
                    }
                    self.deliver(last, record)
                }
            },
        }
    }

    fn deliver(&self, node: usize, record: ErasedRecord<'_>) -> Result<(), ProcessError> {
        self.nodes[node].borrow_mut().process(self, node, record)
    }

    /// Name of node `me`, for error messages.
    pub fn node_name(&self, me: usize) -> &str {
        &self.layout[me].name
    }
}
