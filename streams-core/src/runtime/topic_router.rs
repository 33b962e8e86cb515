//! [`TopicRouter`]: which sub-topology reads a topic, and what a thread subscribes to.

use std::collections::HashMap;

use crate::topology::node::{OffsetReset, SourceTopics};
use crate::topology::Topology;

/// Which sub-topology reads a topic, and with which offset reset policy.
#[derive(Clone)]
pub(crate) struct TopicRouter {
    named: HashMap<String, (u32, Option<OffsetReset>)>,
    patterns: Vec<(regex::Regex, u32, Option<OffsetReset>)>,
}

impl TopicRouter {
    pub fn new(topology: &Topology, app: &str) -> Self {
        let mut named = HashMap::new();
        let mut patterns = Vec::new();
        for sub in &topology.subtopologies {
            for &n in &sub.nodes {
                if let crate::topology::node::NodeKind::Source {
                    topics,
                    offset_reset,
                    ..
                } = &topology.nodes[n].kind
                {
                    match topics {
                        SourceTopics::Names(names) => {
                            for t in names {
                                named.insert(t.resolve(app), (sub.id, *offset_reset));
                            }
                        }
                        SourceTopics::Pattern(p) => {
                            patterns.push((p.clone(), sub.id, *offset_reset))
                        }
                    }
                }
            }
        }
        TopicRouter { named, patterns }
    }

    /// The sub-topology reading `topic` and its reset policy.
    pub fn route(&self, topic: &str) -> Option<(u32, Option<OffsetReset>)> {
        self.named.get(topic).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(p, _, _)| p.is_match(topic))
                .map(|(_, id, reset)| (*id, *reset))
        })
    }

    /// What the consumer subscribes to: topic names, and patterns as `^regex`.
    pub fn subscription(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.named.keys().cloned().collect();
        topics.sort();
        for (p, _, _) in &self.patterns {
            let s = p.as_str();
            topics.push(if s.starts_with('^') {
                s.to_string()
            } else {
                format!("^{s}")
            });
        }
        topics
    }
}
