//! Accumulates nodes as DSL calls are made; `build` turns them into a [`Topology`].

use std::collections::{BTreeMap, HashMap, HashSet};

use std::sync::Arc;

use super::node::{NodeKind, NodeSpec, SourceTopics, TopicName};
use super::{InternalTopic, Subtopology, Topology, TopologyError};
use crate::state::global::GlobalTableSpec;
use crate::state::StoreDefinition;

/// The mutable graph behind a `StreamsBuilder`. Errors found while the DSL is used (a
/// duplicate name, a missing serde) are kept and reported by `build`, so DSL calls stay
/// infallible and chainable.
#[derive(Default)]
pub(crate) struct TopologyBuilder {
    nodes: Vec<NodeSpec>,
    counter: usize,
    internal_topics: Vec<InternalTopic>,
    stores: BTreeMap<String, Arc<StoreDefinition>>,
    global_tables: Vec<GlobalTableSpec>,
    errors: Vec<TopologyError>,
}

impl TopologyBuilder {
    /// A fresh generated name, `<PREFIX><10-digit index>` as Kafka Streams names nodes.
    pub fn next_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}{:010}", self.counter);
        self.counter += 1;
        name
    }

    pub fn add_node(&mut self, name: String, kind: NodeKind, parents: Vec<usize>) -> usize {
        self.nodes.push(NodeSpec {
            name,
            kind,
            parents,
            stores: Vec::new(),
        });
        self.nodes.len() - 1
    }

    pub fn rename(&mut self, node: usize, name: impl Into<String>) {
        self.nodes[node].name = name.into();
    }

    pub fn add_internal_topic(&mut self, topic: InternalTopic) {
        self.internal_topics.push(topic);
    }

    /// Whether a state store named `name` is declared.
    pub fn has_store(&self, name: &str) -> bool {
        self.stores.contains_key(name)
    }

    /// Declares a state store; processors connect to it by name.
    pub fn add_store(&mut self, definition: StoreDefinition) {
        if self.stores.contains_key(&definition.name) {
            self.report(TopologyError::Invalid(format!(
                "two state stores are named {}",
                definition.name
            )));
            return;
        }
        self.stores
            .insert(definition.name.clone(), Arc::new(definition));
    }

    /// Declares a global table: `topic` copied in full into store `definition` on every
    /// instance.
    pub fn add_global_table(&mut self, topic: &str, definition: StoreDefinition) {
        let taken = self.stores.contains_key(&definition.name)
            || self
                .global_tables
                .iter()
                .any(|g| g.store.name == definition.name);
        if taken {
            self.report(TopologyError::Invalid(format!(
                "two state stores are named {}",
                definition.name
            )));
            return;
        }
        self.global_tables.push(GlobalTableSpec {
            topic: topic.to_string(),
            store: Arc::new(definition),
        });
    }

    pub fn connect_store(&mut self, node: usize, store: &str) {
        self.nodes[node].stores.push(store.to_string());
    }

    pub fn report(&mut self, error: TopologyError) {
        self.errors.push(error);
    }

    pub fn build(self) -> Result<Topology, TopologyError> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(error);
        }
        let mut names = HashSet::new();
        for node in &self.nodes {
            if !names.insert(node.name.as_str()) {
                return Err(TopologyError::DuplicateName(node.name.clone()));
            }
        }
        let mut readers: HashMap<&TopicName, &str> = HashMap::new();
        for node in &self.nodes {
            if let NodeKind::Source {
                topics: SourceTopics::Names(topics),
                ..
            } = &node.kind
            {
                for topic in topics {
                    if let Some(other) = readers.insert(topic, &node.name) {
                        return Err(TopologyError::TopicReadTwice {
                            topic: topic.name.clone(),
                            first: other.to_string(),
                            second: node.name.clone(),
                        });
                    }
                }
            }
        }
        if self.nodes.is_empty() && self.global_tables.is_empty() {
            return Err(TopologyError::Empty);
        }
        for node in &self.nodes {
            if let Some(missing) = node.stores.iter().find(|s| !self.stores.contains_key(*s)) {
                return Err(TopologyError::Invalid(format!(
                    "processor {} uses state store {missing}, which was never added; add it with StreamsBuilder::add_state_store",
                    node.name
                )));
            }
        }
        let subtopologies = group_into_subtopologies(&self.nodes);
        Ok(Topology {
            nodes: self.nodes,
            subtopologies,
            internal_topics: self.internal_topics,
            stores: self.stores,
            global_tables: self.global_tables,
        })
    }
}

/// Nodes connected by an edge or by a shared state store run in the same task, so they
/// form one sub-topology. Sub-topologies are numbered by their first node.
fn group_into_subtopologies(nodes: &[NodeSpec]) -> Vec<Subtopology> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let mut store_owner: HashMap<&str, usize> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for &p in &node.parents {
            union(&mut parent, i, p);
        }
        for store in &node.stores {
            let owner = *store_owner.entry(store.as_str()).or_insert(i);
            union(&mut parent, i, owner);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..nodes.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    groups
        .into_values()
        .enumerate()
        .map(|(id, nodes)| Subtopology {
            id: id as u32,
            nodes,
        })
        .collect()
}
