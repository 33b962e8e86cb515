//! The position store: what the connector has published, kept in a compacted Kafka
//! topic `<prefix>customers-connector-offsets` (Kafka Connect's offsets topic, per row).
//!
//! The position is one [`Fingerprint`] per published customer id. It is written as one
//! record per changed id — key `{"table":"customers","id":7}`, value
//! `{"fingerprint":"<32 hex digits>"}`, or a null value once the id was deleted — in the
//! same Kafka transaction as the customer records themselves (see
//! [`publisher`](crate::publisher)). Compaction keeps the latest record per id, so the
//! topic stays the size of the table.
//!
//! Why Kafka and one transaction: a crash between sending the customers and storing the
//! position can then neither lose nor duplicate anything — both commit, or neither does
//! (exactly-once source semantics). A position in a local file, or in the source
//! database, would be a second system to keep in step with Kafka, and the crash between
//! the two writes would re-send (or skip) a batch. Reading the position back needs
//! `read_committed` and, first, the fencing of any predecessor's open transaction:
//! [`load`] is called after the publisher initialized its transactions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::changes::{Change, Fingerprint};
use crate::config::ConnectorConfig;
use crate::table::TABLE;

/// How long creating the offsets topic and reading it to its end may take.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the connector has published: a fingerprint per customer id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    published: BTreeMap<i64, Fingerprint>,
}

impl Position {
    /// The fingerprint published last for `id`, if the id is published.
    pub fn get(&self, id: i64) -> Option<Fingerprint> {
        self.published.get(&id).copied()
    }

    /// How many ids are published (not deleted).
    pub fn len(&self) -> usize {
        self.published.len()
    }

    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty()
    }

    /// The published ids with their fingerprints, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, Fingerprint)> + '_ {
        self.published.iter().map(|(id, f)| (*id, *f))
    }

    /// Records that `change` was published.
    pub fn apply(&mut self, change: &Change) {
        self.set(change.id(), change.fingerprint());
    }

    fn set(&mut self, id: i64, fingerprint: Option<Fingerprint>) {
        match fingerprint {
            Some(f) => self.published.insert(id, f),
            None => self.published.remove(&id),
        };
    }
}

/// Why the position could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    /// A Kafka call failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// Kafka's error.
        #[source]
        source: KafkaError,
    },
    /// Creating the offsets topic failed.
    #[error("creating the offsets topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// A record of the offsets topic is not one the connector writes.
    #[error(
        "record {offset} of partition {partition} of {topic} is not a position record: {reason}"
    )]
    Malformed {
        /// The topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The topic was not available, or not read to its end, in time.
    #[error("reading {topic} to its end took longer than {timeout:?}")]
    Timeout {
        /// The topic.
        topic: String,
        /// The limit.
        timeout: Duration,
    },
}

impl PositionError {
    fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> PositionError {
        let what = what.into();
        move |source| PositionError::Kafka { what, source }
    }
}

/// The key of a position record.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct RecordKey {
    table: String,
    id: i64,
}

/// The value of a position record (absent: the id was deleted).
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct RecordValue {
    fingerprint: String,
}

/// The key and value of the position record storing `change`.
pub fn record(change: &Change) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = RecordKey {
        table: TABLE.into(),
        id: change.id(),
    };
    let value = change.fingerprint().map(|f| RecordValue {
        fingerprint: f.to_string(),
    });
    (
        serde_json::to_vec(&key).expect("a position key serializes"),
        value.map(|v| serde_json::to_vec(&v).expect("a position value serializes")),
    )
}

/// The id and fingerprint a position record stores; `Ok(None)` for a record of another
/// table.
fn parse(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Option<(i64, Option<Fingerprint>)>, String> {
    let key: RecordKey =
        serde_json::from_slice(key.ok_or("null key")?).map_err(|e| format!("key: {e}"))?;
    if key.table != TABLE {
        return Ok(None);
    }
    let fingerprint = match value {
        None => None,
        Some(value) => {
            let value: RecordValue =
                serde_json::from_slice(value).map_err(|e| format!("value: {e}"))?;
            Some(
                Fingerprint::from_hex(&value.fingerprint)
                    .ok_or_else(|| format!("fingerprint {:?}", value.fingerprint))?,
            )
        }
    };
    Ok(Some((key.id, fingerprint)))
}

/// Creates the offsets topic if it is missing: compacted, one partition, the
/// configured replication factor. (`service_kit::topics::ensure_topics` cannot set a
/// topic's configuration.)
pub fn ensure_offsets_topic(config: &ConnectorConfig) -> Result<(), PositionError> {
    let topic = config.offsets_topic();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.service.bootstrap_servers)
        .create()
        .map_err(PositionError::kafka("creating the admin client"))?;
    let new_topic = NewTopic::new(
        &topic,
        1,
        TopicReplication::Fixed(config.service.replication_factor),
    )
    .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(LOAD_TIMEOUT));
    let results = block_on(admin.create_topics([&new_topic], &options))
        .map_err(PositionError::kafka(format!("creating {topic}")))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, "created the offsets topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(PositionError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Reads the position from the offsets topic: every committed record, from the
