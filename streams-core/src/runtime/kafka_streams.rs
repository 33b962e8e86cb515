//! `KafkaStreams`: runs a topology on a Kafka cluster with a number of stream threads,
//! and tracks the application's state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::global_thread::GlobalUpdater;
use super::internal_topics::prepare_topics;
use super::stream_thread::{self, ThreadSpec};
use super::{StreamsConfig, StreamsError};
use crate::state::global::GlobalStores;
use streams_state::{RestoreListener, TracingRestoreListener};

use super::local_queries::{
    ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore, Slots,
};
use super::metadata::membership::ClusterView;
use super::metadata::membership_topic::Membership;
use super::metadata::{self, KeyQueryMetadata, StreamsMetadata, TaskLayout};
use super::standby::{StandbyLag, StandbyManager, StandbyStatus};
use crate::processor::TaskId;
use crate::serde::Serde;
use crate::state::queryable::QueryableStores;
use crate::topology::Topology;

/// The lifecycle state of a [`KafkaStreams`] instance, as in Kafka Streams.
///
/// `Created → Rebalancing ⇄ Running → PendingShutdown → NotRunning`; a fatal error under
/// the `ShutdownClient` policy goes `→ PendingError → Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Built, not started.
    Created,
    /// Some stream thread is joining the group or waiting for its assignment.
    Rebalancing,
    /// Every stream thread has its tasks and processes.
    Running,
    /// `close` was called; threads are finishing.
    PendingShutdown,
    /// Closed.
    NotRunning,
    /// A thread failed; the others are stopping.
    PendingError,
    /// Stopped after an error.
    Error,
}

impl State {
    /// Whether the instance may go from `self` to `next`.
    pub fn can_transition_to(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Created, Rebalancing | PendingShutdown | PendingError)
                | (Rebalancing, Running | PendingShutdown | PendingError)
                | (Running, Rebalancing | PendingShutdown | PendingError)
                | (PendingShutdown, NotRunning)
                | (PendingError, Error)
        )
    }

    /// Whether the instance is started and not shutting down.
    pub fn is_running_or_rebalancing(self) -> bool {
        matches!(self, State::Running | State::Rebalancing)
    }
}

/// What happens when a stream thread stops with an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UncaughtErrorPolicy {
    /// Stop every thread of this instance; the state becomes `Error` (the default).
    #[default]
    ShutdownClient,
    /// Start a new thread in place of the failed one; its tasks are reassigned.
    ReplaceThread,
}

/// A state listener: called with `(new, old)` on every transition, from whichever thread
/// made it (a stream thread, or the caller of `start`/`close`).
pub type StateListener = Arc<dyn Fn(State, State) + Send + Sync>;

/// Whether a task processes or is still restoring its stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Bringing its stores up to date from their changelogs; processes nothing yet.
    Restoring,
    /// Processing.
    Running,
}

/// State of one stream thread, as far as the client state is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    Starting,
    Rebalancing,
    Running,
    Dead,
}

