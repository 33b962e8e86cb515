//! `KStream::split`: route each record to the first branch whose predicate matches.

use std::collections::HashMap;
use std::sync::Arc;

use crate::dsl::KStream;
use crate::graph::{Data, PassThrough};
use crate::processor::{ProcessError, Processor, ProcessorContext, ProcessorNode};
use crate::record::Record;
use crate::topology::node::NodeKind;

type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream being split into named branches; finish with
/// [`default_branch`](Self::default_branch) or [`no_default_branch`](Self::no_default_branch).
///
/// Each record goes to the first branch whose predicate matches (or to the default
/// branch, or nowhere). Branch names are the split's prefix plus the branch name.
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    prefix: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, prefix: String) -> Self {
        BranchedKStream {
            stream,
            prefix,
            branches: Vec::new(),
        }
    }

    /// Adds a branch named `name` taking the records that match `predicate` and no
    /// earlier branch.
    pub fn branch(
        mut self,
        name: impl AsRef<str>,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.branches.push((
            format!("{}{}", self.prefix, name.as_ref()),
            Arc::new(predicate),
        ));
        self
    }

    /// Ends the split with a branch `name` for records that matched no predicate.
    pub fn default_branch(mut self, name: impl AsRef<str>) -> HashMap<String, KStream<K, V>> {
        self.branches.push((
            format!("{}{}", self.prefix, name.as_ref()),
            Arc::new(|_: &K, _: &V| true),
        ));
        self.finish()
    }

    /// Ends the split; records that matched no predicate are dropped.
    pub fn no_default_branch(self) -> HashMap<String, KStream<K, V>> {
        self.finish()
    }

    fn finish(self) -> HashMap<String, KStream<K, V>> {
        let builder = self.stream.builder.clone();
        let mut b = builder.borrow_mut();
        let split_name = b.next_name("KSTREAM-BRANCH-");
        let predicates: Arc<Vec<(String, Predicate<K, V>)>> = Arc::new(
            self.branches
                .iter()
                .map(|(name, p)| (child_name(&split_name, &self.prefix, name), p.clone()))
                .collect(),
        );
        let factory_predicates = predicates.clone();
        let split = b.add_node(
            split_name.clone(),
            NodeKind::Processor {
                factory: Arc::new(move || {
                    Box::new(ProcessorNode::new(Split {
                        branches: factory_predicates.clone(),
                    }))
                }),
            },
            vec![self.stream.node],
        );
        let mut out = HashMap::new();
        for ((branch, _), (child, _)) in self.branches.iter().zip(predicates.iter()) {
            let node = b.add_node(
                child.clone(),
                NodeKind::Processor {
                    factory: Arc::new(|| Box::new(PassThrough)),
                },
                vec![split],
            );
            out.insert(
                branch.clone(),
                self.stream.derive(node, self.stream.repartition_required),
            );
        }
        out
    }
}

/// Node name of a branch: unique even without a user prefix.
fn child_name(split_name: &str, prefix: &str, branch: &str) -> String {
    if prefix.is_empty() {
        format!("{split_name}-{branch}")
    } else {
        branch.to_string()
    }
}

struct Split<K, V> {
    branches: Arc<Vec<(String, Predicate<K, V>)>>,
}

impl<K: Data, V: Data> Processor<K, V, K, V> for Split<K, V> {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, V>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        match self
            .branches
            .iter()
            .find(|(_, p)| p(&record.key, &record.value))
        {
            Some((child, _)) => ctx.forward_to(child, record),
            None => Ok(()),
        }
    }
}
