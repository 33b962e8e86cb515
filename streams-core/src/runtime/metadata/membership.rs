//! The membership of an application as its instances announce it: one record per
//! group member (stream thread) after each rebalance, and the view derived from the
//! latest records: which instance actively runs each task, which ones keep standbys,
//! and whether that view is complete and current.
//!
//! librdkafka has no pluggable assignor, so instances cannot learn each other's
//! endpoints through the group protocol as Kafka Streams' do. Instead every member
//! writes, right after each assignment, its group generation, member id and assigned
//! tasks to a compacted topic every instance reads. A view is served only when the
//! records of the newest generation cover every task exactly once, and never while
//! this instance's own members are in a newer generation than the records show.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::processor::TaskId;

/// What one group member (a stream thread of one instance) announces after a rebalance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    /// The instance's process id (shared by its stream threads).
    pub process_id: String,
    /// The instance's `application_server`, if it serves queries.
    pub endpoint: Option<String>,
    /// The consumer's member id in the group.
    pub member_id: String,
    /// The consumer's static `group.instance.id`, if configured (the assignor then
    /// orders members by it).
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// The group generation the assignment belongs to.
    pub generation: i32,
    /// The tasks assigned to the member, as `(subtopology, partition)`.
    pub active: Vec<(u32, i32)>,
}

impl MemberRecord {
    /// The key of the record: one per stream thread of an instance.
    pub fn key(process_id: &str, thread: usize) -> String {
        format!("{process_id}/{thread}")
    }

    fn sort_key(&self) -> &str {
        self.group_instance_id.as_deref().unwrap_or(&self.member_id)
    }
}

/// The latest record of each member, as read from the membership topic.
#[derive(Default, Debug)]
pub(crate) struct MembershipTable {
    members: HashMap<String, MemberRecord>,
}

impl MembershipTable {
    /// Applies a record read (or written) under `key`: `None` removes the member. A
    /// record of an older generation than the one held for the key is ignored (a
    /// member's own announcement may be applied before an older one comes back from the
    /// topic).
    pub fn apply(&mut self, key: &str, record: Option<MemberRecord>) {
        match record {
            None => {
                self.members.remove(key);
            }
            Some(record) => {
                let newer = self
                    .members
                    .get(key)
                    .is_none_or(|held| held.generation <= record.generation);
                if newer {
                    self.members.insert(key.to_string(), record);
                }
            }
        }
    }

    /// The current view: `tasks` gives the partition count of each sub-topology,
    /// `local_generation` the newest generation this instance's own members joined.
    pub fn view(
        &self,
        tasks: &BTreeMap<u32, i32>,
        local_generation: Option<i32>,
        standby_replicas: usize,
    ) -> Result<ClusterView, String> {
        let generation = self
            .members
            .values()
            .map(|m| m.generation)
            .max()
            .ok_or("no instance announced its tasks yet")?;
        if let Some(local) = local_generation {
            if local > generation {
                return Err(format!(
                    "this instance is in group generation {local}, the announcements only reach {generation}"
                ));
            }
        }
        let mut current: Vec<&MemberRecord> = self
            .members
            .values()
            .filter(|m| m.generation == generation)
            .collect();
        current.sort_by(|a, b| a.sort_key().cmp(b.sort_key()));

        let mut active: HashMap<TaskId, String> = HashMap::new();
        for member in &current {
            for &(subtopology, partition) in &member.active {
                let task = TaskId {
                    subtopology,
                    partition,
                };
                if let Some(other) = active.insert(task, member.process_id.clone()) {
                    return Err(format!(
                        "task {task} is announced by {other} and {} in generation {generation}",
                        member.process_id
                    ));
                }
            }
        }
        let missing: Vec<String> = all_tasks(tasks)
            .filter(|t| !active.contains_key(t))
            .map(|t| t.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "no member of generation {generation} announced tasks {}",
                missing.join(", ")
            ));
        }

        let mut instances: BTreeMap<String, InstanceView> = BTreeMap::new();
        for member in &current {
            let instance = instances
                .entry(member.process_id.clone())
                .or_insert_with(|| InstanceView {
                    endpoint: member.endpoint.clone(),
                    active: BTreeSet::new(),
                    standby: BTreeSet::new(),
                });
            instance.active.extend(
                member
                    .active
                    .iter()
                    .map(|&(subtopology, partition)| TaskId {
                        subtopology,
                        partition,
                    }),
            );
        }
        let mut standbys: HashMap<TaskId, Vec<String>> = HashMap::new();
        if standby_replicas > 0 {
            for task in all_tasks(tasks) {
                let hosts = standby_hosts(
                    &current,
                    task,
                    tasks[&task.subtopology],
                    &active[&task],
                    standby_replicas,
                );
                for host in &hosts {
                    if let Some(instance) = instances.get_mut(host) {
                        instance.standby.insert(task);
                    }
                }
                standbys.insert(task, hosts);
            }
        }
        Ok(ClusterView {
            generation,
            instances,
            active,
            standbys,
        })
    }
}

