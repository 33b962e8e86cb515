//! The table-table foreign-key join (Kafka's KIP-213): each row of the left table joins
//! the right table's row whose key the left value names, even when the two tables are
//! partitioned differently.
//!
//! The join runs in three hops, with Kafka Streams' instructions:
//! 1. On the left table's task, every change becomes a *subscription* keyed by foreign
//!    key, carrying the hash of the new left value (none for a delete) and the partition
//!    the left row lives in. A new row subscribes (an inner join asks for an answer only
//!    if the foreign row exists); an update subscribes to its foreign key and always asks
//!    for an answer, after unsubscribing from the old foreign key if it changed; a delete
//!    unsubscribes and asks for an answer, which deletes the result. Subscriptions travel
//!    through the internal `KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`,
//!    partitioned like the right table.
//! 2. On the right table's task, a subscription store keyed by
//!    `[4-byte foreign key length][foreign key][primary key]` records who subscribes to
//!    what, so that a prefix scan by foreign key finds every subscriber. Subscriptions are
//!    answered as they ask, and each right-table change is sent to all current
//!    subscribers of its key. Answers travel through
//!    `KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic`, keyed by primary key and written
//!    to the partition the subscriber named (so a left row written to any partition gets
//!    its answer).
//! 3. Back on the left table's task, an answer whose value hash no longer matches the
//!    current left value is stale (the row changed while the answer was on its way) and
//!    is dropped; otherwise the result row is emitted: the joined row, or a tombstone when
//!    there is none (an inner join cannot know whether an earlier result was emitted, so it
//!    deletes it anyway, as Kafka Streams does). A result store remembers what was emitted
//!    per primary key, so downstream operators receive correct old values.
//!
//! A deleted left row is deleted downstream only when its answer comes back, as in Kafka
//! Streams, so operators that see the delete of the left row first still find the result.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::ops::sink::{SinkNode, SinkTarget};
use crate::dsl::ops::{add_merge_node, add_processor_node};
use crate::dsl::options::StreamPartitioner;
use crate::dsl::KTable;
use crate::dsl::{Consumed, StreamsBuilder};
use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{Serde, SerdeError};
use crate::state::{StoreBuilder, Stores};
use crate::topology::node::{NodeKind, SinkTopic, SourceTopics, TopicName};
use crate::topology::{InternalTopic, InternalTopicKind, TopologyBuilder, TopologyError};

/// 64-bit FNV-1a of a serialized left value: what a response carries to prove it answers
/// the current left value.
pub(crate) fn value_hash(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

fn serialize_or_empty<T: 'static>(
    serde: &dyn Serde<T>,
    topic: &str,
    value: &T,
) -> Result<Vec<u8>, SerdeError> {
    Ok(serde.serialize(topic, value)?.unwrap_or_default())
}

fn require(bytes: Option<&[u8]>, topic: &str) -> Result<Vec<u8>, SerdeError> {
    bytes.map(<[u8]>::to_vec).ok_or_else(|| SerdeError::Null {
        topic: topic.to_string(),
    })
}

fn invalid(reason: impl Into<String>) -> SerdeError {
    SerdeError::Invalid {
        format: "foreign-key join",
        reason: reason.into(),
    }
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, SerdeError> {
    let slice = bytes.get(at..at + 8).ok_or(SerdeError::Length {
        expected: at + 8,
        actual: bytes.len(),
    })?;
    Ok(u64::from_be_bytes(slice.try_into().expect("8 bytes")))
}

/// Wire format version written first in subscriptions and responses.
const VERSION: u8 = 1;

/// What a subscription asks of the right side (Kafka Streams' four instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Forget the subscriber; no answer (the row moved to another foreign key).
    DeleteKeyNoPropagate,
    /// Forget the subscriber and answer with no value (the row was deleted).
    DeleteKeyAndPropagate,
    /// Record the subscriber and answer, with no value if the foreign row is missing.
    PropagateNullIfNoFkValAvailable,
    /// Record the subscriber; answer only if the foreign row exists.
    PropagateOnlyIfFkValAvailable,
}

impl Instruction {
    fn code(self) -> u8 {
        match self {
            Instruction::DeleteKeyNoPropagate => 0,
            Instruction::DeleteKeyAndPropagate => 1,
            Instruction::PropagateNullIfNoFkValAvailable => 2,
            Instruction::PropagateOnlyIfFkValAvailable => 3,
        }
    }

    fn from_code(code: u8) -> Result<Self, SerdeError> {
        Ok(match code {
            0 => Instruction::DeleteKeyNoPropagate,
            1 => Instruction::DeleteKeyAndPropagate,
            2 => Instruction::PropagateNullIfNoFkValAvailable,
            3 => Instruction::PropagateOnlyIfFkValAvailable,
            other => return Err(invalid(format!("unknown subscription instruction {other}"))),
        })
    }
}

