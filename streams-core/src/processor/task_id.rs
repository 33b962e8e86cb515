//! Task identity: a sub-topology and a partition number.

use std::fmt;

/// Identifies a task: one sub-topology working on one partition number of its source
/// topics. Displayed as Kafka Streams does, `<subtopology>_<partition>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// Index of the sub-topology.
    pub subtopology: u32,
    /// Partition number of the task's source topics.
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}
