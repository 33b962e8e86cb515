//! Creating the platform's topics at start-up, with the configured partition count and
//! replication factor, so that nothing depends on broker auto-creation. A topic that
//! exists with another partition count than configured is a clear error: joined topics
//! must be co-partitioned.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::ServiceConfig;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the missing ones of `topics` with `config.partitions` partitions, and checks
/// that the existing ones have that many.
pub fn ensure_topics(config: &ServiceConfig, topics: &[String]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create()
        .context("creating the admin client")?;
    let existing = partition_counts(&admin)?;
    let mut missing = Vec::new();
    for topic in topics {
        match existing.get(topic.as_str()) {
            Some(&count) if count != config.partitions => bail!(
                "topic {topic} has {count} partitions but the platform is configured for {}: \
                 joined topics must have equal counts (set PLATFORM_PARTITIONS={count}, or recreate the topic)",
                config.partitions
            ),
            Some(_) => {}
            None => missing.push(topic),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|t| {
            NewTopic::new(
                t.as_str(),
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
        })
        .collect();
    let results = block_on(admin.create_topics(
        &new_topics,
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))
    .context("creating topics")?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, partitions = config.partitions, "created topic"),
            // Another service created it meanwhile.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

fn partition_counts(admin: &AdminClient<DefaultClientContext>) -> Result<HashMap<String, i32>> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .context("reading the cluster's topics (is the broker up? `dev/kafka start`)")?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}