/// A left row (un)subscribing to a foreign key; the record key is the foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subscription<K> {
    pub instruction: Instruction,
    pub primary_key: K,
    /// Hash of the left row's new value; `None` when the row was deleted.
    pub hash: Option<u64>,
    /// The partition the left row was read from, where its answer goes; -1 if unknown.
    pub primary_partition: i32,
}

/// Writes an optional hash as a presence byte and 8 bytes.
fn put_hash(out: &mut Vec<u8>, hash: Option<u64>) {
    out.push(u8::from(hash.is_some()));
    out.extend_from_slice(&hash.unwrap_or(0).to_be_bytes());
}

/// Reads what [`put_hash`] wrote at `at`.
fn read_hash(bytes: &[u8], at: usize) -> Result<Option<u64>, SerdeError> {
    let hash = read_u64(bytes, at + 1)?;
    match bytes[at] {
        0 => Ok(None),
        1 => Ok(Some(hash)),
        other => Err(invalid(format!("unknown hash flag {other}"))),
    }
}

fn read_i32(bytes: &[u8], at: usize) -> Result<i32, SerdeError> {
    let slice = bytes.get(at..at + 4).ok_or(SerdeError::Length {
        expected: at + 4,
        actual: bytes.len(),
    })?;
    Ok(i32::from_be_bytes(slice.try_into().expect("4 bytes")))
}

/// Length of a subscription before the primary key.
const SUBSCRIPTION_HEADER: usize = 15;

/// Writes a [`Subscription`] as `[version][instruction][hash present][8-byte hash]
/// [4-byte primary partition][primary key]`.
pub(crate) struct SubscriptionSerde<K> {
    key: Arc<dyn Serde<K>>,
}

impl<K> SubscriptionSerde<K> {
    pub fn new(key: Arc<dyn Serde<K>>) -> Self {
        SubscriptionSerde { key }
    }
}

impl<K: 'static> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(&self, topic: &str, s: &Subscription<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let key = serialize_or_empty(self.key.as_ref(), topic, &s.primary_key)?;
        let mut out = Vec::with_capacity(SUBSCRIPTION_HEADER + key.len());
        out.push(VERSION);
        out.push(s.instruction.code());
        put_hash(&mut out, s.hash);
        out.extend_from_slice(&s.primary_partition.to_be_bytes());
        out.extend_from_slice(&key);
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Subscription<K>, SerdeError> {
        let bytes = require(bytes, topic)?;
        if bytes.len() < SUBSCRIPTION_HEADER {
            return Err(SerdeError::Length {
                expected: SUBSCRIPTION_HEADER,
                actual: bytes.len(),
            });
        }
        if bytes[0] != VERSION {
            return Err(invalid(format!(
                "unknown subscription version {}",
                bytes[0]
            )));
        }
        Ok(Subscription {
            instruction: Instruction::from_code(bytes[1])?,
            hash: read_hash(&bytes, 2)?,
            primary_partition: read_i32(&bytes, 11)?,
            primary_key: self
                .key
                .deserialize(topic, Some(&bytes[SUBSCRIPTION_HEADER..]))?,
        })
    }
}

/// The right side's answer for one subscriber; the record key is the primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response<VO> {
    /// The hash of the subscription this answers (`None` answers a delete).
    pub hash: Option<u64>,
    /// The right table's value for the foreign key, `None` if it has none.
    pub value: Option<VO>,
    /// The partition of the response topic the answer goes to; -1 if unknown.
    pub primary_partition: i32,
}

/// Length of a response before the value.
const RESPONSE_HEADER: usize = 15;

/// Writes a [`Response`] as `[version][1 if a value follows][hash present][8-byte hash]
/// [4-byte primary partition][value]`.
pub(crate) struct ResponseSerde<VO> {
    value: Arc<dyn Serde<VO>>,
}

impl<VO> ResponseSerde<VO> {
    pub fn new(value: Arc<dyn Serde<VO>>) -> Self {
        ResponseSerde { value }
    }
}

