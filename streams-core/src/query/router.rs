//! [`QueryRouter`]: answers a query from whichever instance holds the data. A key query
//! goes to the instance running the key's task (read here directly when that is this
//! instance, otherwise one gRPC hop); range and all queries go to every instance and
//! are merged, and only accepted when the answers cover every partition exactly once.
//! Retryable failures (a rebalance under way, a task migrating, an instance gone) are
//! retried with backoff until the caller's deadline.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::byte_reads::{self, ReadError};
use super::proto::store_query_client::StoreQueryClient;
use super::proto::{Answerer, KeyRequest, RangeRequest, WindowRequest};
use crate::processor::TaskId;
use crate::runtime::kafka_streams::Inner;
use crate::runtime::metadata::membership::ClusterView;
use crate::runtime::metadata::{key_metadata, HostInfo, Instance};
use crate::runtime::StreamsError;
use crate::state::task_stores::StoreSlot;
use crate::state::typed::StoreCodec;
use crate::state::{changelog_topic, KvSerdes, Windowed};

/// How a [`QueryRouter`] retries.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// How long a query may take, retries included. Default 5 s.
    pub deadline: Duration,
    /// First wait before a retry, doubled per retry. Default 20 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default 500 ms.
    pub max_backoff: Duration,
    /// Whether a key query the active instance cannot answer now may be answered by a
    /// standby, whose value may lag. Default false.
    pub allow_stale: bool,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            deadline: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            allow_stale: false,
        }
    }
}

/// A routed answer: the value, who gave it, and how many attempts it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed<T> {
    /// The answer.
    pub value: T,
    /// The instances that answered (one for a key query, every instance for a fan-out).
    pub answered_by: Vec<Instance>,
    /// Attempts made (1 when the first one answered).
    pub attempts: u32,
}

/// Sends queries to the instances holding the data; made by
/// [`KafkaStreams::router`](crate::runtime::KafkaStreams::router). Cheap to clone;
/// clones share their connections.
#[derive(Clone)]
pub struct QueryRouter {
    inner: Arc<Inner>,
    options: RouterOptions,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

/// The answer of one attempt, and who gave it.
type Attempt<T> = Result<(T, Vec<Instance>), StreamsError>;

fn remote_error(endpoint: &str, status: Status) -> StreamsError {
    // Unavailable: the task is not (or no longer) there, or the instance is gone.
    let retryable = matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    );
    StreamsError::Remote {
        endpoint: endpoint.to_string(),
        retryable,
        message: format!("{:?}: {}", status.code(), status.message()),
    }
}

fn read_error(error: ReadError) -> StreamsError {
    match error {
        ReadError::WrongKind { .. } => StreamsError::InvalidState(error.to_string()),
        other => StreamsError::InvalidState(format!("store query failed: {other}")),
    }
}

fn decode_error(store: &str) -> impl Fn(crate::processor::ProcessError) -> StreamsError + '_ {
    move |e| StreamsError::InvalidState(format!("decoding an answer of store {store}: {e}"))
}

impl QueryRouter {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        QueryRouter {
            inner,
            options: RouterOptions::default(),
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same router with other retry settings.
    pub fn with_options(mut self, options: RouterOptions) -> Self {
        self.options = options;
        self
    }

    /// The same router with another deadline per query.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.options.deadline = deadline;
        self
    }

