//! Start-up checks and creation of topics: source topics must exist, topics read by one
//! sub-topology must be co-partitioned, and internal (repartition) topics are created with
//! the partition count of the sub-topology that writes them.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use super::error_handling::{DeserializationErrorHandler, ProcessingErrorHandler};
use super::metadata::membership_topic::membership_topic;
use super::{StreamsConfig, StreamsError};
use crate::topology::{InternalTopicKind, Topology};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Partition counts of the topics the application reads, once verified.
#[derive(Clone, Debug, Default)]
pub(crate) struct TopicLayout {
    /// Partition count per topic (user source topics, pattern matches, internal topics).
    pub partitions: BTreeMap<String, i32>,
    /// Task count (the largest partition count of the topics it reads) per sub-topology.
    pub tasks: BTreeMap<u32, i32>,
}

/// An admin client of `config`'s cluster named `<application id>-<role>`, with the
/// user's admin overrides (connection and security settings).
pub(crate) fn admin_client(
    config: &StreamsConfig,
    role: &str,
) -> Result<AdminClient<DefaultClientContext>, StreamsError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", format!("{}-{role}", config.application_id));
    for (k, v) in &config.admin_overrides {
        client.set(k, v);
    }
    client
        .create()
        .map_err(|e| StreamsError::kafka("creating the admin client", e))
}

fn topic_partitions(
    admin: &AdminClient<DefaultClientContext>,
) -> Result<HashMap<String, i32>, StreamsError> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, ADMIN_TIMEOUT)
        .map_err(|e| StreamsError::kafka("reading cluster metadata", e))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// Verifies source topics, creates missing internal topics, and checks co-partitioning.