impl<VO: 'static> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(&self, topic: &str, r: &Response<VO>) -> Result<Option<Vec<u8>>, SerdeError> {
        let value = r
            .value
            .as_ref()
            .map(|v| serialize_or_empty(self.value.as_ref(), topic, v))
            .transpose()?;
        let mut out = Vec::with_capacity(RESPONSE_HEADER + value.as_ref().map_or(0, Vec::len));
        out.push(VERSION);
        out.push(u8::from(value.is_some()));
        put_hash(&mut out, r.hash);
        out.extend_from_slice(&r.primary_partition.to_be_bytes());
        out.extend_from_slice(value.as_deref().unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Response<VO>, SerdeError> {
        let bytes = require(bytes, topic)?;
        if bytes.len() < RESPONSE_HEADER {
            return Err(SerdeError::Length {
                expected: RESPONSE_HEADER,
                actual: bytes.len(),
            });
        }
        if bytes[0] != VERSION {
            return Err(invalid(format!("unknown response version {}", bytes[0])));
        }
        let value = match bytes[1] {
            0 => None,
            1 => Some(
                self.value
                    .deserialize(topic, Some(&bytes[RESPONSE_HEADER..]))?,
            ),
            other => return Err(invalid(format!("unknown response flags {other}"))),
        };
        Ok(Response {
            hash: read_hash(&bytes, 2)?,
            value,
            primary_partition: read_i32(&bytes, 11)?,
        })
    }
}

/// Key of the subscription store: foreign key, then primary key. `primary: None` only
/// serializes, to the prefix shared by every subscriber of `foreign`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CombinedKey<KO, K> {
    pub foreign: KO,
    pub primary: Option<K>,
}

/// Writes a [`CombinedKey`] as `[4-byte length of the foreign key][foreign key][primary
/// key]`; the length keeps foreign key `a` from matching the prefix of `ab`.
pub(crate) struct CombinedKeySerde<KO, K> {
    foreign: Arc<dyn Serde<KO>>,
    primary: Arc<dyn Serde<K>>,
}

impl<KO, K> CombinedKeySerde<KO, K> {
    pub fn new(foreign: Arc<dyn Serde<KO>>, primary: Arc<dyn Serde<K>>) -> Self {
        CombinedKeySerde { foreign, primary }
    }
}

impl<KO: 'static, K: 'static> Serde<CombinedKey<KO, K>> for CombinedKeySerde<KO, K> {
    fn serialize(
        &self,
        topic: &str,
        key: &CombinedKey<KO, K>,
    ) -> Result<Option<Vec<u8>>, SerdeError> {
        let foreign = serialize_or_empty(self.foreign.as_ref(), topic, &key.foreign)?;
        let len = u32::try_from(foreign.len()).map_err(|_| invalid("foreign key too long"))?;
        let mut out = Vec::with_capacity(4 + foreign.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&foreign);
        if let Some(primary) = &key.primary {
            out.extend(serialize_or_empty(self.primary.as_ref(), topic, primary)?);
        }
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<CombinedKey<KO, K>, SerdeError> {
        let bytes = require(bytes, topic)?;
        if bytes.len() < 4 {
            return Err(SerdeError::Length {
                expected: 4,
                actual: bytes.len(),
            });
        }
        let len = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        let Some(foreign) = bytes.get(4..4 + len) else {
            return Err(SerdeError::Length {
                expected: 4 + len,
                actual: bytes.len(),
            });
        };
        Ok(CombinedKey {
            foreign: self.foreign.deserialize(topic, Some(foreign))?,
            primary: Some(self.primary.deserialize(topic, Some(&bytes[4 + len..]))?),
        })
    }
}

/// What the subscription store keeps per subscriber: the hash of the subscribing left
/// value and the partition its answers go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subscriber {
    pub hash: u64,
    pub primary_partition: i32,
}

/// Writes a [`Subscriber`] as `[8-byte hash][4-byte partition]`.
pub(crate) struct SubscriberSerde;

impl Serde<Subscriber> for SubscriberSerde {
    fn serialize(&self, _topic: &str, s: &Subscriber) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut out = s.hash.to_be_bytes().to_vec();
        out.extend_from_slice(&s.primary_partition.to_be_bytes());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Subscriber, SerdeError> {
        let bytes = require(bytes, topic)?;
        if bytes.len() != 12 {
            return Err(SerdeError::Length {
                expected: 12,
                actual: bytes.len(),
            });
        }
        Ok(Subscriber {
            hash: read_u64(&bytes, 0)?,
            primary_partition: read_i32(&bytes, 8)?,
        })
    }
}

/// What the join last emitted for a primary key: the left value and right value it was
/// computed from (the result store keeps these rather than the result, which may have no
/// serde). Present only while a result row exists downstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Emitted<V, VO> {
    pub left: V,
    pub right: Option<VO>,
}

/// Writes an [`Emitted`] as `[1 if a right value follows][4-byte left length][left][right]`.
pub(crate) struct EmittedSerde<V, VO> {
    left: Arc<dyn Serde<V>>,
    right: Arc<dyn Serde<VO>>,
}