    /// The value of `key` in key-value store `store` (declared with these types),
    /// wherever it lives.
    pub async fn get<K: 'static, V: 'static>(
        &self,
        store: &str,
        key: &K,
    ) -> Result<Routed<Option<V>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let key = codec.key_bytes(key)?;
        let routed = self
            .retrying(|deadline| self.get_bytes(store, &key, deadline))
            .await?;
        map_routed(routed, |value| value.map(|v| codec.value(&v)).transpose())
    }

    /// Every entry of key-value store `store`, from every instance.
    pub async fn all<K: 'static, V: 'static>(
        &self,
        store: &str,
    ) -> Result<Routed<Vec<(K, V)>>, StreamsError> {
        self.range(store, None, None).await
    }

    /// Entries of key-value store `store` with `from <= key <= to` (`None` leaves an
    /// end open), from every instance: each instance's entries in key order, instances
    /// one after the other.
    pub async fn range<K: 'static, V: 'static>(
        &self,
        store: &str,
        from: Option<&K>,
        to: Option<&K>,
    ) -> Result<Routed<Vec<(K, V)>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let bound = |k: Option<&K>| k.map(|k| codec.key_bytes(k)).transpose();
        let request = RangeRequest {
            store: store.to_string(),
            from: bound(from)?,
            to: bound(to)?,
            prefix: None,
            allow_stale: false,
        };
        self.range_request(&codec, request).await
    }

    /// Entries of key-value store `store` whose serialized key starts with the
    /// serialized `prefix`, from every instance.
    pub async fn prefix_scan<K: 'static, V: 'static>(
        &self,
        store: &str,
        prefix: &K,
    ) -> Result<Routed<Vec<(K, V)>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let request = RangeRequest {
            store: store.to_string(),
            from: None,
            to: None,
            prefix: Some(codec.key_bytes(prefix)?),
            allow_stale: false,
        };
        self.range_request(&codec, request).await
    }

    /// The windows of `key` in window store `store` starting within `[from, to]`, as
    /// `(window start, value)`.
    pub async fn fetch_windows<K: 'static, V: 'static>(
        &self,
        store: &str,
        key: &K,
        from: i64,
        to: i64,
    ) -> Result<Routed<Vec<(i64, V)>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let key = codec.key_bytes(key)?;
        let routed = self
            .retrying(|deadline| {
                let key = &key;
                async move {
                    let task = self
                        .inner
                        .layout_or_unavailable()?
                        .task_for_key(store, key)?;
                    let request = WindowRequest {
                        store: store.to_string(),
                        key: Some(key.clone()),
                        partition: task.partition,
                        time_from: from,
                        time_to: to,
                        ..WindowRequest::default()
                    };
                    self.windows_at(task, request, deadline).await
                }
            })
            .await?;
        map_routed(routed, |entries| {
            entries
                .into_iter()
                .map(|(_, start, v)| Ok((start, codec.value(&v)?)))
                .collect()
        })
    }

    /// Windows of every key in window store `store` starting within `[from, to]`, from
    /// every instance.
    pub async fn fetch_all_windows<K: 'static, V: 'static>(
        &self,
        store: &str,
        from: i64,
        to: i64,
    ) -> Result<Routed<Vec<(Windowed<K>, V)>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let size = self.window_size(store);
        let request = WindowRequest {
            store: store.to_string(),
            time_from: from,
            time_to: to,
            ..WindowRequest::default()
        };
        let routed = self
            .retrying(|deadline| self.fan_out_windows(request.clone(), deadline))
            .await?;
        map_routed(routed, |entries| {
            entries
                .into_iter()
                .map(|(k, start, v)| {
                    let key = codec.key(&k)?;
                    let value = codec.value(&v)?;
                    Ok((Windowed::new(key, start, start.saturating_add(size)), value))
                })
                .collect()
        })
    }

    /// The sessions of `key` in session store `store`.
    pub async fn fetch_sessions<K: 'static, V: 'static>(
        &self,
        store: &str,
        key: &K,
    ) -> Result<Routed<Vec<(Windowed<K>, V)>>, StreamsError> {
        let codec = self.codec::<K, V>(store)?;
        let key_bytes = codec.key_bytes(key)?;
        let routed = self
            .retrying(|deadline| self.sessions_bytes(store, &key_bytes, deadline))
            .await?;
        map_routed(routed, |entries| {
            entries
                .into_iter()
                .map(|(k, start, end, v)| {
                    let key = codec.key(&k)?;
                    let value = codec.value(&v)?;
                    Ok((Windowed::new(key, start, end), value))
                })
                .collect()
        })
    }

    /// The codec of `store` for encoding keys and decoding answers.
    fn codec<K: 'static, V: 'static>(
        &self,
        store: &str,
    ) -> Result<AnswerCodec<K, V>, StreamsError> {
        let definition = self.inner.topology.stores.get(store).ok_or_else(|| {
            StreamsError::InvalidState(format!("the topology has no store named {store}"))
        })?;
        let topic = changelog_topic(&self.inner.config.application_id, store);
        // The same type check (and message) as the stores' typed handles.
        StoreCodec::<K, V>::for_definition(definition, &topic)
            .map_err(|e| StreamsError::InvalidState(e.to_string()))?;
        let serdes = definition
            .serdes
            .clone()
            .downcast::<KvSerdes<K, V>>()
            .expect("the codec checked the types");
        Ok(AnswerCodec {
            name: definition.name.clone(),
            topic,
            serdes,
        })
    }

    fn window_size(&self, store: &str) -> i64 {
        match self.inner.topology.stores.get(store).map(|d| d.kind) {
            Some(crate::state::definition::StoreKind::Window { window_size_ms, .. }) => {
                window_size_ms
            }
            _ => 0,
        }
    }

    /// Runs `attempt` until it answers, fails for good, or the deadline passes.
    async fn retrying<'a, T, F, Fut>(&'a self, mut attempt: F) -> Result<Routed<T>, StreamsError>
    where
        F: FnMut(Instant) -> Fut,
        Fut: Future<Output = Attempt<T>> + 'a,
    {
        let deadline = Instant::now() + self.options.deadline;
        let mut backoff = self.options.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt(deadline).await {
                Ok((value, answered_by)) => {
                    return Ok(Routed {
                        value,
                        answered_by,
                        attempts,
                    })
                }
                Err(e) if e.is_retryable() => {
                    let now = Instant::now();
                    if now + backoff >= deadline {
                        return Err(StreamsError::DeadlineExceeded {
                            attempts,
                            last: e.to_string(),
                        });
                    }
                    tracing::debug!(attempts, "retrying a routed query: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The view and the instance of this process.
    fn view(&self) -> Result<ClusterView, StreamsError> {
        self.inner.cluster_view().map(|(view, _)| view)
    }

    fn is_local(&self, instance: &Instance) -> bool {
        instance.process_id == self.inner.process_id
    }

    /// A client for `host`, connecting lazily and shared by every query to it.
    fn client(&self, host: &HostInfo) -> Result<StoreQueryClient<Channel>, StreamsError> {
        let address = host.to_string();
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get(&address) {
            return Ok(StoreQueryClient::new(channel.clone()));
        }
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| StreamsError::Config(format!("instance endpoint {address}: {e}")))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        channels.insert(address, channel.clone());
        Ok(StoreQueryClient::new(channel))
    }

    /// The host of `instance`, which must serve queries.
    fn host_of(instance: &Instance) -> Result<&HostInfo, StreamsError> {
        instance
            .host
            .as_ref()
            .ok_or_else(|| StreamsError::MetadataNotAvailable {
                reason: format!(
                    "instance {} announced no application_server",
                    instance.process_id
                ),
            })
    }

    /// A request carrying the time left until `deadline`.
    fn request<T>(message: T, deadline: Instant) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        );
        request
    }

    /// The local slot of `store` for `task` (a standby one too with `stale`), or a
    /// retryable error when it does not run here.
    fn local_slot(
        &self,
        store: &str,
        task: TaskId,
        stale: bool,
    ) -> Result<Arc<StoreSlot>, StreamsError> {
        let queryable = &self.inner.shared.queryable;
        let slots = if stale {
            queryable.slots_with_stale(store)
        } else {
            queryable.slots(store)
        };
        slots
            .into_iter()
            .find(|(id, _)| *id == task)
            .map(|(_, slot)| slot)
            .ok_or_else(|| StreamsError::StoreNotAvailable {
                store: store.to_string(),
            })
    }

    /// Who runs the task of `key` in `store`.
    fn owner(&self, store: &str, key: &[u8]) -> Result<(TaskId, Instance), StreamsError> {
        self.key_metadata(store, key).map(|m| (m.task, m.active))
    }

    fn key_metadata(
        &self,
        store: &str,
        key: &[u8],
    ) -> Result<crate::runtime::KeyQueryMetadata, StreamsError> {
        let view = self.view()?;
        let layout = self.inner.layout_or_unavailable()?;
        key_metadata(&view, layout.task_for_key(store, key)?)
    }

    /// Reads `key` at its active instance; with `allow_stale`, at a standby when the
    /// active one cannot answer now.
    async fn get_bytes(
        &self,
        store: &str,
        key: &[u8],
        deadline: Instant,
    ) -> Attempt<Option<Vec<u8>>> {
        let metadata = self.key_metadata(store, key)?;
        let active = self
            .get_at(store, key, metadata.task, &metadata.active, false, deadline)
            .await;
        match active {
            Err(e) if e.is_retryable() && self.options.allow_stale => {
                for standby in &metadata.standbys {
                    let stale = self
                        .get_at(store, key, metadata.task, standby, true, deadline)
                        .await;
                    if stale.is_ok() {
                        return stale;
                    }
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Runs a query of one task at `instance`: `local` on this instance's slot of the
    /// task (a standby one too with `stale`), otherwise `remote` with a client of it.
    async fn at_instance<T, Fut>(
        &self,
        store: &str,
        task: TaskId,
        instance: &Instance,
        stale: bool,
        local: impl FnOnce(&StoreSlot) -> Result<T, ReadError>,
        remote: impl FnOnce(StoreQueryClient<Channel>) -> Fut,
    ) -> Attempt<T>
    where
        Fut: Future<Output = Result<T, Status>>,
    {
        let answered_by = vec![instance.clone()];
        if self.is_local(instance) {
            let slot = self.local_slot(store, task, stale)?;
            return Ok((local(&slot).map_err(read_error)?, answered_by));
        }
        let host = Self::host_of(instance)?;
        let answer = remote(self.client(host)?)
            .await
            .map_err(|s| remote_error(&host.to_string(), s))?;
        Ok((answer, answered_by))
    }

    /// Reads `key` of `task` at `instance` (a standby copy too with `stale`).
    async fn get_at(
        &self,
        store: &str,
        key: &[u8],
        task: TaskId,
        instance: &Instance,
        stale: bool,
        deadline: Instant,
    ) -> Attempt<Option<Vec<u8>>> {
        let request = KeyRequest {
            store: store.to_string(),
            key: key.to_vec(),
            partition: task.partition,
            allow_stale: stale,
        };
        self.at_instance(
            store,
            task,
            instance,
            stale,
            |slot| byte_reads::get(slot, key),
            |mut client| async move {
                let reply = client.get(Self::request(request, deadline)).await?;
                Ok(reply.into_inner().value)
            },
        )
        .await
    }

    async fn sessions_bytes(
        &self,
        store: &str,
        key: &[u8],
        deadline: Instant,
    ) -> Attempt<Vec<byte_reads::SessionBytes>> {
        let (task, owner) = self.owner(store, key)?;
        let request = KeyRequest {
            store: store.to_string(),
            key: key.to_vec(),
            partition: task.partition,
            allow_stale: false,
        };
        self.at_instance(
            store,
            task,
            &owner,
            false,
            |slot| byte_reads::sessions(slot, key),
            |mut client| async move {
                let reply = client
                    .fetch_sessions(Self::request(request, deadline))
                    .await?;
                Ok(reply
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| (e.key, e.start, e.end, e.value))
                    .collect())
            },
        )
        .await
    }

    async fn windows_at(
        &self,
        task: TaskId,
        request: WindowRequest,
        deadline: Instant,
    ) -> Attempt<Vec<byte_reads::WindowBytes>> {
        let owner = key_metadata(&self.view()?, task)?.active;
        let store = request.store.clone();
        let (key, from, to) = (request.key.clone(), request.time_from, request.time_to);
        self.at_instance(
            &store,
            task,
            &owner,
            false,
            |slot| byte_reads::windows(slot, key.as_deref(), (None, None), from, to),
            |mut client| async move {
                let reply = client
                    .fetch_windows(Self::request(request, deadline))
                    .await?;
                Ok(reply
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| (e.key, e.window_start, e.value))
                    .collect())
            },
        )
        .await
    }

    async fn range_request<K: 'static, V: 'static>(
        &self,
        codec: &AnswerCodec<K, V>,
        request: RangeRequest,
    ) -> Result<Routed<Vec<(K, V)>>, StreamsError> {
        let routed = self
            .retrying(|deadline| self.fan_out_range(request.clone(), deadline))
            .await?;
        map_routed(routed, |entries| {
            entries
                .into_iter()
                .map(|(k, v)| Ok((codec.key(&k)?, codec.value(&v)?)))
                .collect()
        })
    }

    /// Every instance of the current view, each with the answer of `ask` (local reads
    /// for this instance), checked to cover every partition of `store` once.
    async fn fan_out<T, Local, Remote, Fut>(
        &self,
        store: &str,
        local: Local,
        remote: Remote,
    ) -> Attempt<Vec<T>>
    where
        Local: Fn(&Self) -> Result<(Vec<T>, Vec<i32>), StreamsError>,
        Remote: Fn(StoreQueryClient<Channel>) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, Answerer), Status>>,
    {
        let view = self.view()?;
        let layout = self.inner.layout_or_unavailable()?;
        let subtopology = layout.subtopology_of(store)?;
        let partitions = layout.tasks.get(&subtopology).copied().unwrap_or(1);
        let instances: Vec<Instance> = view
            .instances
            .iter()
            .filter(|(_, i)| i.active.iter().any(|t| t.subtopology == subtopology))
            .map(|(process_id, i)| Instance {
                process_id: process_id.clone(),
                host: i.endpoint.as_deref().and_then(|e| e.parse().ok()),
            })
            .collect();
        let mut calls = Vec::new();
        for instance in &instances {
            if self.is_local(instance) {
                calls.push(futures::future::Either::Left(std::future::ready(local(
                    self,
                ))));
            } else {
                let host = Self::host_of(instance)?.to_string();
                let client = self.client(Self::host_of(instance)?)?;
                let call = remote(client);
                calls.push(futures::future::Either::Right(async move {
                    call.await
                        .map(|(entries, answerer)| (entries, answerer.partitions))
                        .map_err(|s| remote_error(&host, s))
                }));
            }
        }
        let answers = futures::future::join_all(calls).await;
        let mut covered: BTreeMap<i32, usize> = BTreeMap::new();
        let mut merged = Vec::new();
        for answer in answers {
            let (entries, answered) = answer?;
            for p in answered {
                *covered.entry(p).or_default() += 1;
            }
            merged.extend(entries);
        }
        let complete = (0..partitions).all(|p| covered.get(&p) == Some(&1))
            && covered.len() == partitions as usize;
        if !complete {
            return Err(StreamsError::MetadataNotAvailable {
                reason: format!(
                    "the answers for store {store} covered partitions {covered:?} (count of answers per partition), not each of 0..{partitions} once"
                ),
            });
        }
        Ok((merged, instances))
    }

    /// The local slots of `store` and their partitions, read with `read`.
    fn local_fan_out<T>(
        &self,
        store: &str,
        read: impl Fn(&StoreSlot) -> Result<Vec<T>, ReadError>,
    ) -> Result<(Vec<T>, Vec<i32>), StreamsError> {
        let mut entries = Vec::new();
        let mut partitions = Vec::new();
        for (task, slot) in self.inner.shared.queryable.slots(store) {
            entries.extend(read(&slot).map_err(read_error)?);
            partitions.push(task.partition);
        }
        Ok((entries, partitions))
    }

    async fn fan_out_range(
        &self,
        request: RangeRequest,
        deadline: Instant,
    ) -> Attempt<Vec<byte_reads::EntryBytes>> {
        let store = request.store.clone();
        self.fan_out(
            &store,
            |me| {
                me.local_fan_out(&store, |slot| {
                    byte_reads::range(
                        slot,
                        request.from.as_deref(),
                        request.to.as_deref(),
                        request.prefix.as_deref(),
                    )
                })
            },
            |mut client| {
                let request = Self::request(request.clone(), deadline);
                async move {
                    let reply = client.range(request).await?.into_inner();
                    let entries = reply
                        .entries
                        .into_iter()
                        .map(|e| (e.key, e.value))
                        .collect();
                    Ok((entries, reply.answerer.unwrap_or_default()))
                }
            },
        )
        .await
    }

    async fn fan_out_windows(
        &self,
        request: WindowRequest,
        deadline: Instant,
    ) -> Attempt<Vec<byte_reads::WindowBytes>> {
        let store = request.store.clone();
        self.fan_out(
            &store,
            |me| {
                me.local_fan_out(&store, |slot| {
                    byte_reads::windows(
                        slot,
                        None,
                        (request.key_from.as_deref(), request.key_to.as_deref()),
                        request.time_from,
                        request.time_to,
                    )
                })
            },
            |mut client| {
                let request = Self::request(request.clone(), deadline);
                async move {
                    let reply = client.fetch_windows(request).await?.into_inner();
                    let entries = reply
                        .entries
                        .into_iter()
                        .map(|e| (e.key, e.window_start, e.value))
                        .collect();
                    Ok((entries, reply.answerer.unwrap_or_default()))
                }
            },
        )
        .await
    }
}

fn map_routed<T, U>(
    routed: Routed<T>,
    f: impl FnOnce(T) -> Result<U, StreamsError>,
) -> Result<Routed<U>, StreamsError> {
    Ok(Routed {
        value: f(routed.value)?,
        answered_by: routed.answered_by,
        attempts: routed.attempts,
    })
}

/// The serdes of one store, owned, for decoding answers (values come without the
/// timestamps timestamped stores keep).
struct AnswerCodec<K, V> {
    name: String,
    topic: String,
    serdes: Arc<KvSerdes<K, V>>,
}

impl<K: 'static, V: 'static> AnswerCodec<K, V> {
    fn get(&self) -> StoreCodec<'_, K, V> {
        StoreCodec {
            name: &self.name,
            topic: &self.topic,
            serdes: &self.serdes,
            timestamped: false,
        }
    }

    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StreamsError> {
        self.get().key_bytes(key).map_err(decode_error(&self.name))
    }

    fn key(&self, bytes: &[u8]) -> Result<K, StreamsError> {
        self.get().key(bytes).map_err(decode_error(&self.name))
    }

    fn value(&self, bytes: &[u8]) -> Result<V, StreamsError> {
        self.get().value(bytes).map_err(decode_error(&self.name))
    }
}