pub(crate) fn prepare_topics(
    topology: &Topology,
    config: &StreamsConfig,
) -> Result<TopicLayout, StreamsError> {
    let admin = admin_client(config, "admin")?;
    let app = config.application_id.as_str();
    let mut existing = topic_partitions(&admin)?;

    let internal: HashMap<String, &crate::topology::InternalTopic> = topology
        .internal_topics
        .iter()
        .map(|t| (t.name.resolve(app), t))
        .collect();

    // User source topics must exist.
    let mut missing = Vec::new();
    for id in 0..topology.subtopology_count() as u32 {
        for topic in topology.source_topics(id, app) {
            if !internal.contains_key(&topic) && !existing.contains_key(&topic) {
                missing.push(topic);
            }
        }
    }
    for global in &topology.global_tables {
        if !existing.contains_key(&global.topic) {
            missing.push(global.topic.clone());
        }
    }
    for handler_topic in dead_letter_topics(config) {
        if !existing.contains_key(&handler_topic) {
            missing.push(handler_topic);
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(StreamsError::MissingSourceTopics(missing));
    }

    let counts = internal_partition_counts(topology, app, &existing);

    let mut to_create = Vec::new();
    for (name, topic) in &internal {
        let Some(&wanted) = counts.get(name) else {
            return Err(StreamsError::Config(format!(
                "cannot tell how many partitions internal topic {name} needs: set them with Repartitioned::with_partitions"
            )));
        };
        match existing.get(name) {
            Some(&actual) if actual != wanted => {
                return Err(StreamsError::Config(format!(
                "internal topic {name} has {actual} partitions but the topology needs {wanted}; \
                     delete it (or reset the application) and restart"
            )))
            }
            Some(_) => {}
            None => to_create.push((name.clone(), wanted, topic.kind)),
        }
    }
    if !to_create.is_empty() {
        create_topics(&admin, config, &to_create)?;
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        loop {
            existing = topic_partitions(&admin)?;
            if to_create
                .iter()
                .all(|(name, _, _)| existing.contains_key(name))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(StreamsError::Config(
                    "internal topics were created but never appeared in metadata".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Changelog topics of logged stores: one partition per task of their sub-topology.
    let mut changelogs = Vec::new();
    for id in 0..topology.subtopology_count() as u32 {
        let tasks = read_topics(topology, id, app, &existing)
            .iter()
            .filter_map(|t| existing.get(t).copied())
            .max()
            .unwrap_or(1);
        for store in topology.stores_of(id).iter().filter(|s| s.logging) {
            let name = crate::state::changelog_topic(app, &store.name);
            match existing.get(&name) {
                Some(&actual) if actual != tasks => {
                    return Err(StreamsError::Config(format!(
                        "changelog topic {name} has {actual} partitions but store {} has {tasks} tasks; \
                         reset the application (delete its internal topics) to change partition counts",
                        store.name
                    )))
                }
                Some(_) => {}
                None => {
                    let kind = match store.kind.changelog_retention_ms() {
                        None => InternalTopicKind::Changelog,
                        Some(retention_ms) => InternalTopicKind::WindowedChangelog { retention_ms },
                    };
                    changelogs.push((name, tasks, kind))
                }
            }
        }
    }
    if !changelogs.is_empty() {
        create_topics(&admin, config, &changelogs)?;
        wait_until_listed(&admin, &changelogs)?;
    }

    // Co-partitioning: joined topics are read together per partition, so they need the
    // same partition count; other topics of a sub-topology (a merge) may differ.
    let mut layout = TopicLayout::default();
    for id in 0..topology.subtopology_count() as u32 {
        let count = |t: &String| (t.clone(), existing.get(t).copied().unwrap_or(0));
        for group in topology.copartitioned_sources(id) {
            let with_counts: Vec<(String, i32)> = group
                .iter()
                .flat_map(|&source| topology.topics_of_source(source, app, existing.keys()))
                .map(|t| count(&t))
                .collect();
            if with_counts.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(StreamsError::CoPartitioning {
                    subtopology: id,
                    topics: with_counts,
                });
            }
        }
        let reads = read_topics(topology, id, app, &existing);
        layout.partitions.extend(reads.iter().map(count));
        let tasks = reads.iter().map(|t| count(t).1).max().unwrap_or(1);
        layout.tasks.insert(id, tasks);
    }

    // Instances announce their tasks to each other through the membership topic.
    let membership = membership_topic(app);
    if config.announces_membership() && !existing.contains_key(&membership) {
        let topic = [(membership, 1, InternalTopicKind::Changelog)];
        create_topics(&admin, config, &topic)?;
        wait_until_listed(&admin, &topic)?;
    }
    Ok(layout)
}

/// Waits until the broker's metadata lists `topics`; returns the topics it then lists.
fn wait_until_listed(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[(String, i32, InternalTopicKind)],
) -> Result<HashMap<String, i32>, StreamsError> {
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    loop {
        let existing = topic_partitions(admin)?;
        if topics
            .iter()
            .all(|(name, _, _)| existing.contains_key(name))
        {
            return Ok(existing);
        }
        if Instant::now() > deadline {
            return Err(StreamsError::Config(
                "internal topics were created but never appeared in metadata".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Partition counts of internal topics: fixed ones as declared, the others taken from
/// the sub-topology that writes them (the highest count among the topics it reads). An
/// internal topic whose writer reads only unknown topics is left out.
pub(crate) fn internal_partition_counts(
    topology: &Topology,
    app: &str,
    existing: &HashMap<String, i32>,
) -> HashMap<String, i32> {
    let internal: HashMap<String, Option<i32>> = topology
        .internal_topics
        .iter()
        .map(|t| (t.name.resolve(app), t.partitions))
        .collect();
    // Topics co-partitioned with a node's sub-topology rather than sized by their writer.
    let like: HashMap<String, u32> = topology
        .internal_topics
        .iter()
        .filter(|t| t.partitions.is_none())
        .filter_map(|t| {
            let node = t.like_node?;
            let sub = topology
                .subtopologies
                .iter()
                .find(|s| s.nodes.contains(&node))?;
            Some((t.name.resolve(app), sub.id))
        })
        .collect();
    let mut counts: HashMap<String, i32> = internal
        .iter()
        .filter_map(|(name, n)| n.map(|n| (name.clone(), n)))
        .collect();
    // A writer may itself read internal topics: iterate until nothing changes.
    loop {
        let mut progress = false;
        for (topic, sub) in &like {
            if counts.contains_key(topic) {
                continue;
            }
            let reads = read_topics(topology, *sub, app, existing);
            let known: Vec<i32> = reads
                .iter()
                .filter(|t| *t != topic && !like.contains_key(*t))
                .filter_map(|t| counts.get(t).copied().or_else(|| existing.get(t).copied()))
                .collect();
            if let Some(&n) = known.iter().max() {
                counts.insert(topic.clone(), n);
                progress = true;
            }
        }
        for id in 0..topology.subtopology_count() as u32 {
            let writes: Vec<String> = topology
                .sink_topics(id)
                .iter()
                .map(|t| t.resolve(app))
                .filter(|t| {
                    internal.contains_key(t) && !counts.contains_key(t) && !like.contains_key(t)
                })
                .collect();
            if writes.is_empty() {
                continue;
            }
            // The highest count among the topics the writer reads whose count is known; a
            // writer that also reads what it writes (a cycle) sizes it from the others.
            let reads = read_topics(topology, id, app, existing);
            let known: Vec<i32> = reads
                .iter()
                .filter(|t| !writes.contains(t))
                .filter_map(|t| counts.get(t).copied().or_else(|| existing.get(t).copied()))
                .collect();
            let all_known = reads.iter().filter(|t| !writes.contains(t)).count() == known.len();
            if all_known
                || (!known.is_empty() && !progress_possible(&reads, &writes, &counts, &internal))
            {
                let n = known.into_iter().max().unwrap_or(1);
                for t in writes {
                    counts.insert(t, n);
                    progress = true;
                }
            }
        }
        if !progress {
            return counts;
        }
    }
}

/// Whether an unknown input of a writer may still get a count from another writer: an
/// internal topic not yet sized. Without that, the writer sizes from what is known.
fn progress_possible(
    reads: &[String],
    writes: &[String],
    counts: &HashMap<String, i32>,
    internal: &HashMap<String, Option<i32>>,
) -> bool {
    reads
        .iter()
        .any(|t| !writes.contains(t) && internal.contains_key(t) && !counts.contains_key(t))
}

/// Topics sub-topology `id` reads: its named sources and the existing topics matching
/// its patterns.
pub(crate) fn read_topics(
    topology: &Topology,
    id: u32,
    app: &str,
    existing: &HashMap<String, i32>,
) -> Vec<String> {
    let mut reads = topology.source_topics(id, app);
    for pattern in topology.source_patterns(id) {
        let mut matched: Vec<String> = existing
            .keys()
            .filter(|t| pattern.is_match(t))
            .cloned()
            .collect();
        matched.sort();
        reads.extend(matched);
    }
    reads
}

fn dead_letter_topics(config: &StreamsConfig) -> Vec<String> {
    let mut topics = Vec::new();
    if let DeserializationErrorHandler::DeadLetter { topic } = &config.deserialization_error_handler
    {
        topics.push(topic.clone());
    }
    if let ProcessingErrorHandler::DeadLetter { topic } = &config.processing_error_handler {
        topics.push(topic.clone());
    }
    topics
}

fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    config: &StreamsConfig,
    topics: &[(String, i32, InternalTopicKind)],
) -> Result<(), StreamsError> {
    // Config values are borrowed by the requests, so they are made first.
    let retentions: Vec<String> = topics
        .iter()
        .map(|(_, _, kind)| match kind {
            InternalTopicKind::WindowedChangelog { retention_ms } => retention_ms.to_string(),
            _ => String::new(),
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retentions)
        .map(|((name, partitions, kind), retention)| {
            let topic = NewTopic::new(
                name,
                *partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            match kind {
                // Repartition topics are read once; the runtime never needs old records.
                InternalTopicKind::Repartition => topic
                    .set("cleanup.policy", "delete")
                    .set("segment.ms", "600000")
                    .set("retention.ms", "-1"),
                // Key-value changelogs keep the latest value per key.
                InternalTopicKind::Changelog => topic.set("cleanup.policy", "compact"),
                // Window and session changelogs keep the latest value per key too, but
                // only as long as the store may still hold it (Kafka Streams' policy).
                InternalTopicKind::WindowedChangelog { .. } => topic
                    .set("cleanup.policy", "compact,delete")
                    .set("retention.ms", retention),
            }
        })
        .collect();
    let results = block_on(admin.create_topics(
        &new_topics,
        &AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT)),
    ))
    .map_err(|e| StreamsError::kafka("creating internal topics", e))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = name, "created internal topic"),
            // Another instance created it first.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StreamsError::Config(format!(
                    "cannot create internal topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}