impl<V, VO> EmittedSerde<V, VO> {
    pub fn new(left: Arc<dyn Serde<V>>, right: Arc<dyn Serde<VO>>) -> Self {
        EmittedSerde { left, right }
    }
}

impl<V: 'static, VO: 'static> Serde<Emitted<V, VO>> for EmittedSerde<V, VO> {
    fn serialize(&self, topic: &str, e: &Emitted<V, VO>) -> Result<Option<Vec<u8>>, SerdeError> {
        let left = serialize_or_empty(self.left.as_ref(), topic, &e.left)?;
        let right = e
            .right
            .as_ref()
            .map(|v| serialize_or_empty(self.right.as_ref(), topic, v))
            .transpose()?;
        let len = u32::try_from(left.len()).map_err(|_| invalid("left value too long"))?;
        let mut out = Vec::with_capacity(5 + left.len() + right.as_ref().map_or(0, Vec::len));
        out.push(u8::from(right.is_some()));
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&left);
        out.extend_from_slice(right.as_deref().unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Emitted<V, VO>, SerdeError> {
        let bytes = require(bytes, topic)?;
        if bytes.len() < 5 {
            return Err(SerdeError::Length {
                expected: 5,
                actual: bytes.len(),
            });
        }
        let len = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let Some(left) = bytes.get(5..5 + len) else {
            return Err(SerdeError::Length {
                expected: 5 + len,
                actual: bytes.len(),
            });
        };
        let right = &bytes[5 + len..];
        Ok(Emitted {
            left: self.left.deserialize(topic, Some(left))?,
            right: match bytes[0] {
                0 => None,
                _ => Some(self.right.deserialize(topic, Some(right))?),
            },
        })
    }
}

/// Extracts the foreign key from a left value.
pub(crate) type ForeignKeyExtractor<V, KO> = Arc<dyn Fn(&V) -> KO + Send + Sync>;

/// Joins a left value with the right value of its foreign key; `None` means no result
/// row (an inner join without a right value).
pub(crate) type ForeignKeyJoiner<V, VO, VR> =
    Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

fn serialize_error(node: &str, topic: &str, source: SerdeError) -> ProcessError {
    ProcessError::Serialize {
        node: node.to_string(),
        topic: topic.to_string(),
        source,
    }
}

/// Left side, hop 1: turns left changes into subscriptions keyed by foreign key.
pub(crate) struct SubscriptionSender<V, KO> {
    pub foreign_key: ForeignKeyExtractor<V, KO>,
    pub foreign_key_serde: Arc<dyn Serde<KO>>,
    pub value_serde: Arc<dyn Serde<V>>,
    /// Left joins answer a new row even without a foreign row.
    pub left_join: bool,
    /// The subscription topic (unresolved), passed to the serdes.
    pub topic: String,
}

impl<K: Data, V: Data, KO: Data> Processor<K, Change<V>, KO, Subscription<K>>
    for SubscriptionSender<V, KO>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, Subscription<K>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let node = "KTABLE-FK-JOIN-SUBSCRIPTION-SENDER";
        let foreign_key = |v: &V| -> Result<(KO, Vec<u8>), ProcessError> {
            let fk = (self.foreign_key)(v);
            let bytes = serialize_or_empty(self.foreign_key_serde.as_ref(), &self.topic, &fk)
                .map_err(|e| serialize_error(node, &self.topic, e))?;
            Ok((fk, bytes))
        };
        let hash = record
            .value
            .new
            .as_ref()
            .map(|v| {
                serialize_or_empty(self.value_serde.as_ref(), &self.topic, v)
                    .map(|bytes| value_hash(&bytes))
                    .map_err(|e| serialize_error(node, &self.topic, e))
            })
            .transpose()?;
        let primary_partition = ctx.record_metadata().map_or(-1, |m| m.partition);
        let new = record.value.new.as_ref().map(foreign_key).transpose()?;
        let old = record.value.old.as_ref().map(foreign_key).transpose()?;
        let mut send = |fk: KO, instruction: Instruction| {
            let subscription = Subscription {
                instruction,
                primary_key: record.key.clone(),
                hash,
                primary_partition,
            };
            ctx.forward(record.clone().with_key(fk).with_value(subscription))
        };
        match (old, new) {
            (Some((old_fk, old_bytes)), Some((new_fk, new_bytes))) => {
                if old_bytes != new_bytes {
                    send(old_fk, Instruction::DeleteKeyNoPropagate)?;
                }
                // The result must change even without a foreign row: always answer.
                send(new_fk, Instruction::PropagateNullIfNoFkValAvailable)
            }
            (Some((old_fk, _)), None) => send(old_fk, Instruction::DeleteKeyAndPropagate),
            (None, Some((new_fk, _))) if self.left_join => {
                send(new_fk, Instruction::PropagateNullIfNoFkValAvailable)
            }
            (None, Some((new_fk, _))) => send(new_fk, Instruction::PropagateOnlyIfFkValAvailable),
            (None, None) => Ok(()),
        }
    }
}

