//! The gRPC query service an instance serves on its `application_server`: answers for
//! the tasks this instance runs, from the same stores and locks as local queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::byte_reads::{self, ReadError};
use super::proto::store_query_server::{StoreQuery, StoreQueryServer};
use super::proto::{
    Answerer, EntriesReply, Entry, KeyRequest, RangeRequest, SessionEntry, SessionsReply,
    ValueReply, WindowEntry, WindowRequest, WindowsReply,
};
use crate::processor::TaskId;
use crate::runtime::kafka_streams::ClientShared;
use crate::runtime::metadata::TaskLayout;
use crate::runtime::StreamsError;
use crate::state::task_stores::StoreSlot;

/// What the service reads: the instance's queryable stores and who it is.
pub(crate) struct QueryService {
    pub shared: Arc<ClientShared>,
    pub layout: TaskLayout,
    pub process_id: String,
    pub endpoint: String,
}

impl From<ReadError> for Status {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::WrongKind { .. } => Status::failed_precondition(error.to_string()),
            ReadError::Store { .. } | ReadError::Corrupt(_) => Status::internal(error.to_string()),
        }
    }
}

type Slots = Vec<(TaskId, Arc<StoreSlot>)>;

impl QueryService {
    fn answerer(&self, slots: &Slots) -> Answerer {
        Answerer {
            process_id: self.process_id.clone(),
            endpoint: self.endpoint.clone(),
            generation: self
                .shared
                .membership
                .as_ref()
                .and_then(|m| m.local_generation())
                .unwrap_or(-1),
            partitions: slots.iter().map(|(task, _)| task.partition).collect(),
        }
    }

    /// The slots of `store` in this instance's running tasks; unknown stores are
    /// `NOT_FOUND`, a store with no task here now is `UNAVAILABLE` (ask again after the
    /// rebalance).
    fn slots(&self, store: &str) -> Result<Slots, Status> {
        if self.layout.subtopology_of(store).is_err() {
            return Err(Status::not_found(format!(
                "the application has no store named {store:?}"
            )));
        }
        Ok(self.shared.queryable.slots(store))
    }

    /// The slot of `store` for `partition`, which must run here (or, with `allow_stale`,
    /// have a standby here).
    fn slot_of(&self, store: &str, partition: i32, allow_stale: bool) -> Result<Slots, Status> {
        let subtopology = self.layout.subtopology_of(store).map_err(|_| {
            Status::not_found(format!("the application has no store named {store:?}"))
        })?;
        let partitions = self.layout.tasks.get(&subtopology).copied().unwrap_or(1);
        if !(0..partitions).contains(&partition) {
            return Err(Status::invalid_argument(format!(
                "store {store} has partitions 0..{partitions}, not {partition}"
            )));
        }
        let queryable = &self.shared.queryable;
        let candidates = if allow_stale {
            queryable.slots_with_stale(store)
        } else {
            queryable.slots(store)
        };
        let found: Slots = candidates
            .into_iter()
            .filter(|(task, _)| task.partition == partition)
            .collect();
        if found.is_empty() {
            return Err(Status::unavailable(format!(
                "partition {partition} of store {store} does not run on {} now",
                self.endpoint
            )));
        }
        Ok(found)
    }
}

fn nonempty_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("the key is empty"));
    }
    Ok(())
}

#[tonic::async_trait]
impl StoreQuery for QueryService {
    async fn get(&self, request: Request<KeyRequest>) -> Result<Response<ValueReply>, Status> {
        let request = request.into_inner();
        nonempty_key(&request.key)?;
        let slots = self.slot_of(&request.store, request.partition, request.allow_stale)?;
        let value = byte_reads::get(&slots[0].1, &request.key)?;
        Ok(Response::new(ValueReply {
            answerer: Some(self.answerer(&slots)),
            value,
        }))
    }

    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<EntriesReply>, Status> {
        let request = request.into_inner();
        let slots = self.slots(&request.store)?;
        let mut entries = Vec::new();
        for (_, slot) in &slots {
            let found = byte_reads::range(
                slot,
                request.from.as_deref(),
                request.to.as_deref(),
                request.prefix.as_deref(),
            )?;
            entries.extend(found.into_iter().map(|(key, value)| Entry { key, value }));
        }
        Ok(Response::new(EntriesReply {
            answerer: Some(self.answerer(&slots)),
            entries,
        }))
    }

    async fn fetch_windows(
        &self,
        request: Request<WindowRequest>,
    ) -> Result<Response<WindowsReply>, Status> {
        let request = request.into_inner();
        let slots = match &request.key {
            Some(key) => {
                nonempty_key(key)?;
                self.slot_of(&request.store, request.partition, request.allow_stale)?
            }
            None => self.slots(&request.store)?,
        };
        let mut entries = Vec::new();
        for (_, slot) in &slots {
            let found = byte_reads::windows(
                slot,
                request.key.as_deref(),
                (request.key_from.as_deref(), request.key_to.as_deref()),
                request.time_from,
                request.time_to,
            )?;
            entries.extend(
                found
                    .into_iter()
                    .map(|(key, window_start, value)| WindowEntry {
                        key,
                        window_start,
                        value,
                    }),
            );
        }
        Ok(Response::new(WindowsReply {
            answerer: Some(self.answerer(&slots)),
            entries,
        }))
    }