fn all_tasks(tasks: &BTreeMap<u32, i32>) -> impl Iterator<Item = TaskId> + '_ {
    tasks.iter().flat_map(|(&subtopology, &count)| {
        (0..count).map(move |partition| TaskId {
            subtopology,
            partition,
        })
    })
}

/// The instances keeping standbys of `task`: where the range assignor would move the
/// task if its active instance left, then if that one left too, and so on. A standby
/// that is caught up then becomes the active task without a full restore.
fn standby_hosts(
    members: &[&MemberRecord],
    task: TaskId,
    partitions: i32,
    active_process: &str,
    replicas: usize,
) -> Vec<String> {
    let mut excluded: BTreeSet<&str> = BTreeSet::from([active_process]);
    let mut hosts = Vec::new();
    while hosts.len() < replicas {
        let remaining: Vec<&&MemberRecord> = members
            .iter()
            .filter(|m| !excluded.contains(m.process_id.as_str()))
            .collect();
        if remaining.is_empty() {
            break;
        }
        let index = range_owner(remaining.len(), task.partition, partitions);
        let host = remaining[index].process_id.as_str();
        hosts.push(host.to_string());
        excluded.insert(host);
    }
    hosts
}

/// Which of `members` consumers (sorted as the assignor sorts them) the range assignor
/// gives `partition` of a topic with `partitions` partitions: the first
/// `partitions % members` consumers get one partition more than the others.
pub(crate) fn range_owner(members: usize, partition: i32, partitions: i32) -> usize {
    let members = members as i64;
    let (partition, partitions) = (partition as i64, partitions as i64);
    let per_member = partitions / members;
    let extra = partitions % members;
    // Consumers 0..extra own per_member + 1 partitions each.
    let boundary = extra * (per_member + 1);
    if partition < boundary {
        (partition / (per_member + 1)) as usize
    } else {
        (extra + (partition - boundary) / per_member.max(1)) as usize
    }
}

/// One instance in a [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstanceView {
    pub endpoint: Option<String>,
    pub active: BTreeSet<TaskId>,
    pub standby: BTreeSet<TaskId>,
}

/// Who runs what in one group generation, complete for every task.
#[derive(Clone, Debug)]
pub(crate) struct ClusterView {
    pub generation: i32,
    /// Instances by process id.
    pub instances: BTreeMap<String, InstanceView>,
    /// The instance (process id) actively running each task.
    pub active: HashMap<TaskId, String>,
    /// The instances (process ids) keeping standbys of each task, in failover order.
    pub standbys: HashMap<TaskId, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(process: &str, member: &str, generation: i32, active: &[(u32, i32)]) -> MemberRecord {
        MemberRecord {
            process_id: process.into(),
            endpoint: Some(format!("{process}:1")),
            member_id: member.into(),
            group_instance_id: None,
            generation,
            active: active.to_vec(),
        }
    }

    fn table(records: &[MemberRecord]) -> MembershipTable {
        let mut table = MembershipTable::default();
        for r in records {
            table.apply(&MemberRecord::key(&r.process_id, 1), Some(r.clone()));
        }
        table
    }