/// Right side, hop 2: records subscriptions and answers them as they ask, with the
/// right table's current value of the foreign key. An answer carries the later of the
/// subscription's timestamp and the right row's.
pub(crate) struct SubscriptionReceiver {
    pub subscription_store: String,
    pub right_store: String,
    /// Timestamps of the right table's rows, by key.
    pub right_times: String,
}

impl<KO: Data, K: Data, VO: Data> Processor<KO, Subscription<K>, K, Response<VO>>
    for SubscriptionReceiver
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Response<VO>>,
        record: Record<KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        let subscriptions =
            ctx.key_value_store::<CombinedKey<KO, K>, Subscriber>(&self.subscription_store)?;
        let key = CombinedKey {
            foreign: record.key.clone(),
            primary: Some(record.value.primary_key.clone()),
        };
        let subscription = &record.value;
        let mut timestamp = record.timestamp;
        let value = match subscription.instruction {
            Instruction::DeleteKeyNoPropagate => {
                subscriptions.delete(&key)?;
                return Ok(());
            }
            Instruction::DeleteKeyAndPropagate => {
                subscriptions.delete(&key)?;
                None
            }
            Instruction::PropagateNullIfNoFkValAvailable
            | Instruction::PropagateOnlyIfFkValAvailable => {
                if let Some(hash) = subscription.hash {
                    subscriptions.put(
                        &key,
                        &Subscriber {
                            hash,
                            primary_partition: subscription.primary_partition,
                        },
                    )?;
                }
                let value = ctx
                    .key_value_store::<KO, VO>(&self.right_store)?
                    .get(&record.key)?;
                if value.is_none()
                    && subscription.instruction == Instruction::PropagateOnlyIfFkValAvailable
                {
                    return Ok(());
                }
                if value.is_some() {
                    let right_time = ctx
                        .key_value_store::<KO, i64>(&self.right_times)?
                        .get(&record.key)?;
                    timestamp = timestamp.max(right_time.unwrap_or(i64::MIN));
                }
                value
            }
        };
        let response = Response {
            hash: subscription.hash,
            value,
            primary_partition: subscription.primary_partition,
        };
        let primary_key = subscription.primary_key.clone();
        ctx.forward(
            record
                .with_key(primary_key)
                .with_value(response)
                .with_timestamp(timestamp),
        )
    }
}

/// Right side: sends each right-table change to every current subscriber of its key,
/// and records the timestamp of the right table's rows for answers to subscriptions.
pub(crate) struct ForeignRowChanged {
    pub subscription_store: String,
    /// Timestamps of the right table's rows, by key.
    pub right_times: String,
}

impl<KO: Data, K: Data, VO: Data> Processor<KO, Change<VO>, K, Response<VO>> for ForeignRowChanged {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Response<VO>>,
        record: Record<KO, Change<VO>>,
    ) -> Result<(), ProcessError> {
        let right_times = ctx.key_value_store::<KO, i64>(&self.right_times)?;
        if record.value.new.is_some() {
            right_times.put(&record.key, &record.timestamp)?;
        } else {
            right_times.delete(&record.key)?;
        }
        if record.value.new.is_none() && record.value.old.is_none() {
            return Ok(());
        }
        let subscribers = ctx
            .key_value_store::<CombinedKey<KO, K>, Subscriber>(&self.subscription_store)?
            .prefix_scan(&CombinedKey {
                foreign: record.key.clone(),
                primary: None,
            })?;
        for (key, subscriber) in subscribers {
            let Some(primary_key) = key.primary else {
                continue;
            };
            let response = Response {
                hash: Some(subscriber.hash),
                value: record.value.new.clone(),
                primary_partition: subscriber.primary_partition,
            };
            ctx.forward(record.clone().with_key(primary_key).with_value(response))?;
        }
        Ok(())
    }
}

/// Left side, hop 3: joins answers that match the current left value and emits the
/// change of the result row (a tombstone when there is no result); stale answers are
/// dropped.
pub(crate) struct ResponseJoiner<V, VO, VR> {
    pub left_store: String,
    pub result_store: String,
    pub value_serde: Arc<dyn Serde<V>>,
    pub joiner: ForeignKeyJoiner<V, VO, VR>,
    /// The subscription topic (unresolved), passed to the value serde for hashing.
    pub topic: String,
}

