//! Record-at-a-time operators without state: filter, map, flat_map, select_key, peek, foreach...
//!
//! Every one of them is a function from one input record to zero or more output records,
//! so they share one processor type; the DSL supplies the function.

use std::sync::Arc;

use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;

/// Receives the records an operator emits.
pub(crate) type Emit<'e, K, V> = &'e mut dyn FnMut(Record<K, V>) -> Result<(), ProcessError>;

/// The function behind a stateless operator.
pub(crate) type StatelessFn<KIn, VIn, KOut, VOut> =
    Arc<dyn Fn(Record<KIn, VIn>, Emit<'_, KOut, VOut>) -> Result<(), ProcessError> + Send + Sync>;

/// Applies a [`StatelessFn`] to each record and forwards what it emits.
pub(crate) struct Stateless<KIn, VIn, KOut, VOut> {
    f: StatelessFn<KIn, VIn, KOut, VOut>,
}

impl<KIn, VIn, KOut, VOut> Stateless<KIn, VIn, KOut, VOut> {
    pub fn new(f: StatelessFn<KIn, VIn, KOut, VOut>) -> Self {
        Stateless { f }
    }
}

impl<KIn: Data, VIn: Data, KOut: Data, VOut: Data> Processor<KIn, VIn, KOut, VOut>
    for Stateless<KIn, VIn, KOut, VOut>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<(), ProcessError> {
        (self.f)(record, &mut |out| ctx.forward(out))
    }
}