    async fn fetch_sessions(
        &self,
        request: Request<KeyRequest>,
    ) -> Result<Response<SessionsReply>, Status> {
        let request = request.into_inner();
        nonempty_key(&request.key)?;
        let slots = self.slot_of(&request.store, request.partition, request.allow_stale)?;
        let entries = byte_reads::sessions(&slots[0].1, &request.key)?
            .into_iter()
            .map(|(key, start, end, value)| SessionEntry {
                key,
                start,
                end,
                value,
            })
            .collect();
        Ok(Response::new(SessionsReply {
            answerer: Some(self.answerer(&slots)),
            entries,
        }))
    }
}

/// The running query server: its runtime and the signal that stops it.
pub(crate) struct QueryServer {
    runtime: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    /// The address it listens on.
    pub local_addr: SocketAddr,
}

impl QueryServer {
    /// Binds `endpoint` (`host:port`) and serves `service` there on a runtime of its own.
    pub fn start(endpoint: &str, service: QueryService) -> Result<Self, StreamsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("query-server")
            .enable_all()
            .build()
            .map_err(|e| {
                StreamsError::InvalidState(format!("cannot start the query runtime: {e}"))
            })?;
        let listener = runtime.block_on(TcpListener::bind(endpoint)).map_err(|e| {
            StreamsError::Config(format!(
                "cannot listen for queries on application server {endpoint}: {e}"
            ))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StreamsError::InvalidState(format!("query listener: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        runtime.spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(StoreQueryServer::new(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("the query server failed: {e}");
            }
        });
        tracing::info!(%local_addr, "serving interactive queries");
        Ok(QueryServer {
            runtime,
            stop: Some(stop),
            local_addr,
        })
    }

    /// Stops serving, waiting up to `timeout` for requests in flight.
    pub fn stop(mut self, timeout: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.runtime.shutdown_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use streams_state::CacheBudget;

    use super::*;
    use crate::serde::{I64Serde, Serde, StringSerde};
    use crate::state::task_stores::TaskStores;
    use crate::state::{KeyValueStore, StoreBuilder, Stores};

    /// A service whose instance runs task 0_0 of store "counts" (2 partitions), holding
    /// `apple = 3`.
    fn service() -> QueryService {
        let definition = Stores::key_value("counts", StringSerde, I64Serde)
            .in_memory()
            .into_definition()
            .0;
        let stores = TaskStores::open(
            &[Arc::new(definition)],
            "app",
            0,
            None,
            &CacheBudget::new(0),
        )
        .unwrap();
        KeyValueStore::<String, i64>::from_slot(stores.slot("counts").unwrap())
            .unwrap()
            .put(&"apple".to_string(), &3)
            .unwrap();
        let shared = Arc::new(ClientShared::new(None));
        shared.queryable.publish(
            TaskId {
                subtopology: 0,
                partition: 0,
            },
            &stores,
        );
        QueryService {
            shared,
            layout: TaskLayout {
                tasks: BTreeMap::from([(0, 2)]),
                store_subtopology: BTreeMap::from([("counts".to_string(), 0)]),
            },
            process_id: "p".into(),
            endpoint: "127.0.0.1:1".into(),
        }
    }

    fn key(store: &str, key: &[u8], partition: i32) -> Request<KeyRequest> {
        Request::new(KeyRequest {
            store: store.into(),
            key: key.to_vec(),
            partition,
            allow_stale: false,
        })
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(future)
    }

    #[test]
    fn a_key_of_a_local_partition_is_answered_in_store_bytes() {
        let service = service();
        let apple = StringSerde
            .serialize("t", &"apple".to_string())
            .unwrap()
            .unwrap();
        let reply = run(service.get(key("counts", &apple, 0)))
            .unwrap()
            .into_inner();
        assert_eq!(reply.value, Some(3i64.to_be_bytes().to_vec()));
        let answerer = reply.answerer.unwrap();
        assert_eq!(
            (answerer.process_id.as_str(), answerer.partitions),
            ("p", vec![0])
        );
        let reply = run(service.get(key("counts", b"pear", 0)))
            .unwrap()
            .into_inner();
        assert_eq!(reply.value, None);
    }

    #[test]
    fn bad_requests_get_a_status_that_says_why() {
        let service = service();
        let code = |result: Result<Response<ValueReply>, Status>| {
            let status = result.unwrap_err();
            assert!(!status.message().is_empty());
            status.code()
        };
        assert_eq!(
            code(run(service.get(key("nope", b"k", 0)))),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(run(service.get(key("counts", b"k", 7)))),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(run(service.get(key("counts", b"", 0)))),
            tonic::Code::InvalidArgument
        );
        // Partition 1 runs elsewhere (or is migrating): ask again after the rebalance.
        assert_eq!(
            code(run(service.get(key("counts", b"k", 1)))),
            tonic::Code::Unavailable
        );
        let sessions = run(service.fetch_sessions(key("counts", b"k", 0))).unwrap_err();
        assert_eq!(
            sessions.code(),
            tonic::Code::FailedPrecondition,
            "{sessions}"
        );
        assert!(sessions.message().contains("a session store"), "{sessions}");
    }
}