impl<K: Data, V: Data, VO: Data, VR: Data> Processor<K, Response<VO>, K, Change<VR>>
    for ResponseJoiner<V, VO, VR>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VR>>,
        record: Record<K, Response<VO>>,
    ) -> Result<(), ProcessError> {
        let current = ctx
            .key_value_store::<K, V>(&self.left_store)?
            .get(&record.key)?;
        let current_hash = current
            .as_ref()
            .map(|v| {
                serialize_or_empty(self.value_serde.as_ref(), &self.topic, v)
                    .map(|bytes| value_hash(&bytes))
                    .map_err(|e| serialize_error("KTABLE-FK-JOIN-RESPONSE", &self.topic, e))
            })
            .transpose()?;
        if current_hash != record.value.hash {
            // Answers a value the row no longer has; the answer to the current one follows.
            tracing::trace!(
                node = ctx.node_name(),
                "dropping a foreign-key join answer for an outdated left value"
            );
            return Ok(());
        }
        let emitted = ctx.key_value_store::<K, Emitted<V, VO>>(&self.result_store)?;
        let old = emitted
            .get(&record.key)?
            .and_then(|e| (self.joiner)(&e.left, e.right.as_ref()));
        let right = record.value.value.clone();
        let new = current
            .as_ref()
            .and_then(|left| (self.joiner)(left, right.as_ref()));
        match current {
            Some(left) if new.is_some() => emitted.put(&record.key, &Emitted { left, right })?,
            _ => {
                emitted.delete(&record.key)?;
            }
        }
        ctx.forward(record.with_value(Change::new(new, old)))
    }
}

/// Writes the stream at `node` to internal topic `<base>-topic`, co-partitioned with the
/// sub-topology of `like_node`, and reads it back; returns the source node. Records go
/// to the partition `partitioner` picks, by default to the one of their key.
fn through_internal_topic<K: Data, V: Data>(
    builder: &Rc<RefCell<TopologyBuilder>>,
    node: usize,
    base: &str,
    like_node: usize,
    (key_serde, value_serde): (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>),
    partitioner: Option<StreamPartitioner<K, V>>,
) -> usize {
    let topic = TopicName::internal(format!("{base}-topic"));
    {
        let mut b = builder.borrow_mut();
        let (k, v, p) = (key_serde.clone(), value_serde.clone(), partitioner);
        let target: SinkTarget<K, V> = SinkTarget::Fixed(topic.clone());
        b.add_node(
            format!("{base}-sink"),
            NodeKind::Sink {
                topic: SinkTopic::Fixed(topic.clone()),
                factory: Arc::new(move || {
                    Box::new(SinkNode {
                        target: target.clone(),
                        key_serde: k.clone(),
                        value_serde: v.clone(),
                        partitioner: p.clone(),
                    })
                }),
            },
            vec![node],
        );
        b.add_internal_topic(InternalTopic {
            name: topic.clone(),
            kind: InternalTopicKind::Repartition,
            partitions: None,
            like_node: Some(like_node),
        });
    }
    let builder = StreamsBuilder {
        inner: builder.clone(),
    };
    let consumed = Consumed {
        key_serde,
        value_serde,
        timestamp_extractor: None,
        offset_reset: None,
        name: Some(format!("{base}-source")),
    };
    builder
        .stream_from(SourceTopics::Names(vec![topic]), consumed)
        .node
}

/// Reports a missing serde of a foreign-key join's table; `true` if one is missing.
fn missing_serde<K, V>(table: &KTable<K, V>, side: &str) -> bool {
    let what = if table.key_serde.is_none() {
        "key"
    } else if table.value_serde.is_none() {
        "value"
    } else {
        return false;
    };
    table
        .builder
        .borrow_mut()
        .report(TopologyError::MissingSerde {
            node: format!(
                "KTABLE-FK-JOIN ({side} table: materialize it with serdes before joining on a foreign key)"
            ),
            what,
        });
    true
}

