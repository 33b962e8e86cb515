//! The Processor API: user-written processors with full control over forwarding,
//! punctuation and (with streams-state) state stores.
//!
//! A [`Processor`] receives each record with a [`ProcessorContext`] and forwards any number
//! of records, of any key and value type, to its children. A [`FixedKeyProcessor`] may
//! change only values, so the stream keeps its partitioning. Both are plugged into a
//! stream with `KStream::process` / `KStream::process_values`, which take a factory:
//! each task gets its own processor instance.
//!
//! ```
//! use streams_core::processor::{Processor, ProcessorContext, ProcessError, Punctuation, PunctuationType};
//! use streams_core::Record;
//! use std::time::Duration;
//!
//! /// Counts records and emits the running count every 10 s of stream time.
//! #[derive(Default)]
//! struct Counter { seen: i64 }
//!
//! impl Processor<String, String, String, i64> for Counter {
//!     fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<(), ProcessError> {
//!         ctx.schedule(Duration::from_secs(10), PunctuationType::StreamTime);
//!         Ok(())
//!     }
//!     fn process(&mut self, _ctx: &mut ProcessorContext<'_, String, i64>, _r: Record<String, String>) -> Result<(), ProcessError> {
//!         self.seen += 1;
//!         Ok(())
//!     }
//!     fn punctuate(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, p: Punctuation) -> Result<(), ProcessError> {
//!         ctx.forward(Record::new("count".to_string(), self.seen, p.timestamp))
//!     }
//! }
//! ```

mod context;
mod error;
mod punctuation;
mod task_id;

use std::marker::PhantomData;

pub use context::{FixedKeyContext, ProcessorContext, TaskContext};
pub use error::ProcessError;
pub(crate) use punctuation::Punctuations;
pub use punctuation::{Punctuation, PunctuationType, PunctuatorId};
pub use task_id::TaskId;

use crate::graph::{Data, ErasedNode, ErasedRecord, Exec};
use crate::record::{Headers, Record};

/// A user processor: receives records of `KIn`/`VIn`, forwards records of `KOut`/`VOut`.
///
/// The runtime calls `init` once when the task starts, `process` for each record,
/// `punctuate` for each due schedule, and `close` when the task closes.
pub trait Processor<KIn, VIn, KOut, VOut>: Send + 'static {
    /// Called once before the first record; schedule punctuators here.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<(), ProcessError>;

    /// Called for each due schedule made with [`TaskContext::schedule`].
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KOut, VOut>,
        _punctuation: Punctuation,
    ) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called once when the task closes.
    fn close(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) {}
}

/// A record whose key a [`FixedKeyProcessor`] can read but not change.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedKeyRecord<K, V> {
    record: Record<K, V>,
}

impl<K, V> FixedKeyRecord<K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.record.key
    }
    /// The value.
    pub fn value(&self) -> &V {
        &self.record.value
    }
    /// The timestamp in ms.
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp
    }
    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.record.headers
    }
    /// The same record with another value.
    pub fn with_value<V2>(self, value: V2) -> FixedKeyRecord<K, V2> {
        FixedKeyRecord {
            record: self.record.with_value(value),
        }
    }
    /// The same record with another timestamp.
    pub fn with_timestamp(self, timestamp: i64) -> Self {
        FixedKeyRecord {
            record: self.record.with_timestamp(timestamp),
        }
    }
    /// The same record with other headers.
    pub fn with_headers(self, headers: Headers) -> Self {
        FixedKeyRecord {
            record: self.record.with_headers(headers),
        }
    }
    /// Takes the value out, dropping the rest.
    pub fn into_value(self) -> V {
        self.record.value
    }
    pub(crate) fn into_record(self) -> Record<K, V> {
        self.record
    }
}

