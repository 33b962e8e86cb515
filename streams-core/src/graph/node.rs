//! The type-erased node interface that every source, processor and sink implements.

use std::sync::Arc;

use super::{ErasedRecord, Exec};
use crate::processor::{ProcessError, Punctuation};

/// A node of a task's processor graph.
pub(crate) trait ErasedNode: Send {
    fn init(&mut self, _exec: &Exec<'_>, _me: usize) -> Result<(), ProcessError> {
        Ok(())
    }
    fn process(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError>;
    fn punctuate(
        &mut self,
        _exec: &Exec<'_>,
        _me: usize,
        _p: Punctuation,
    ) -> Result<(), ProcessError> {
        Ok(())
    }
    fn close(&mut self, _exec: &Exec<'_>, _me: usize) {}
}

/// Creates a fresh node instance for each task.
pub(crate) type NodeFactory = Arc<dyn Fn() -> Box<dyn ErasedNode> + Send + Sync>;

/// A node that forwards every record unchanged (sources after decoding, merges).
pub(crate) struct PassThrough;

impl ErasedNode for PassThrough {
    fn process(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError> {
        exec.forward(me, None, record)
    }
}
