//! Implementations of the DSL operators, one file per operator family.

pub(crate) mod aggregate;
pub(crate) mod foreign_key;
pub(crate) mod join;
pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod split;
pub(crate) mod stateless;
pub(crate) mod stream_join;
pub(crate) mod suppress;
pub(crate) mod table;
pub(crate) mod windowed;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::graph::Data;
use crate::processor::{Processor, ProcessorNode};
use crate::topology::node::NodeKind;
use crate::topology::TopologyBuilder;

/// Adds a node running `make()`'s processor under `parents`, connected to `stores`.
pub(crate) fn add_processor_node<P, KIn, VIn, KOut, VOut>(
    builder: &Rc<RefCell<TopologyBuilder>>,
    prefix: &str,
    parents: Vec<usize>,
    stores: &[&str],
    make: impl Fn() -> P + Send + Sync + 'static,
) -> usize
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: Data,
    VIn: Data,
    KOut: Data,
    VOut: Data,
{
    let mut b = builder.borrow_mut();
    let name = b.next_name(prefix);
    let node = b.add_node(
        name,
        NodeKind::Processor {
            factory: Arc::new(move || {
                Box::new(ProcessorNode::<P, KIn, VIn, KOut, VOut>::new(make()))
            }),
        },
        parents,
    );
    for store in stores {
        b.connect_store(node, store);
    }
    node
}

/// Adds a node forwarding the records of all `parents` unchanged (the end of a join's two
/// sides).
pub(crate) fn add_merge_node(
    builder: &Rc<RefCell<TopologyBuilder>>,
    prefix: &str,
    parents: Vec<usize>,
) -> usize {
    let mut b = builder.borrow_mut();
    let name = b.next_name(prefix);
    b.add_node(
        name,
        NodeKind::Processor {
            factory: Arc::new(|| Box::new(crate::graph::PassThrough)),
        },
        parents,
    )
}
