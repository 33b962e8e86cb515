//! The membership topic `<application.id>-membership`: a compacted, single-partition
//! internal topic. Stream threads announce their assignment after each rebalance; a
//! thread of the instance sends the announcements and reads every instance's back into
//! the [`MembershipTable`].

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::membership::{ClusterView, MemberRecord, MembershipTable};
use crate::processor::TaskId;
use crate::runtime::consumer_config::{apply_consumer_overrides, consumer_config};
use crate::runtime::{StreamsConfig, StreamsError};

/// The name of the membership topic of `application_id`.
pub(crate) fn membership_topic(application_id: &str) -> String {
    format!("{application_id}-membership")
}

/// How long the last announcements may take to reach the broker at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The group identity of a consumer after an assignment: its generation, member id and
/// static instance id.
pub(crate) struct GroupIdentity {
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Reads the group identity of `consumer` (a member of a group), from librdkafka's
/// consumer group metadata; the safe API of rdkafka does not expose it.
pub(crate) fn group_identity<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
) -> Option<GroupIdentity> {
    let string = |ptr: *const std::os::raw::c_char| {
        // SAFETY: the pointer is null or a NUL-terminated string owned by the metadata
        // object, which is alive here.
        (!ptr.is_null()).then(|| {
            unsafe { CStr::from_ptr(ptr) }
                .to_string_lossy()
                .into_owned()
        })
    };
    // SAFETY: the client pointer is valid while `consumer` lives; the metadata object
    // returned is a copy owned here and destroyed before returning.
    unsafe {
        let metadata = rdsys::rd_kafka_consumer_group_metadata(consumer.client().native_ptr());
        if metadata.is_null() {
            return None;
        }
        let identity = GroupIdentity {
            generation: rdsys::rd_kafka_consumer_group_metadata_generation_id(metadata),
            member_id: string(rdsys::rd_kafka_consumer_group_metadata_member_id(metadata))
                .unwrap_or_default(),
            group_instance_id: string(rdsys::rd_kafka_consumer_group_metadata_group_instance_id(
                metadata,
            ))
            .filter(|id| !id.is_empty()),
        };
        rdsys::rd_kafka_consumer_group_metadata_destroy(metadata);
        Some(identity)
    }
}

/// The membership consumer's context: reaching the end of the topic is how the
/// thread knows it has caught up, not an error (librdkafka also reports it as a
/// client-wide error event, which rdkafka's default context logs at ERROR level).
struct EndIsNews;

impl ClientContext for EndIsNews {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        match error {
            rdkafka::error::KafkaError::PartitionEOF(_) => {
                tracing::trace!("end of the membership topic: {reason}")
            }
            other => tracing::error!("membership consumer: {other}: {reason}"),
        }
    }
}

impl ConsumerContext for EndIsNews {}

/// This instance's side of the membership: its announcements and the table of every
/// instance's, read from the topic.
pub(crate) struct Membership {
    topic: String,
    process_id: String,
    endpoint: Option<String>,
    table: RwLock<MembershipTable>,
    /// The generation each live stream thread of this instance joined last, and the
    /// tasks it was assigned then.
    local_generations: Mutex<BTreeMap<usize, (i32, Vec<TaskId>)>>,
    /// Records to send, by key (`None`: a tombstone).
    outbox: Mutex<Vec<(String, Option<MemberRecord>)>>,
    /// Whether the topic was read up to its end once since start.
    caught_up: AtomicBool,
}

impl Membership {
    /// The membership of instance `process_id`, serving queries on `endpoint`.
    pub fn new(config: &StreamsConfig, process_id: &str) -> Self {
        Membership {
            topic: membership_topic(&config.application_id),
            process_id: process_id.to_string(),
            endpoint: config.application_server.clone(),
            table: RwLock::new(MembershipTable::default()),
            local_generations: Mutex::new(BTreeMap::new()),
            outbox: Mutex::new(Vec::new()),
            caught_up: AtomicBool::new(false),
        }
    }

    /// The newest group generation a stream thread of this instance joined.
    pub fn local_generation(&self) -> Option<i32> {
        lock(&self.local_generations)
            .values()
            .map(|(generation, _)| *generation)
            .max()
    }

    /// The tasks this instance's stream threads were assigned last.
    pub fn local_tasks(&self) -> std::collections::BTreeSet<TaskId> {
        lock(&self.local_generations)
            .values()
            .flat_map(|(_, tasks)| tasks.iter().copied())
            .collect()
    }

