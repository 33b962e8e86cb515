//! The logical processor graph a `StreamsBuilder` produces, its split into
//! sub-topologies, and its description.
//!
//! A sub-topology is a connected part of the graph; the runtime runs one task per
//! sub-topology and partition number. Sub-topologies talk only through topics (for
//! example a repartition topic written by one and read by another).

mod builder;
mod describe;
pub(crate) mod node;

use std::cell::RefCell;
use std::collections::HashMap;

pub(crate) use builder::TopologyBuilder;
pub use describe::TopologyDescription;
pub use node::OffsetReset;
use node::{NodeKind, SinkTopic, SourceDecoder, SourceTopics, TopicName};

use crate::graph::{ErasedNode, NodeLayout, PassThrough};

/// Why a topology could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TopologyError {
    /// Two nodes have the same name.
    #[error("two nodes are named {0}")]
    DuplicateName(String),
    /// Two source nodes read the same topic.
    #[error(
        "topic {topic} is read by both {first} and {second}; read it once and share the stream"
    )]
    TopicReadTwice {
        /// The topic.
        topic: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
    /// A node needs a serde that neither it nor its upstream provided.
    #[error("{node} needs a {what} serde: pass one with Produced/Repartitioned, or keep the stream's serdes")]
    MissingSerde {
        /// The node.
        node: String,
        /// `"key"` or `"value"`.
        what: &'static str,
    },
    /// The builder has no nodes.
    #[error("the topology is empty: add at least one source")]
    Empty,
    /// A name or argument was not valid.
    #[error("invalid topology: {0}")]
    Invalid(String),
}

/// Kind of an internal topic the runtime creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InternalTopicKind {
    Repartition,
    /// The changelog of a key-value store.
    Changelog,
    /// The changelog of a window or session store: compacted, and deleted after
    /// `retention_ms` (the store's retention plus a day).
    WindowedChangelog {
        /// The topic's `retention.ms`.
        retention_ms: i64,
    },
}

/// An internal topic the topology needs; created by the runtime before processing.
#[derive(Clone, Debug)]
pub(crate) struct InternalTopic {
    pub name: TopicName,
    pub kind: InternalTopicKind,
    /// Fixed partition count, or `None` to take the upstream sub-topology's count.
    pub partitions: Option<i32>,
    /// When set (and `partitions` is not), the topic is co-partitioned with the
    /// sub-topology containing this node instead of its writer (foreign-key joins).
    pub like_node: Option<usize>,
}

/// A connected part of the graph, run as one task per partition number.
#[derive(Clone, Debug)]
pub(crate) struct Subtopology {
    pub id: u32,
    /// Node indices in creation order, which is a topological order.
    pub nodes: Vec<usize>,
}

/// A compiled processor topology, ready to run on `KafkaStreams` or the test driver.
pub struct Topology {
    pub(crate) nodes: Vec<node::NodeSpec>,
    pub(crate) subtopologies: Vec<Subtopology>,
    pub(crate) internal_topics: Vec<InternalTopic>,
    pub(crate) stores:
        std::collections::BTreeMap<String, std::sync::Arc<crate::state::StoreDefinition>>,
    pub(crate) global_tables: Vec<crate::state::global::GlobalTableSpec>,
}

/// A source of an instantiated graph: what it reads and how to decode it.
#[derive(Clone)]
pub(crate) struct InstanceSource {
    pub topics: SourceTopics,
    pub node: usize,
    pub decoder: SourceDecoder,
}

/// The nodes of one sub-topology, instantiated for one task.
pub(crate) struct GraphInstance {
    pub nodes: Vec<RefCell<Box<dyn ErasedNode>>>,
    pub layout: Vec<NodeLayout>,
    pub sources: Vec<InstanceSource>,
    by_topic: HashMap<String, usize>,
}

impl GraphInstance {
    /// Index into `sources` of the source reading `topic` (a resolved name).
    pub fn source_for(&self, topic: &str) -> Option<usize> {
        self.by_topic.get(topic).copied().or_else(|| {
            self.sources.iter().position(|s| match &s.topics {
                SourceTopics::Pattern(p) => p.is_match(topic),
                SourceTopics::Names(_) => false,
            })
        })
    }
}

