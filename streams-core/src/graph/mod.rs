//! The processor graph of one task: type-erased nodes and the execution context they share.
//!
//! The DSL and the Processor API are typed (`KStream<K, V>`, `Processor<KIn, VIn, KOut, VOut>`);
//! a task runs a graph whose edges carry type-erased records. Typed wrappers downcast at
//! each node, which the topology builder guarantees to succeed: a mismatch is a bug in
//! this crate, reported as [`crate::processor::ProcessError::TypeMismatch`].

mod collector;
mod erased;
mod exec;
mod node;

pub(crate) use collector::{OutgoingRecord, RecordCollector};
pub use erased::Data;
pub(crate) use erased::{boxed, BoxedRecord, ErasedRecord};
pub(crate) use exec::{CurrentRecord, Exec, NodeLayout, TaskState};
pub(crate) use node::{ErasedNode, NodeFactory, PassThrough};