/// State shared between the handle and its threads.
pub(crate) struct ClientShared {
    state: Mutex<State>,
    changed: Condvar,
    listener: Mutex<Option<StateListener>>,
    threads: Mutex<BTreeMap<usize, ThreadState>>,
    tasks: Mutex<BTreeMap<usize, Vec<(TaskId, bool)>>>,
    /// The stores of the running tasks of every stream thread, for local queries.
    pub queryable: Arc<QueryableStores>,
    /// The instances' announcements of their tasks, when this instance makes them.
    pub membership: Option<Arc<Membership>>,
    errors: Mutex<Vec<String>>,
    pub shutdown: AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientShared {
    pub(crate) fn new(membership: Option<Arc<Membership>>) -> Self {
        ClientShared {
            state: Mutex::new(State::Created),
            changed: Condvar::new(),
            listener: Mutex::new(None),
            threads: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(BTreeMap::new()),
            queryable: Arc::new(QueryableStores::default()),
            membership,
            errors: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
        }
    }

    fn transition(&self, next: State) -> bool {
        let mut state = locked(&self.state);
        let old = *state;
        if old == next || !old.can_transition_to(next) {
            return false;
        }
        *state = next;
        drop(state);
        self.changed.notify_all();
        tracing::info!("state {old:?} -> {next:?}");
        // Called outside the lock, so a listener may itself use the handle.
        let listener = locked(&self.listener).clone();
        if let Some(listener) = listener {
            listener(next, old);
        }
        true
    }

    pub fn state(&self) -> State {
        *locked(&self.state)
    }

    /// Records a thread's state and derives the client's: `Running` once every live
    /// thread runs, `Rebalancing` while any does not.
    pub fn set_thread_state(&self, index: usize, state: ThreadState) {
        // The threads lock is held through the transition, so two threads reporting at
        // once cannot leave the client in a state that no longer matches its threads.
        let mut threads = locked(&self.threads);
        threads.insert(index, state);
        let all_running = threads
            .values()
            .filter(|s| **s != ThreadState::Dead)
            .all(|s| *s == ThreadState::Running);
        if self.state().is_running_or_rebalancing() {
            self.transition(if all_running {
                State::Running
            } else {
                State::Rebalancing
            });
        }
    }

    pub fn set_thread_tasks(&self, index: usize, tasks: Vec<(TaskId, bool)>) {
        locked(&self.tasks).insert(index, tasks);
    }

    fn live_threads(&self) -> usize {
        locked(&self.threads)
            .values()
            .filter(|s| **s != ThreadState::Dead)
            .count()
    }
}

pub(crate) struct Inner {
    pub topology: Arc<Topology>,
    pub config: Arc<StreamsConfig>,
    pub shared: Arc<ClientShared>,
    policy: Mutex<UncaughtErrorPolicy>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    next_thread: Mutex<usize>,
    client_id: String,
    restore_listener: Mutex<Arc<dyn RestoreListener>>,
    globals: Arc<GlobalStores>,
    /// Task counts and store placement, known once `start` checked the topics.
    pub layout: OnceLock<TaskLayout>,
    /// This instance's process id.
    pub process_id: String,
    /// What the standby thread reports.
    standby_status: Arc<StandbyStatus>,
    /// The gRPC query service, while running.
    #[cfg(feature = "grpc")]
    query_server: Mutex<Option<crate::query::server::QueryServer>>,
}

/// Runs a [`Topology`] against Kafka.
///
/// ```no_run
/// use std::time::Duration;
/// use streams_core::runtime::{KafkaStreams, StreamsConfig};
/// use streams_core::serde::StringSerde;
/// use streams_core::{Consumed, Produced, StreamsBuilder};
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("words", Consumed::with(StringSerde, StringSerde))
///     .map_values(|v: String| v.to_uppercase())
///     .to("shouted", Produced::with(StringSerde, StringSerde));
/// let topology = builder.build().unwrap();
///
/// let streams = KafkaStreams::new(topology, StreamsConfig::new("shouter", "127.0.0.1:9092")).unwrap();
/// streams.start().unwrap();
/// // ... until the process should stop:
/// streams.close(Duration::from_secs(30));
/// ```
pub struct KafkaStreams {
    inner: Arc<Inner>,
}

impl KafkaStreams {
    /// Prepares an instance; nothing connects to Kafka before [`start`](Self::start).
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self, StreamsError> {
        config.validate()?;
        let process_id = uuid::Uuid::new_v4().to_string();
        let client_id = format!("{}-{process_id}", config.application_id);
        let globals = Arc::new(GlobalStores::new(&topology.global_tables));
        let membership = config
            .announces_membership()
            .then(|| Arc::new(Membership::new(&config, &process_id)));
        Ok(KafkaStreams {
            inner: Arc::new(Inner {
                topology: Arc::new(topology),
                config: Arc::new(config),
                shared: Arc::new(ClientShared::new(membership)),
                policy: Mutex::new(UncaughtErrorPolicy::default()),
                handles: Mutex::new(Vec::new()),
                next_thread: Mutex::new(1),
                restore_listener: Mutex::new(Arc::new(TracingRestoreListener)),
                globals,
                client_id,
                layout: OnceLock::new(),
                process_id,
                standby_status: Arc::new(StandbyStatus::default()),
                #[cfg(feature = "grpc")]
                query_server: Mutex::new(None),
            }),
        })
    }