impl Topology {
    /// The printable structure: sub-topologies with their sources, processors and sinks.
    pub fn describe(&self) -> TopologyDescription {
        describe::describe(self)
    }

    /// Number of sub-topologies.
    pub fn subtopology_count(&self) -> usize {
        self.subtopologies.len()
    }

    /// Source topics of sub-topology `id` (resolved names; patterns excluded).
    pub(crate) fn source_topics(&self, id: u32, application_id: &str) -> Vec<String> {
        let mut out = Vec::new();
        for &n in &self.subtopologies[id as usize].nodes {
            if let NodeKind::Source {
                topics: SourceTopics::Names(names),
                ..
            } = &self.nodes[n].kind
            {
                out.extend(names.iter().map(|t| t.resolve(application_id)));
            }
        }
        out
    }

    /// The groups of source nodes of sub-topology `id` whose topics must be
    /// co-partitioned (same partition count), as Kafka Streams' co-partition groups: the
    /// sources upstream of the nodes that share a state store (the two sides of a join
    /// each read the other's store). Sources merged without a join need not be: the task
    /// of partition `n` reads partition `n` of each topic that has one.
    pub(crate) fn copartitioned_sources(&self, id: u32) -> Vec<Vec<usize>> {
        use std::collections::{BTreeMap, BTreeSet};
        let nodes = &self.subtopologies[id as usize].nodes;
        // Sources upstream of each node (nodes are in topological order).
        let mut upstream: HashMap<usize, BTreeSet<usize>> = HashMap::new();
        for &n in nodes {
            let sources = match &self.nodes[n].kind {
                NodeKind::Source { .. } => BTreeSet::from([n]),
                _ => self.nodes[n]
                    .parents
                    .iter()
                    .flat_map(|p| upstream.get(p).into_iter().flatten().copied())
                    .collect(),
            };
            upstream.insert(n, sources);
        }
        let mut by_store: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &n in nodes {
            for store in &self.nodes[n].stores {
                by_store.entry(store.as_str()).or_default().push(n);
            }
        }
        // Groups sharing a source are one group.
        let mut groups: Vec<BTreeSet<usize>> = Vec::new();
        for users in by_store.values().filter(|users| users.len() > 1) {
            let mut group: BTreeSet<usize> = users
                .iter()
                .flat_map(|n| upstream[n].iter().copied())
                .collect();
            groups.retain(|other| {
                if other.is_disjoint(&group) {
                    true
                } else {
                    group.extend(other.iter().copied());
                    false
                }
            });
            groups.push(group);
        }
        groups
            .into_iter()
            .filter(|g| g.len() > 1)
            .map(|g| g.into_iter().collect())
            .collect()
    }

