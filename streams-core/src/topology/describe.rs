//! `Topology::describe()`: a printable view of sub-topologies, sources, processors and sinks.

use std::fmt;

use super::node::{NodeKind, SinkTopic, SourceTopics};
use super::Topology;

/// The structure of a topology, printed in the same layout as Kafka Streams'
/// `TopologyDescription` so that people can read it the way they are used to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyDescription {
    /// The sub-topologies, in id order.
    pub subtopologies: Vec<SubtopologyDescription>,
}

/// One sub-topology of a [`TopologyDescription`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtopologyDescription {
    /// The sub-topology id (the first number of its task ids).
    pub id: u32,
    /// Its nodes, in creation order.
    pub nodes: Vec<NodeDescription>,
}

/// One node of a [`SubtopologyDescription`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDescription {
    /// `Source`, `Processor` or `Sink`.
    pub kind: &'static str,
    /// The node name.
    pub name: String,
    /// What it reads, writes or which stores it uses, e.g. `topics: [orders]`.
    pub detail: String,
    /// Names of its children.
    pub successors: Vec<String>,
    /// Names of its parents.
    pub predecessors: Vec<String>,
}

pub(super) fn describe(topology: &Topology) -> TopologyDescription {
    let nodes = &topology.nodes;
    let subtopologies = topology
        .subtopologies
        .iter()
        .map(|sub| SubtopologyDescription {
            id: sub.id,
            nodes: sub
                .nodes
                .iter()
                .map(|&n| {
                    let spec = &nodes[n];
                    let (kind, detail) = match &spec.kind {
                        NodeKind::Source { topics, .. } => (
                            "Source",
                            match topics {
                                SourceTopics::Names(t) => format!(
                                    "topics: [{}]",
                                    t.iter()
                                        .map(|t| t.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                                SourceTopics::Pattern(p) => {
                                    format!("topic pattern: {}", p.as_str())
                                }
                            },
                        ),
                        NodeKind::Processor { .. } => {
                            ("Processor", format!("stores: [{}]", spec.stores.join(", ")))
                        }
                        NodeKind::Sink { topic, .. } => (
                            "Sink",
                            match topic {
                                SinkTopic::Fixed(t) => format!("topic: {}", t.name),
                                SinkTopic::Dynamic => "topic extractor".to_string(),
                            },
                        ),
                    };
                    NodeDescription {
                        kind,
                        name: spec.name.clone(),
                        detail,
                        successors: nodes
                            .iter()
                            .filter(|c| c.parents.contains(&n))
                            .map(|c| c.name.clone())
                            .collect(),
                        predecessors: spec
                            .parents
                            .iter()
                            .map(|&p| nodes[p].name.clone())
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    TopologyDescription { subtopologies }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Topologies:")?;
        for sub in &self.subtopologies {
            writeln!(f, "   Sub-topology: {}", sub.id)?;
            for node in &sub.nodes {
                writeln!(f, "    {}: {} ({})", node.kind, node.name, node.detail)?;
                if node.kind != "Sink" {
                    let succ = if node.successors.is_empty() {
                        "none".to_string()
                    } else {
                        node.successors.join(", ")
                    };
                    writeln!(f, "      --> {succ}")?;
                }
                if node.kind != "Source" {
                    writeln!(f, "      <-- {}", node.predecessors.join(", "))?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