    /// Sets the listener called on every state transition. Call before `start`.
    pub fn set_state_listener(&self, listener: impl Fn(State, State) + Send + Sync + 'static) {
        *locked(&self.inner.shared.listener) = Some(Arc::new(listener));
    }

    /// Sets what happens when a stream thread fails.
    pub fn set_uncaught_error_policy(&self, policy: UncaughtErrorPolicy) {
        *locked(&self.inner.policy) = policy;
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.shared.state()
    }

    /// Blocks until the state is `target` or `timeout` passes; returns whether it was reached.
    pub fn wait_for_state(&self, target: State, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = locked(&self.inner.shared.state);
        while *state != target {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .inner
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Tasks currently run by this instance's threads.
    pub fn local_tasks(&self) -> Vec<TaskId> {
        self.local_task_states()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Tasks of this instance with whether each restores or runs.
    pub fn local_task_states(&self) -> Vec<(TaskId, TaskStatus)> {
        let mut tasks: Vec<(TaskId, TaskStatus)> = locked(&self.inner.shared.tasks)
            .values()
            .flatten()
            .map(|&(id, restoring)| {
                (
                    id,
                    if restoring {
                        TaskStatus::Restoring
                    } else {
                        TaskStatus::Running
                    },
                )
            })
            .collect();
        tasks.sort_by_key(|(id, _)| *id);
        tasks
    }

    /// The slots of store `name` in this instance's running tasks: an error if the
    /// topology has no such store, [`StreamsError::StoreNotAvailable`] (retryable) if no
    /// task of it runs here now.
    fn local_slots(&self, name: &str) -> Result<Slots, StreamsError> {
        self.local_slots_of(name, false)
    }

    /// Like `local_slots`; with `stale`, standby tasks of partitions not running here
    /// are included.
    fn local_slots_of(&self, name: &str, stale: bool) -> Result<Slots, StreamsError> {
        if !self.inner.topology.stores.contains_key(name) {
            return Err(StreamsError::InvalidState(format!(
                "the topology has no store named {name}"
            )));
        }
        // The stores' own locks, not the stream threads': a query never waits for a
        // thread's processing or commit, only for the store operation in progress.
        let queryable = &self.inner.shared.queryable;
        let slots = if stale {
            queryable.slots_with_stale(name)
        } else {
            queryable.slots(name)
        };
        if slots.is_empty() {
            return Err(StreamsError::StoreNotAvailable {
                store: name.to_string(),
            });
        }
        Ok(slots)
    }

    /// A read-only view of key-value store `name` (declared with these types) over the
    /// tasks running on this instance; tasks still restoring are not included. Each key
    /// lives in one task, on the instance that owns its partition.
    ///
    /// Fails with [`StreamsError::StoreNotAvailable`] while no task of the store runs
    /// here (starting, rebalancing, restoring, or all its partitions run elsewhere): retry
    /// later. Unknown stores and other types are [`StreamsError::InvalidState`].
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StreamsError> {
        ReadOnlyKeyValueStore::new(self.local_slots(name)?)
    }

    /// A read-only view of key-value store `name` over this instance's running tasks,
    /// its standby tasks and its tasks still restoring: the explicit opt-in to stale
    /// reads. Standbys lag their active task (see [`standby_lags`](Self::standby_lags))
    /// and restoring stores their changelog; a key's value may be older than the
    /// active instance's.
    pub fn stale_key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StreamsError> {
        ReadOnlyKeyValueStore::new(self.local_slots_of(name, true)?)
    }

    /// A read-only view of window store `name` over running, standby and restoring
    /// tasks, as
    /// [`stale_key_value_store`](Self::stale_key_value_store).
    pub fn stale_window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, StreamsError> {
        ReadOnlyWindowStore::new(self.local_slots_of(name, true)?)
    }

    /// A read-only view of window store `name`, as [`key_value_store`](Self::key_value_store).
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, StreamsError> {
        ReadOnlyWindowStore::new(self.local_slots(name)?)
    }

    /// A read-only view of session store `name`, as [`key_value_store`](Self::key_value_store).
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlySessionStore<K, V>, StreamsError> {
        ReadOnlySessionStore::new(self.local_slots(name)?)
    }

    /// The value of `key` in key-value store `name`, if a task of this instance holds
    /// it; `None` also while no task of the store runs here. Shorthand for
    /// [`key_value_store`](Self::key_value_store) and `get`.
    pub fn query_key<K: 'static, V: 'static>(
        &self,
        name: &str,
        key: &K,
    ) -> Result<Option<V>, StreamsError> {
        match available(self.key_value_store::<K, V>(name))? {
            Some(store) => store.get(key),
            None => Ok(None),
        }
    }

    /// Every entry of key-value store `name` held by this instance's running tasks.
    pub fn query_all<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<Vec<(K, V)>, StreamsError> {
        match available(self.key_value_store::<K, V>(name))? {
            Some(store) => store.all(),
            None => Ok(Vec::new()),
        }
    }

    /// The windows of `key` starting within `[from, to]` in window store `name`, as
    /// `(window start, value)`.
    pub fn query_windows<K: 'static, V: 'static>(
        &self,
        name: &str,
        key: &K,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, V)>, StreamsError> {
        match available(self.window_store::<K, V>(name))? {
            Some(store) => store.fetch_time_range(key, from, to),
            None => Ok(Vec::new()),
        }
    }

    /// This instance's process id, as the metadata names it ([`Instance::process_id`](super::Instance::process_id)).
    pub fn process_id(&self) -> &str {
        &self.inner.process_id
    }

    /// How far each standby store of this instance is behind its changelog (empty
    /// without standbys); also the `streams_standby_lag` gauge.
    pub fn standby_lags(&self) -> Vec<StandbyLag> {
        self.inner.standby_status.lags()
    }

    /// What every instance of the application hosts, as of the latest complete group
    /// generation (Kafka Streams' `metadataForAllClients`). Needs an `application_server`
    /// (or standbys) on every instance; [`StreamsError::MetadataNotAvailable`] (retryable)
    /// while a rebalance is under way.
    pub fn metadata_for_all_instances(&self) -> Result<Vec<StreamsMetadata>, StreamsError> {
        let (view, layout) = self.inner.cluster_view()?;
        Ok(metadata::all_instances(&view, layout))
    }

    /// The instances hosting store `store` actively or as standby (Kafka Streams'
    /// `streamsMetadataForStore`).
    pub fn metadata_for_store(&self, store: &str) -> Result<Vec<StreamsMetadata>, StreamsError> {
        let (view, layout) = self.inner.cluster_view()?;
        layout.subtopology_of(store)?;
        Ok(metadata::all_instances(&view, layout)
            .into_iter()
            .filter(|m| {
                m.state_store_names.contains(store) || m.standby_state_store_names.contains(store)
            })
            .collect())
    }

    /// Where `key` of store `store` lives: its partition (murmur2 of the key serialized
    /// with `key_serde`, exactly as Java producers partition), the instance running its
    /// task and the instances keeping standbys of it (Kafka Streams'
    /// `queryMetadataForKey`). For window and session stores, pass the base key.
    pub fn query_metadata_for_key<K: 'static>(
        &self,
        store: &str,
        key: &K,
        key_serde: &dyn Serde<K>,
    ) -> Result<KeyQueryMetadata, StreamsError> {
        let bytes = key_serde
            .serialize(
                &crate::state::changelog_topic(&self.inner.config.application_id, store),
                key,
            )
            .map_err(|e| StreamsError::InvalidState(format!("cannot serialize the key: {e}")))?
            .ok_or_else(|| StreamsError::InvalidState("the key serializes to null".into()))?;
        self.query_metadata_for_key_bytes(store, &bytes)
    }

    /// [`query_metadata_for_key`](Self::query_metadata_for_key) for a key already
    /// serialized.
    pub fn query_metadata_for_key_bytes(
        &self,
        store: &str,
        key: &[u8],
    ) -> Result<KeyQueryMetadata, StreamsError> {
        let (view, layout) = self.inner.cluster_view()?;
        let task = layout.task_for_key(store, key)?;
        metadata::key_metadata(&view, task)
    }

    /// A router answering queries from whichever instance holds the data (one gRPC hop
    /// at most for a key; range and all queries fan out to every instance). Needs an
    /// `application_server` on every instance.
    #[cfg(feature = "grpc")]
    pub fn router(&self) -> crate::query::QueryRouter {
        crate::query::QueryRouter::new(self.inner.clone())
    }

    /// The address the query service listens on (the `application_server`, with the
    /// port the system chose if it was 0), while running.
    #[cfg(feature = "grpc")]
    pub fn query_server_address(&self) -> Option<std::net::SocketAddr> {
        locked(&self.inner.query_server)
            .as_ref()
            .map(|s| s.local_addr)
    }

    #[cfg(feature = "grpc")]
    fn start_query_server(&self) -> Result<(), StreamsError> {
        let Some(endpoint) = self.inner.config.application_server.clone() else {
            return Ok(());
        };
        let layout = self.inner.layout_or_unavailable()?.clone();
        let service = crate::query::server::QueryService {
            shared: self.inner.shared.clone(),
            layout,
            process_id: self.inner.process_id.clone(),
            endpoint: endpoint.clone(),
        };
        let server = crate::query::server::QueryServer::start(&endpoint, service)?;
        *locked(&self.inner.query_server) = Some(server);
        Ok(())
    }

    /// Deletes the local state (task directories) of this application in the state
    /// directory, as Kafka Streams' `cleanUp`: only while the instance is not running.
    pub fn cleanup(&self) -> Result<(), StreamsError> {
        if !matches!(
            self.state(),
            State::Created | State::NotRunning | State::Error
        ) {
            return Err(StreamsError::InvalidState(format!(
                "cleanup needs a stopped instance, not {:?}",
                self.state()
            )));
        }
        let dir = streams_state::StateDirectory::new(
            &self.inner.config.state_dir,
            &self.inner.config.application_id,
        )
        .map_err(|e| StreamsError::state("opening the state directory", e))?;
        dir.cleanup()
            .map_err(|e| StreamsError::state("cleaning the state directory", e))?;
        Ok(())
    }

    /// Sets the listener told about store restoration (start, batches, end). Call before
    /// `start`; the default logs with `tracing`.
    pub fn set_restore_listener(&self, listener: impl RestoreListener + 'static) {
        *locked(&self.inner.restore_listener) = Arc::new(listener);
    }

    /// Errors that stopped stream threads, oldest first.
    pub fn thread_errors(&self) -> Vec<String> {
        locked(&self.inner.shared.errors).clone()
    }

    /// Checks topics, creates internal ones and starts the stream threads. Fails if the
    /// instance was started before or topics are missing or not co-partitioned.
    pub fn start(&self) -> Result<(), StreamsError> {
        if self.state() != State::Created {
            return Err(StreamsError::InvalidState(format!(
                "start called in state {:?}",
                self.state()
            )));
        }
        let topics = prepare_topics(&self.inner.topology, &self.inner.config)?;
        let _ = self
            .inner
            .layout
            .set(TaskLayout::new(&self.inner.topology, topics.tasks));
        #[cfg(feature = "grpc")]
        self.start_query_server()?;
        self.inner.shared.transition(State::Rebalancing);
        if let Some(membership) = &self.inner.shared.membership {
            let shared = self.inner.shared.clone();
            let handle =
                membership.start(&self.inner.config, &self.inner.client_id, move || {
                    shared.shutdown.load(Ordering::Acquire) && shared.live_threads() == 0
                })?;
            locked(&self.inner.handles).push(handle);
        }
        if self.inner.config.num_standby_replicas > 0 {
            let manager = StandbyManager::new(
                &self.inner.config,
                &self.inner.client_id,
                self.inner.topology.clone(),
                self.inner.layout_or_unavailable()?.clone(),
                self.inner.shared.clone(),
                &self.inner.process_id,
                self.inner.standby_status.clone(),
            )?;
            locked(&self.inner.handles).push(manager.start()?);
        }
        if !self.inner.globals.topics().is_empty() {
            Inner::start_global_thread(&self.inner)?;
        }
        for _ in 0..self.inner.config.num_stream_threads {
            Inner::spawn_thread(&self.inner)?;
        }
        Ok(())
    }

    /// Stops every thread: each commits what it processed and leaves the group. Returns
    /// whether all threads stopped within `timeout`. After a fatal error the state stays
    /// `Error`; otherwise it ends `NotRunning`.
    pub fn close(&self, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        shared.transition(State::PendingShutdown);
        shared.shutdown.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        loop {
            let finished = {
                let mut handles = locked(&self.inner.handles);
                // A listener or processor calling close runs on a stream thread, which
                // cannot wait for itself; it stops when its callback returns.
                let me = std::thread::current().id();
                let (done, running): (Vec<_>, Vec<_>) = handles
                    .drain(..)
                    .filter(|h| h.thread().id() != me)
                    .partition(|h| h.is_finished());
                *handles = running;
                for h in done {
                    let _ = h.join();
                }
                handles.is_empty()
            };
            if finished {
                #[cfg(feature = "grpc")]
                if let Some(server) = locked(&self.inner.query_server).take() {
                    server.stop(Duration::from_secs(1));
                }
                shared.transition(State::NotRunning);
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!("stream threads did not stop within {timeout:?}");
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The view, or `None` while its store is not available on this instance.
fn available<T>(view: Result<T, StreamsError>) -> Result<Option<T>, StreamsError> {
    match view {
        Ok(view) => Ok(Some(view)),
        Err(StreamsError::StoreNotAvailable { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !matches!(self.state(), State::Created | State::NotRunning) {
            self.close(Duration::from_secs(30));
        }
    }
}

impl Inner {
    /// The task layout, known once started.
    pub(crate) fn layout_or_unavailable(&self) -> Result<&TaskLayout, StreamsError> {
        self.layout
            .get()
            .ok_or_else(|| StreamsError::MetadataNotAvailable {
                reason: "the instance is not started".into(),
            })
    }

    /// The membership view and task layout; errors if this instance announces nothing
    /// (no `application_server`, no standbys) or the view is not complete and current.
    pub(crate) fn cluster_view(&self) -> Result<(ClusterView, &TaskLayout), StreamsError> {
        let membership = self.shared.membership.as_ref().ok_or_else(|| {
            StreamsError::Config(
                "instances announce their tasks only with an application_server (or standby replicas) configured".into(),
            )
        })?;
        let layout = self.layout_or_unavailable()?;
        let view = membership
            .view(&layout.tasks, self.config.num_standby_replicas)
            .map_err(|reason| StreamsError::MetadataNotAvailable { reason })?;
        Ok((view, layout))
    }

    /// Fills the global stores (blocking until they caught up with their topics), then
    /// keeps them up to date on a thread of their own.
    fn start_global_thread(inner: &Arc<Inner>) -> Result<(), StreamsError> {
        let updater = GlobalUpdater::new(&inner.config, &inner.client_id, inner.globals.clone())?;
        updater.bootstrap(&inner.shared.shutdown)?;
        let me = inner.clone();
        let handle = std::thread::Builder::new()
            .name("global-thread".into())
            .spawn(move || {
                if let Err(error) = updater.run(&me.shared.shutdown) {
                    tracing::error!("global thread failed: {error}");
                    locked(&me.shared.errors).push(error.to_string());
                    me.shared.transition(State::PendingError);
                    me.shared.shutdown.store(true, Ordering::Release);
                    if me.shared.live_threads() == 0 {
                        me.shared.transition(State::Error);
                    }
                }
            })
            .map_err(|e| {
                StreamsError::InvalidState(format!("cannot spawn the global thread: {e}"))
            })?;
        locked(&inner.handles).push(handle);
        Ok(())
    }

    fn spawn_thread(inner: &Arc<Inner>) -> Result<(), StreamsError> {
        let index = {
            let mut next = locked(&inner.next_thread);
            let index = *next;
            *next += 1;
            index
        };
        inner.shared.set_thread_state(index, ThreadState::Starting);
        let spec = ThreadSpec {
            index,
            topology: inner.topology.clone(),
            config: inner.config.clone(),
            client: inner.shared.clone(),
            client_id: inner.client_id.clone(),
            restore_listener: locked(&inner.restore_listener).clone(),
            globals: inner.globals.clone(),
        };
        let me = inner.clone();
        let handle = std::thread::Builder::new()
            .name(format!("stream-thread-{index}"))
            .spawn(move || {
                // A panic in user code must still count as a failed thread.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    stream_thread::run(spec)
                }))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_string());
                    Err(StreamsError::InvalidState(format!(
                        "stream thread panicked: {message}"
                    )))
                });
                me.on_thread_exit(index, result);
            })
            .map_err(|e| {
                StreamsError::InvalidState(format!("cannot spawn a stream thread: {e}"))
            })?;
        locked(&inner.handles).push(handle);
        Ok(())
    }

    fn on_thread_exit(self: &Arc<Self>, index: usize, result: Result<(), StreamsError>) {
        let shared = &self.shared;
        // Before the thread counts as dead: the membership thread sends this last.
        if let Some(membership) = &shared.membership {
            membership.withdraw(index);
        }
        shared.set_thread_state(index, ThreadState::Dead);
        shared.set_thread_tasks(index, Vec::new());
        if let Err(error) = result {
            locked(&shared.errors).push(error.to_string());
            let policy = *locked(&self.policy);
            let shutting_down = shared.shutdown.load(Ordering::Acquire);
            if policy == UncaughtErrorPolicy::ReplaceThread && !shutting_down {
                tracing::warn!("replacing stream thread {index} after: {error}");
                if Inner::spawn_thread(self).is_ok() {
                    return;
                }
            }
            shared.transition(State::PendingError);
            shared.shutdown.store(true, Ordering::Release);
        }
        if shared.live_threads() == 0 && shared.state() == State::PendingError {
            shared.transition(State::Error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_kafka_streams() {
        use State::*;
        assert!(Created.can_transition_to(Rebalancing));
        assert!(Rebalancing.can_transition_to(Running));
        assert!(Running.can_transition_to(Rebalancing));
        assert!(Running.can_transition_to(PendingShutdown));
        assert!(PendingShutdown.can_transition_to(NotRunning));
        assert!(PendingError.can_transition_to(Error));
        assert!(!NotRunning.can_transition_to(Running));
        assert!(!Created.can_transition_to(Running));
        assert!(!Error.can_transition_to(Running));
    }

    #[test]
    fn client_runs_only_when_every_thread_runs() {
        let shared = ClientShared::new(None);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        *locked(&shared.listener) = Some(Arc::new(move |new, old| {
            log.lock().unwrap().push((old, new))
        }));
        shared.transition(State::Rebalancing);
        shared.set_thread_state(1, ThreadState::Starting);
        shared.set_thread_state(2, ThreadState::Running);
        assert_eq!(shared.state(), State::Rebalancing);
        shared.set_thread_state(1, ThreadState::Running);
        assert_eq!(shared.state(), State::Running);
        shared.set_thread_state(2, ThreadState::Rebalancing);
        assert_eq!(shared.state(), State::Rebalancing);
        shared.set_thread_state(2, ThreadState::Dead);
        assert_eq!(
            shared.state(),
            State::Running,
            "a dead thread does not hold the client back"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (State::Created, State::Rebalancing),
                (State::Rebalancing, State::Running),
                (State::Running, State::Rebalancing),
                (State::Rebalancing, State::Running),
            ]
        );
    }
}