    /// Announces that stream thread `thread` was assigned `tasks` in the generation of
    /// `identity`. Does not block: the record is sent by the membership thread.
    pub fn announce(&self, thread: usize, identity: &GroupIdentity, tasks: &[TaskId]) {
        let record = MemberRecord {
            process_id: self.process_id.clone(),
            endpoint: self.endpoint.clone(),
            member_id: identity.member_id.clone(),
            group_instance_id: identity.group_instance_id.clone(),
            generation: identity.generation,
            active: tasks.iter().map(|t| (t.subtopology, t.partition)).collect(),
        };
        tracing::debug!(
            thread,
            generation = identity.generation,
            ?tasks,
            "announcing the assignment"
        );
        lock(&self.local_generations).insert(thread, (identity.generation, tasks.to_vec()));
        let key = MemberRecord::key(&self.process_id, thread);
        write(&self.table).apply(&key, Some(record.clone()));
        lock(&self.outbox).push((key, Some(record)));
    }

    /// Withdraws stream thread `thread` (stopped, or left the group).
    pub fn withdraw(&self, thread: usize) {
        lock(&self.local_generations).remove(&thread);
        let key = MemberRecord::key(&self.process_id, thread);
        write(&self.table).apply(&key, None);
        lock(&self.outbox).push((key, None));
    }

    /// The current view of who runs what; an error says why there is none now.
    pub fn view(&self, tasks: &BTreeMap<u32, i32>, standbys: usize) -> Result<ClusterView, String> {
        if !self.caught_up.load(Ordering::Acquire) {
            return Err("the membership topic is still being read".into());
        }
        read(&self.table).view(tasks, self.local_generation(), standbys)
    }

    /// Starts the thread that sends announcements and reads the topic, until `stop`
    /// holds and the last announcements are flushed.
    pub fn start(
        self: &Arc<Self>,
        config: &StreamsConfig,
        client_id: &str,
        stop: impl Fn() -> bool + Send + 'static,
    ) -> Result<JoinHandle<()>, StreamsError> {
        let producer = membership_producer(config, client_id)?;
        let mut client = consumer_config(config, format!("{client_id}-membership-consumer"));
        client
            // Assigned, never subscribed: the group id only satisfies librdkafka.
            .set("group.id", &self.topic)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        apply_consumer_overrides(&mut client, config);
        let consumer: BaseConsumer<EndIsNews> = client
            .create_with_context(EndIsNews)
            .map_err(|e| StreamsError::kafka("creating the membership consumer", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, 0, Offset::Beginning)
            .map_err(|e| StreamsError::kafka("assigning the membership topic", e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| StreamsError::kafka("assigning the membership topic", e))?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("membership".into())
            .spawn(move || me.run(producer, consumer, stop))
            .map_err(|e| {
                StreamsError::InvalidState(format!("cannot spawn the membership thread: {e}"))
            })
    }

    fn run(
        &self,
        producer: BaseProducer,
        consumer: BaseConsumer<EndIsNews>,
        stop: impl Fn() -> bool,
    ) {
        while !stop() {
            self.send_outbox(&producer);
            producer.poll(Duration::ZERO);
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(message)) => {
                    let key = message.key().map(String::from_utf8_lossy);
                    let record = message
                        .payload()
                        .map(serde_json::from_slice::<MemberRecord>)
                        .transpose();
                    match (key, record) {
                        (Some(key), Ok(record)) => write(&self.table).apply(&key, record),
                        (_, Err(e)) => {
                            tracing::warn!("skipping a malformed membership record: {e}")
                        }
                        (None, _) => tracing::warn!("skipping a membership record without key"),
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                    self.caught_up.store(true, Ordering::Release);
                }
                Some(Err(e)) => tracing::warn!("reading the membership topic: {e}"),
                None => {}
            }
        }
        self.send_outbox(&producer);
        if let Err(e) = producer.flush(FLUSH_TIMEOUT) {
            tracing::warn!("the last membership announcements were not sent: {e}");
        }
    }

    fn send_outbox(&self, producer: &BaseProducer) {
        let pending = std::mem::take(&mut *lock(&self.outbox));
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        for (key, record) in pending {
            let payload =
                record.map(|r| serde_json::to_vec(&r).expect("membership records serialize"));
            loop {
                let mut message = BaseRecord::<String, Vec<u8>>::to(&self.topic)
                    .key(&key)
                    .partition(0);
                if let Some(payload) = &payload {
                    message = message.payload(payload);
                }
                match producer.send(message) {
                    Ok(()) => break,
                    Err((e, _)) if Instant::now() < deadline => {
                        tracing::debug!("membership send retried: {e}");
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        tracing::warn!("dropping a membership announcement: {e}");
                        break;
                    }
                }
            }
        }
    }
}

fn membership_producer(
    config: &StreamsConfig,
    client_id: &str,
) -> Result<BaseProducer, StreamsError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", format!("{client_id}-membership-producer"))
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0");
    for (k, v) in &config.producer_overrides {
        client.set(k, v);
    }
    client
        .create()
        .map_err(|e| StreamsError::kafka("creating the membership producer", e))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