    /// The topics source node `node` reads: its names resolved, or the topics among
    /// `existing` its pattern matches.
    pub(crate) fn topics_of_source<'a>(
        &self,
        node: usize,
        application_id: &str,
        existing: impl Iterator<Item = &'a String>,
    ) -> Vec<String> {
        match &self.nodes[node].kind {
            NodeKind::Source {
                topics: SourceTopics::Names(names),
                ..
            } => names.iter().map(|t| t.resolve(application_id)).collect(),
            NodeKind::Source {
                topics: SourceTopics::Pattern(p),
                ..
            } => {
                let mut matched: Vec<String> =
                    existing.filter(|t| p.is_match(t)).cloned().collect();
                matched.sort();
                matched
            }
            _ => Vec::new(),
        }
    }

    /// Source patterns of sub-topology `id`.
    pub(crate) fn source_patterns(&self, id: u32) -> Vec<regex::Regex> {
        self.subtopologies[id as usize]
            .nodes
            .iter()
            .filter_map(|&n| match &self.nodes[n].kind {
                NodeKind::Source {
                    topics: SourceTopics::Pattern(p),
                    ..
                } => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// Definitions of the stores sub-topology `id` uses, by name.
    pub(crate) fn stores_of(&self, id: u32) -> Vec<std::sync::Arc<crate::state::StoreDefinition>> {
        let mut names: Vec<&String> = self.subtopologies[id as usize]
            .nodes
            .iter()
            .flat_map(|&n| self.nodes[n].stores.iter())
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.stores.get(n).cloned())
            .collect()
    }

    /// Fixed sink topics of sub-topology `id`, as declared.
    pub(crate) fn sink_topics(&self, id: u32) -> Vec<TopicName> {
        self.subtopologies[id as usize]
            .nodes
            .iter()
            .filter_map(|&n| match &self.nodes[n].kind {
                NodeKind::Sink {
                    topic: SinkTopic::Fixed(t),
                    ..
                } => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// Creates fresh node instances of sub-topology `id` for one task.
    pub(crate) fn instantiate(&self, id: u32, application_id: &str) -> GraphInstance {
        let members = &self.subtopologies[id as usize].nodes;
        let local: HashMap<usize, usize> =
            members.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut layout: Vec<NodeLayout> = members
            .iter()
            .map(|&n| NodeLayout {
                name: self.nodes[n].name.clone(),
                children: Vec::new(),
                stores: self.nodes[n].stores.clone(),
            })
            .collect();
        for (i, &n) in members.iter().enumerate() {
            for p in &self.nodes[n].parents {
                layout[local[p]].children.push(i);
            }
        }
        let mut nodes = Vec::with_capacity(members.len());
        let mut sources = Vec::new();
        let mut by_topic = HashMap::new();
        for (i, &n) in members.iter().enumerate() {
            let node: Box<dyn ErasedNode> = match &self.nodes[n].kind {
                NodeKind::Source {
                    topics, decoder, ..
                } => {
                    if let SourceTopics::Names(names) = topics {
                        for t in names {
                            by_topic.insert(t.resolve(application_id), sources.len());
                        }
                    }
                    sources.push(InstanceSource {
                        topics: topics.clone(),
                        node: i,
                        decoder: decoder.clone(),
                    });
                    Box::new(PassThrough)
                }
                NodeKind::Processor { factory } | NodeKind::Sink { factory, .. } => factory(),
            };
            nodes.push(RefCell::new(node));
        }
        GraphInstance {
            nodes,
            layout,
            sources,
            by_topic,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::dsl::JoinWindows;
    use crate::serde::StringSerde;
    use crate::{Consumed, Materialized, Produced, StreamsBuilder};

    /// The co-partitioned topic groups of the single sub-topology of `builder`.
    fn groups(builder: StreamsBuilder) -> Vec<Vec<String>> {
        let topology = builder.build().unwrap();
        assert_eq!(topology.subtopology_count(), 1);
        let none = Vec::<String>::new();
        topology
            .copartitioned_sources(0)
            .into_iter()
            .map(|group| {
                let mut topics: Vec<String> = group
                    .into_iter()
                    .flat_map(|n| topology.topics_of_source(n, "app", none.iter()))
                    .collect();
                topics.sort();
                topics
            })
            .collect()
    }

    fn strings() -> Consumed<String, String> {
        Consumed::with(StringSerde, StringSerde)
    }

    #[test]
    fn a_merge_needs_no_co_partitioning() {
        let builder = StreamsBuilder::new();
        let a = builder.stream("a", strings());
        let b = builder.stream("b", strings());
        a.merge(&b)
            .to("out", Produced::with(StringSerde, StringSerde));
        assert!(groups(builder).is_empty());
    }

    #[test]
    fn the_topics_of_a_stream_table_join_are_co_partitioned() {
        let builder = StreamsBuilder::new();
        let table = builder.table("t", strings(), Materialized::new());
        let a = builder.stream("a", strings());
        let b = builder.stream("b", strings());
        // A merge feeding the join: both merged topics are joined with the table.
        a.merge(&b)
            .join(&table, |l, r| format!("{l}{r}"))
            .to("out", Produced::with(StringSerde, StringSerde));
        assert_eq!(groups(builder), [["a", "b", "t"]]);
    }

    #[test]
    fn the_topics_of_a_stream_stream_join_are_co_partitioned() {
        let builder = StreamsBuilder::new();
        let a = builder.stream("a", strings());
        let b = builder.stream("b", strings());
        a.join_stream(
            &b,
            |l, r| format!("{l}{r}"),
            JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(1)),
        )
        .to("out", Produced::with(StringSerde, StringSerde));
        assert_eq!(groups(builder), [["a", "b"]]);
    }
}