/// A processor that may change values but never keys.
pub trait FixedKeyProcessor<K, VIn, VOut>: Send + 'static {
    /// Called once before the first record.
    fn init(&mut self, _ctx: &mut FixedKeyContext<'_, K, VOut>) -> Result<(), ProcessError> {
        Ok(())
    }
    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut FixedKeyContext<'_, K, VOut>,
        record: FixedKeyRecord<K, VIn>,
    ) -> Result<(), ProcessError>;
    /// Called for each due schedule.
    fn punctuate(
        &mut self,
        _ctx: &mut FixedKeyContext<'_, K, VOut>,
        _punctuation: Punctuation,
    ) -> Result<(), ProcessError> {
        Ok(())
    }
    /// Called once when the task closes.
    fn close(&mut self, _ctx: &mut FixedKeyContext<'_, K, VOut>) {}
}

fn typed<K: Data, V: Data>(
    exec: &Exec<'_>,
    me: usize,
    record: ErasedRecord<'_>,
) -> Result<Record<K, V>, ProcessError> {
    record
        .into_typed()
        .map_err(|(key, value)| ProcessError::TypeMismatch {
            node: exec.node_name(me).to_string(),
            key,
            value,
        })
}

/// Runs a typed [`Processor`] as a node of the erased graph.
pub(crate) struct ProcessorNode<P, KIn, VIn, KOut, VOut> {
    processor: P,
    _types: PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<P, KIn, VIn, KOut, VOut> ProcessorNode<P, KIn, VIn, KOut, VOut> {
    pub(crate) fn new(processor: P) -> Self {
        ProcessorNode {
            processor,
            _types: PhantomData,
        }
    }
}

impl<P, KIn, VIn, KOut, VOut> ErasedNode for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: Data,
    VIn: Data,
    KOut: Data,
    VOut: Data,
{
    fn init(&mut self, exec: &Exec<'_>, me: usize) -> Result<(), ProcessError> {
        self.processor.init(&mut ProcessorContext::new(exec, me))
    }
    fn process(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError> {
        let record = typed(exec, me, record)?;
        self.processor
            .process(&mut ProcessorContext::new(exec, me), record)
    }
    fn punctuate(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        p: Punctuation,
    ) -> Result<(), ProcessError> {
        self.processor
            .punctuate(&mut ProcessorContext::new(exec, me), p)
    }
    fn close(&mut self, exec: &Exec<'_>, me: usize) {
        self.processor.close(&mut ProcessorContext::new(exec, me))
    }
}

/// Runs a typed [`FixedKeyProcessor`] as a node of the erased graph.
pub(crate) struct FixedKeyProcessorNode<P, K, VIn, VOut> {
    processor: P,
    _types: PhantomData<fn(K, VIn, VOut)>,
}

impl<P, K, VIn, VOut> FixedKeyProcessorNode<P, K, VIn, VOut> {
    pub(crate) fn new(processor: P) -> Self {
        FixedKeyProcessorNode {
            processor,
            _types: PhantomData,
        }
    }
}

impl<P, K, VIn, VOut> ErasedNode for FixedKeyProcessorNode<P, K, VIn, VOut>
where
    P: FixedKeyProcessor<K, VIn, VOut>,
    K: Data,
    VIn: Data,
    VOut: Data,
{
    fn init(&mut self, exec: &Exec<'_>, me: usize) -> Result<(), ProcessError> {
        self.processor.init(&mut FixedKeyContext::new(exec, me))
    }
    fn process(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        record: ErasedRecord<'_>,
    ) -> Result<(), ProcessError> {
        let record = typed(exec, me, record)?;
        self.processor.process(
            &mut FixedKeyContext::new(exec, me),
            FixedKeyRecord { record },
        )
    }
    fn punctuate(
        &mut self,
        exec: &Exec<'_>,
        me: usize,
        p: Punctuation,
    ) -> Result<(), ProcessError> {
        self.processor
            .punctuate(&mut FixedKeyContext::new(exec, me), p)
    }
    fn close(&mut self, exec: &Exec<'_>, me: usize) {
        self.processor.close(&mut FixedKeyContext::new(exec, me))
    }
}