/// Builds the foreign-key join of `left` with `right` (a left join when `left_join`).
/// The subscription topic is co-partitioned with `right`, the response topic with
/// `left`.
pub(crate) fn join<K: Data, V: Data, KO: Data, VO: Data, VR: Data>(
    left: &KTable<K, V>,
    right: &KTable<KO, VO>,
    foreign_key: ForeignKeyExtractor<V, KO>,
    joiner: ForeignKeyJoiner<V, VO, VR>,
    left_join: bool,
) -> KTable<K, VR> {
    let unusable = |b: &KTable<K, V>| KTable {
        builder: b.builder.clone(),
        node: b.node,
        key_serde: b.key_serde.clone(),
        value_serde: None,
        store: None,
        grace_ms: None,
    };
    let left_missing = missing_serde(left, "left");
    if left_missing || missing_serde(right, "right") {
        return unusable(left);
    }
    let (Some(key_serde), Some(value_serde)) = (left.key_serde.clone(), left.value_serde.clone())
    else {
        return unusable(left);
    };
    let (Some(fk_serde), Some(right_value_serde)) =
        (right.key_serde.clone(), right.value_serde.clone())
    else {
        return unusable(left);
    };
    let left_table = left.ensure_materialized();
    let right_table = right.ensure_materialized();
    let (Some(left_store), Some(right_store)) =
        (left_table.store.clone(), right_table.store.clone())
    else {
        return unusable(left);
    };

    let (registration, response, subscription_store, result_store) = {
        let mut b = left.builder.borrow_mut();
        let registration = b.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-");
        let response = b.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-");
        let subscription_store = b.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-");
        let result_store = b.next_name("KTABLE-FK-JOIN-RESULT-STATE-STORE-");
        let subscriptions = Stores::key_value(
            subscription_store.clone(),
            CombinedKeySerde::new(fk_serde.clone(), key_serde.clone()),
            SubscriberSerde,
        );
        b.add_store(subscriptions.into_definition().0);
        let results = Stores::key_value(
            result_store.clone(),
            key_serde.clone(),
            EmittedSerde::new(value_serde.clone(), right_value_serde.clone()),
        );
        b.add_store(results.into_definition().0);
        (registration, response, subscription_store, result_store)
    };
    let topic = format!("{registration}-topic");

    // Hop 1, left task: subscriptions out.
    let fk = foreign_key.clone();
    let (fks, vs, t) = (fk_serde.clone(), value_serde.clone(), topic.clone());
    let sender = add_processor_node::<_, K, Change<V>, KO, Subscription<K>>(
        &left.builder,
        "KTABLE-FK-JOIN-SUBSCRIPTION-SENDER-",
        vec![left_table.node],
        &[],
        move || SubscriptionSender {
            foreign_key: fk.clone(),
            foreign_key_serde: fks.clone(),
            value_serde: vs.clone(),
            left_join,
            topic: t.clone(),
        },
    );
    let subscriptions = through_internal_topic(
        &left.builder,
        sender,
        &registration,
        // Subscriptions are read with the other table: partitioned like it.
        right_table.node,
        (
            fk_serde.clone(),
            Arc::new(SubscriptionSerde::new(key_serde.clone())) as Arc<dyn Serde<Subscription<K>>>,
        ),
        None,
    );

    // Hop 2, right task: answers to subscriptions and right-table changes.
    let right_times = right_table.row_times_store(&right_store, fk_serde.clone());
    let (ss, rs, rt) = (
        subscription_store.clone(),
        right_store.clone(),
        right_times.clone(),
    );
    let receiver = add_processor_node::<_, KO, Subscription<K>, K, Response<VO>>(
        &left.builder,
        "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-",
        vec![subscriptions],
        &[&subscription_store, &right_store, &right_times],
        move || SubscriptionReceiver {
            subscription_store: ss.clone(),
            right_store: rs.clone(),
            right_times: rt.clone(),
        },
    );
    let (ss, rt) = (subscription_store.clone(), right_times.clone());
    let changed = add_processor_node::<_, KO, Change<VO>, K, Response<VO>>(
        &left.builder,
        "KTABLE-FK-JOIN-FOREIGN-CHANGE-",
        vec![right_table.node],
        &[&subscription_store, &right_times],
        move || ForeignRowChanged {
            subscription_store: ss.clone(),
            right_times: rt.clone(),
        },
    );
    let answers = add_merge_node(
        &left.builder,
        "KTABLE-FK-JOIN-RESPONSE-MERGE-",
        vec![receiver, changed],
    );
    let responses = through_internal_topic(
        &left.builder,
        answers,
        &response,
        // Responses are read with this table: partitioned like it.
        left_table.node,
        (
            key_serde.clone(),
            Arc::new(ResponseSerde::new(right_value_serde)) as Arc<dyn Serde<Response<VO>>>,
        ),
        // Answers go back to the partition the left row was read from, whatever
        // partitioner wrote it there.
        Some(
            Arc::new(|_: &str, _: &K, response: &Response<VO>, partitions: i32| {
                (0..partitions)
                    .contains(&response.primary_partition)
                    .then_some(response.primary_partition)
            }) as StreamPartitioner<K, Response<VO>>,
        ),
    );

    // Hop 3, left task: join current answers.
    let (ls, rs, vs, t) = (left_store.clone(), result_store.clone(), value_serde, topic);
    let joined = add_processor_node::<_, K, Response<VO>, K, Change<VR>>(
        &left.builder,
        "KTABLE-FK-JOIN-RESPONSE-JOINER-",
        vec![responses],
        &[&left_store, &result_store],
        move || ResponseJoiner {
            left_store: ls.clone(),
            result_store: rs.clone(),
            value_serde: vs.clone(),
            joiner: joiner.clone(),
            topic: t.clone(),
        },
    );
    KTable {
        builder: left.builder.clone(),
        node: joined,
        key_serde: left.key_serde.clone(),
        value_serde: None,
        store: None,
        grace_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::{I64Serde, StringSerde};

    fn strings() -> Arc<dyn Serde<String>> {
        Arc::new(StringSerde)
    }

    #[test]
    fn subscriptions_round_trip() {
        let serde = SubscriptionSerde::new(strings());
        for s in [
            Subscription {
                instruction: Instruction::PropagateOnlyIfFkValAvailable,
                primary_key: "order-1".to_string(),
                hash: Some(u64::MAX - 7),
                primary_partition: 2,
            },
            Subscription {
                instruction: Instruction::DeleteKeyAndPropagate,
                primary_key: String::new(),
                hash: None,
                primary_partition: -1,
            },
        ] {
            let bytes = serde.serialize("t", &s).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), s);
        }
        let header = |version: u8, instruction: u8| {
            let mut bytes = vec![version, instruction, 1];
            bytes.extend_from_slice(&[0; 12]);
            bytes
        };
        assert!(serde.deserialize("t", Some(&header(1, 3))).is_ok());
        assert!(serde.deserialize("t", Some(&header(1, 9))).is_err());
        assert!(serde.deserialize("t", Some(&header(0, 0))).is_err());
        assert!(serde.deserialize("t", Some(&[0, 0, 0])).is_err());
        assert!(serde.deserialize("t", None).is_err());
    }

    #[test]
    fn responses_round_trip_with_and_without_a_value() {
        let serde = ResponseSerde::new(Arc::new(I64Serde) as Arc<dyn Serde<i64>>);
        for r in [
            Response {
                hash: Some(42),
                value: Some(-5),
                primary_partition: 0,
            },
            Response {
                hash: Some(1 << 63),
                value: None,
                primary_partition: 7,
            },
            Response {
                hash: None,
                value: None,
                primary_partition: -1,
            },
        ] {
            let bytes = serde.serialize("t", &r).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), r);
        }
        let mut bytes = vec![1, 2, 0];
        bytes.extend_from_slice(&[0; 12]);
        assert!(serde.deserialize("t", Some(&bytes)).is_err());
    }

    #[test]
    fn combined_keys_group_subscribers_under_a_length_prefixed_foreign_key() {
        let serde = CombinedKeySerde::new(strings(), strings());
        let key = CombinedKey {
            foreign: "ab".to_string(),
            primary: Some("k".to_string()),
        };
        let bytes = serde.serialize("t", &key).unwrap().unwrap();
        assert_eq!(bytes, b"\0\0\0\x02abk");
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), key);
        let prefix = |fk: &str| {
            serde
                .serialize(
                    "t",
                    &CombinedKey {
                        foreign: fk.to_string(),
                        primary: None,
                    },
                )
                .unwrap()
                .unwrap()
        };
        assert!(bytes.starts_with(&prefix("ab")));
        // Foreign key "a" must not find subscribers of "ab".
        assert!(!bytes.starts_with(&prefix("a")));
        assert!(serde.deserialize("t", Some(b"\0\0\0\x09ab")).is_err());
    }

    #[test]
    fn emitted_rows_round_trip() {
        let serde = EmittedSerde::new(strings(), Arc::new(I64Serde) as Arc<dyn Serde<i64>>);
        for e in [
            Emitted {
                left: "left".to_string(),
                right: Some(7),
            },
            Emitted {
                left: String::new(),
                right: None,
            },
        ] {
            let bytes = serde.serialize("t", &e).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), e);
        }
        let subscriber = Subscriber {
            hash: 99,
            primary_partition: 4,
        };
        assert_eq!(
            SubscriberSerde
                .deserialize(
                    "t",
                    SubscriberSerde
                        .serialize("t", &subscriber)
                        .unwrap()
                        .as_deref()
                )
                .unwrap(),
            subscriber
        );
    }

    #[test]
    fn value_hash_is_fnv1a_64() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(value_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(value_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(value_hash(b"v1"), value_hash(b"v2"));
    }
}