/// beginning of each partition to its end. Call it after the publisher initialized its
/// transactions, which aborts a predecessor's open transaction: the end is then stable.
pub fn load(config: &ConnectorConfig) -> Result<Position, PositionError> {
    let topic = config.offsets_topic();
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.service.bootstrap_servers)
        .set(
            "group.id",
            format!("{}-position", config.transactional_id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(PositionError::kafka("creating the position consumer"))?;
    // The topic exists (`ensure_offsets_topic`); until the metadata shows it with a
    // leader for every partition, reading it could miss records, and a position read
    // short would re-send what was published.
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(&topic), LOAD_TIMEOUT)
            .map_err(PositionError::kafka(format!(
                "reading the metadata of {topic}"
            )))?;
        let ready = metadata.topics().iter().find(|t| {
            t.name() == topic
                && t.error().is_none()
                && !t.partitions().is_empty()
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if let Some(t) = ready {
            break t.partitions().len() as i32;
        }
        if Instant::now() >= deadline {
            return Err(PositionError::Timeout {
                topic,
                timeout: LOAD_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut assignment = TopicPartitionList::new();
    let mut pending = Vec::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, LOAD_TIMEOUT)
            .map_err(PositionError::kafka(format!("reading the end of {topic}")))?;
        if high > low {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .map_err(PositionError::kafka(format!("assigning {topic}")))?;
            pending.push(partition);
        }
    }
    let mut position = Position::default();
    let mut records = 0u64;
    if !pending.is_empty() {
        consumer
            .assign(&assignment)
            .map_err(PositionError::kafka(format!("assigning {topic}")))?;
    }
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PositionError::Timeout {
                topic,
                timeout: LOAD_TIMEOUT,
            });
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(message)) => {
                let parsed = parse(message.key(), message.payload()).map_err(|reason| {
                    PositionError::Malformed {
                        topic: topic.clone(),
                        partition: message.partition(),
                        offset: message.offset(),
                        reason,
                    }
                })?;
                if let Some((id, fingerprint)) = parsed {
                    position.set(id, fingerprint);
                }
                records += 1;
            }
            // Under read_committed the end is the last stable offset, which is the high
            // watermark once no transaction is open.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.retain(|p| *p != partition);
            }
            Some(Err(e)) => return Err(PositionError::kafka(format!("reading {topic}"))(e)),
        }
    }
    tracing::info!(
        topic,
        records,
        published = position.len(),
        "read the connector's position"
    );
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_platform::records::Customer;

    #[test]
    fn records_read_back_as_what_they_store() {
        let customer = Customer {
            id: 7,
            first_name: "A".into(),
            last_name: "B".into(),
            email: "a@b".into(),
            address: "C".into(),
            level: "gold".into(),
        };
        let upsert = Change::Upsert(customer.clone());
        let (key, value) = record(&upsert);
        assert_eq!(
            std::str::from_utf8(&key).unwrap(),
            r#"{"table":"customers","id":7}"#
        );
        assert_eq!(
            parse(Some(&key), value.as_deref()).unwrap(),
            Some((7, Some(Fingerprint::of(&customer))))
        );
        let (key, value) = record(&Change::Delete(7));
        assert_eq!(value, None);
        assert_eq!(parse(Some(&key), None).unwrap(), Some((7, None)));

        let mut position = Position::default();
        position.apply(&upsert);
        assert_eq!(position.get(7), Some(Fingerprint::of(&customer)));
        position.apply(&Change::Delete(7));
        assert!(position.is_empty());
    }

    #[test]
    fn foreign_and_broken_records_are_told_apart() {
        assert_eq!(
            parse(Some(br#"{"table":"other","id":1}"#), None).unwrap(),
            None
        );
        assert!(parse(None, None).is_err());
        assert!(parse(Some(b"7"), None).is_err());
        assert!(parse(
            Some(br#"{"table":"customers","id":1}"#),
            Some(br#"{"fingerprint":"nope"}"#)
        )
        .is_err());
    }
}