    #[test]
    fn range_owner_matches_the_range_assignor() {
        // 6 partitions over 3 members: 0,1 | 2,3 | 4,5.
        let owners: Vec<usize> = (0..6).map(|p| range_owner(3, p, 6)).collect();
        assert_eq!(owners, [0, 0, 1, 1, 2, 2]);
        // 7 over 3: the first gets one more: 0,1,2 | 3,4 | 5,6.
        let owners: Vec<usize> = (0..7).map(|p| range_owner(3, p, 7)).collect();
        assert_eq!(owners, [0, 0, 0, 1, 1, 2, 2]);
        // More members than partitions: one each, the rest get none.
        let owners: Vec<usize> = (0..2).map(|p| range_owner(5, p, 2)).collect();
        assert_eq!(owners, [0, 1]);
    }

    #[test]
    fn a_complete_generation_is_a_view_and_old_generations_are_ignored() {
        let tasks = BTreeMap::from([(0, 4)]);
        let view = table(&[
            member("a", "m-a", 3, &[(0, 0), (0, 1)]),
            member("b", "m-b", 3, &[(0, 2), (0, 3)]),
            // A member that died in generation 2 is not part of generation 3.
            member("c", "m-c", 2, &[(0, 2), (0, 3)]),
        ])
        .view(&tasks, Some(3), 0)
        .unwrap();
        assert_eq!(view.generation, 3);
        assert_eq!(
            view.active[&TaskId {
                subtopology: 0,
                partition: 3
            }],
            "b"
        );
        assert_eq!(view.instances.len(), 2);
    }

    #[test]
    fn an_incomplete_or_stale_view_is_refused() {
        let tasks = BTreeMap::from([(0, 4)]);
        let half = table(&[
            member("a", "m-a", 4, &[(0, 0), (0, 1)]),
            member("b", "m-b", 3, &[(0, 2), (0, 3)]),
        ]);
        let error = half.view(&tasks, None, 0).unwrap_err();
        assert!(error.contains("0_2, 0_3"), "{error}");
        let whole = table(&[
            member("a", "m-a", 3, &[(0, 0), (0, 1)]),
            member("b", "m-b", 3, &[(0, 2), (0, 3)]),
        ]);
        let error = whole.view(&tasks, Some(4), 0).unwrap_err();
        assert!(error.contains("generation 4"), "{error}");
        assert!(MembershipTable::default().view(&tasks, None, 0).is_err());
    }

    #[test]
    fn an_older_record_does_not_replace_a_newer_one() {
        let mut table = MembershipTable::default();
        table.apply("a/1", Some(member("a", "m", 5, &[(0, 0)])));
        table.apply("a/1", Some(member("a", "m", 4, &[(0, 1)])));
        assert_eq!(table.members["a/1"].generation, 5);
        table.apply("a/1", None);
        assert!(table.members.is_empty());
    }

    #[test]
    fn standbys_sit_where_the_assignor_moves_a_task_when_its_active_leaves() {
        let tasks = BTreeMap::from([(0, 6)]);
        let view = table(&[
            member("a", "m-1", 7, &[(0, 0), (0, 1)]),
            member("b", "m-2", 7, &[(0, 2), (0, 3)]),
            member("c", "m-3", 7, &[(0, 4), (0, 5)]),
        ])
        .view(&tasks, None, 1)
        .unwrap();
        // Without c, members m-1 and m-2 split 6 partitions 0..3 | 3..6: c's tasks 4
        // and 5 go to b; without b, a gets 0..3 (tasks 2) and c 3..6 (task 3).
        let standby = |p| {
            view.standbys[&TaskId {
                subtopology: 0,
                partition: p,
            }]
                .clone()
        };
        assert_eq!(standby(4), ["b"]);
        assert_eq!(standby(5), ["b"]);
        assert_eq!(standby(2), ["a"]);
        assert_eq!(standby(3), ["c"]);
        assert_eq!(standby(0), ["b"]);
        for (task, hosts) in &view.standbys {
            assert!(
                !hosts.contains(&view.active[task]),
                "a standby of {task} on its active instance"
            );
        }
        assert!(view.instances["b"].standby.contains(&TaskId {
            subtopology: 0,
            partition: 4
        }));
    }
}
