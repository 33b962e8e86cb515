//! Which instance of an application hosts which task, store and key: Kafka Streams'
//! `StreamsMetadata` and `KeyQueryMetadata`, learned through the membership topic (see
//! `membership` and `docs/interactive-queries.md`).

pub(crate) mod membership;
pub(crate) mod membership_topic;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use self::membership::ClusterView;
use super::partitioner::partition_for_key;
use super::StreamsError;
use crate::processor::TaskId;
use crate::topology::Topology;

/// The `host:port` an instance serves interactive queries on (its `application_server`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostInfo {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for HostInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostInfo {
    type Err = StreamsError;

    /// Parses `host:port`.
    fn from_str(s: &str) -> Result<Self, StreamsError> {
        s.rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(host, port)| {
                Some(HostInfo {
                    host: host.to_string(),
                    port: port.parse().ok()?,
                })
            })
            .ok_or_else(|| StreamsError::Config(format!("{s:?} is not host:port")))
    }
}

/// One instance of the application, as the others know it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instance {
    /// The instance's process id (random per start).
    pub process_id: String,
    /// Where it serves queries; `None` if it has no `application_server`.
    pub host: Option<HostInfo>,
}

/// What one instance hosts (Kafka Streams' `StreamsMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamsMetadata {
    /// The instance.
    pub instance: Instance,
    /// Stores of its active tasks.
    pub state_store_names: BTreeSet<String>,
    /// Its active tasks.
    pub active_tasks: BTreeSet<TaskId>,
    /// Stores it keeps standbys of.
    pub standby_state_store_names: BTreeSet<String>,
    /// Tasks it keeps standbys of.
    pub standby_tasks: BTreeSet<TaskId>,
    /// The group generation this metadata belongs to.
    pub generation: i32,
}

/// Where one key of a store lives (Kafka Streams' `KeyQueryMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    /// The partition of the key: murmur2 of the serialized key, as Java producers pick it.
    pub partition: i32,
    /// The task holding the key.
    pub task: TaskId,
    /// The instance running the task.
    pub active: Instance,
    /// Instances keeping standbys of the task, in failover order.
    pub standbys: Vec<Instance>,
    /// The group generation this metadata belongs to.
    pub generation: i32,
}

/// Where stores live in the topology, and how many tasks each sub-topology has.
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskLayout {
    /// Partition count (= task count) per sub-topology.
    pub tasks: BTreeMap<u32, i32>,
    /// The sub-topology of each store.
    pub store_subtopology: BTreeMap<String, u32>,
}

impl TaskLayout {
    /// The layout of `topology` given each sub-topology's task count.
    pub fn new(topology: &Topology, tasks: BTreeMap<u32, i32>) -> Self {
        let mut store_subtopology = BTreeMap::new();
        for id in 0..topology.subtopology_count() as u32 {
            for store in topology.stores_of(id) {
                store_subtopology.insert(store.name.clone(), id);
            }
        }
        TaskLayout {
            tasks,
            store_subtopology,
        }
    }

    /// The stores of tasks of sub-topology `id`.
    fn stores_of(&self, id: u32) -> impl Iterator<Item = &String> {
        self.store_subtopology
            .iter()
            .filter(move |(_, &sub)| sub == id)
            .map(|(name, _)| name)
    }

    /// The task holding serialized key `key` of store `store`.
    pub fn task_for_key(&self, store: &str, key: &[u8]) -> Result<TaskId, StreamsError> {
        let subtopology = self.subtopology_of(store)?;
        let partitions = self.tasks.get(&subtopology).copied().unwrap_or(1).max(1);
        Ok(TaskId {
            subtopology,
            partition: partition_for_key(key, partitions),
        })
    }

    /// The sub-topology of store `store`.
    pub fn subtopology_of(&self, store: &str) -> Result<u32, StreamsError> {
        self.store_subtopology.get(store).copied().ok_or_else(|| {
            StreamsError::InvalidState(format!(
                "the topology has no store named {store} in its tasks"
            ))
        })
    }
}

fn instance(view: &ClusterView, process_id: &str) -> Instance {
    Instance {
        process_id: process_id.to_string(),
        host: view
            .instances
            .get(process_id)
            .and_then(|i| i.endpoint.as_deref())
            .and_then(|e| e.parse().ok()),
    }
}

/// Every instance of `view`.
pub(crate) fn all_instances(view: &ClusterView, layout: &TaskLayout) -> Vec<StreamsMetadata> {
    view.instances
        .iter()
        .map(|(process_id, i)| {
            let stores = |tasks: &BTreeSet<TaskId>| -> BTreeSet<String> {
                tasks
                    .iter()
                    .flat_map(|t| layout.stores_of(t.subtopology).cloned())
                    .collect()
            };
            StreamsMetadata {
                instance: instance(view, process_id),
                state_store_names: stores(&i.active),
                active_tasks: i.active.clone(),
                standby_state_store_names: stores(&i.standby),
                standby_tasks: i.standby.clone(),
                generation: view.generation,
            }
        })
        .collect()
}

/// Where task `task` runs in `view`.
pub(crate) fn key_metadata(
    view: &ClusterView,
    task: TaskId,
) -> Result<KeyQueryMetadata, StreamsError> {
    let active = view
        .active
        .get(&task)
        .ok_or_else(|| StreamsError::MetadataNotAvailable {
            reason: format!("no instance runs task {task}"),
        })?;
    Ok(KeyQueryMetadata {
        partition: task.partition,
        task,
        active: instance(view, active),
        standbys: view
            .standbys
            .get(&task)
            .map(|hosts| hosts.iter().map(|h| instance(view, h)).collect())
            .unwrap_or_default(),
        generation: view.generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_info_parses_host_and_port() {
        let host: HostInfo = "orders-1.internal:8100".parse().unwrap();
        assert_eq!(host.host, "orders-1.internal");
        assert_eq!(host.port, 8100);
        assert_eq!(host.to_string(), "orders-1.internal:8100");
        assert!("nohost".parse::<HostInfo>().is_err());
        assert!(":80".parse::<HostInfo>().is_err());
        assert!("a:99999".parse::<HostInfo>().is_err());
    }

    /// Keys produced by Java clients are found: the key's task is the partition
    /// Kafka's Java default partitioner picks (vectors from the kafka-clients jar).
    #[test]
    fn a_key_s_task_is_the_partition_java_producers_choose() {
        for partitions in streams_test_support::MURMUR2_PARTITION_COUNTS {
            let layout = TaskLayout {
                tasks: BTreeMap::from([(0, 1), (1, partitions)]),
                store_subtopology: BTreeMap::from([("counts".to_string(), 1)]),
            };
            for vector in streams_test_support::murmur2_vectors() {
                let task = layout.task_for_key("counts", &vector.key).unwrap();
                assert_eq!(task.subtopology, 1);
                assert_eq!(
                    Some(task.partition),
                    vector.partition_for(partitions),
                    "key {:?} over {partitions} partitions",
                    vector.key
                );
            }
        }
        let layout = TaskLayout::default();
        assert!(layout.task_for_key("unknown", b"k").is_err());
    }
}
