//! [`SearchService`]: the service put together and run: its topics, the registry's
//! serdes, the index (created with its mapping if missing), the sink's thread, and the
//! HTTP server (search API, page, `/health`, `/metrics`) on a small tokio runtime;
//! stopped gracefully, pending batch committed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use orders_platform::serdes::PlatformSerdes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use service_kit::service::registry;
use service_kit::topics::ensure_topics;
use service_kit::ServiceConfig;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, SearchApi};
use crate::bulk::BulkWriter;
use crate::config::SearchConfig;
use crate::document::mapping;
use crate::engine::{EngineClient, EngineError};
use crate::error::Error;
use crate::health::{self, HealthState};
use crate::page;
use crate::sink::{Sink, SinkHandle, SinkSettings, SinkStatus};

/// How long start-up waits for an engine that does not answer yet.
const ENGINE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop waits for the sink's last batch.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The running service.
pub struct SearchService {
    runtime: Option<Runtime>,
    sink: Option<SinkHandle>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop_server: Option<oneshot::Sender<()>>,
    address: SocketAddr,
    engine: EngineClient,
    index: String,
    status: Arc<SinkStatus>,
}

impl SearchService {
    /// Creates what is missing (topics, index), then starts the sink and the HTTP
    /// server on `config.http_host:config.http_port` (port 0: any free port, see
    /// [`local_addr`](Self::local_addr)).
    pub fn start(config: &ServiceConfig, search: &SearchConfig) -> Result<Self, Error> {
        service_kit::http::prometheus();
        let spec = crate::spec();
        let topics = config.topics();
        let dead_letters = format!("{}{}", config.topic_prefix, spec.dead_letter_topic());
        ensure_topics(config, &[topics.orders.clone(), dead_letters.clone()])
            .map_err(|e| Error::Kafka(format!("{e:#}")))?;
        let serdes = registry(config, &[])
            .and_then(|registry| Ok(PlatformSerdes::avro(registry)?))
            .map_err(|e| Error::Kafka(format!("{e:#}")))?;
        let index = search.index_name(&config.topic_prefix)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("orders-search")
            .enable_all()
            .build()
            .map_err(Error::io("starting the tokio runtime"))?;
        let engine = EngineClient::new(&search.engine_url, search.request_timeout())?;
        if runtime.block_on(ensure_index(&engine, &index))? {
            tracing::info!(index, engine = engine.url(), "created the index");
        }

        // Bound before the sink starts, so a taken port leaves nothing running.
        let address: SocketAddr = format!("{}:{}", config.http_host, config.http_port)
            .parse()
            .map_err(|_| {
                Error::Config(format!(
                    "http_host {:?} is not an IP address",
                    config.http_host
                ))
            })?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(address))
            .map_err(Error::io(format!("listening on {address}")))?;
        let address = listener
            .local_addr()
            .map_err(Error::io("reading the bound address"))?;

        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| Error::Kafka(format!("creating the dead-letter producer: {e}")))?;
        let settings = SinkSettings {
            bootstrap_servers: config.bootstrap_servers.clone(),
            topic: topics.orders.clone(),
            dead_letter_topic: dead_letters,
            group_id: search.group_id(&config.topic_prefix),
            batch_size: search.batch_size,
            linger: search.linger(),
            session_timeout_ms: config.session_timeout_ms,
            retry_timeout: search.retry_timeout(),
        };
        let writer = BulkWriter::new(engine.clone(), &index, mapping(), search.retry_timeout());
        let sink = Sink::new(
            settings,
            serdes.order.clone(),
            writer,
            producer,
            runtime.handle().clone(),
        )
        .spawn()
        .map_err(Error::io("starting the sink's thread"))?;
        let status = sink.status();

        let app = api::routes(SearchApi {
            engine: engine.clone(),
            index: index.clone(),
            fraud_report_url: search.fraud_report_url.clone(),
            http: reqwest::Client::new(),
        })
        .merge(health::routes(HealthState {
            engine: engine.clone(),
            index: index.clone(),
            sink: status.clone(),
        }))
        .merge(page::routes());
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(service = crate::SERVICE_NAME, %address, index, "started");
        Ok(SearchService {
            runtime: Some(runtime),
            sink: Some(sink),
            server: Some(server),
            stop_server: Some(stop_server),
            address,
            engine,
            index,
            status,
        })
    }

    /// Where the HTTP server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The HTTP server's base URL, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The index written and searched.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The engine client.
    pub fn engine(&self) -> &EngineClient {
        &self.engine
    }

    /// What the sink is doing.
    pub fn status(&self) -> Arc<SinkStatus> {
        self.status.clone()
    }

    /// Runs `future` on the service's runtime (tests use it for engine calls).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives until the service is dropped")
            .block_on(future)
    }

    /// Waits for SIGTERM or Ctrl-C (`Ok`), or for the sink to stop by itself (`Err`).
    pub fn wait_for_stop(&self) -> Result<(), Error> {
        let sink = self.sink.as_ref().expect("the sink runs until stop");
        self.block_on(async {
            let sink_ended = async {
                while !sink.is_finished() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            tokio::select! {
                name = service_kit::shutdown::signal() => {
                    tracing::info!("stopping on {name}");
                    Ok(())
                }
                _ = sink_ended => Err(Error::Sink(
                    self.status.snapshot().last_error.unwrap_or_else(|| "no error recorded".into()),
                )),
            }
        })
    }

    /// Stops the sink (its pending batch written and committed) and the HTTP server.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        let sink = self.sink.take().map(|sink| sink.stop(STOP_TIMEOUT));
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let (Some(runtime), Some(server)) = (self.runtime.as_ref(), self.server.take()) {
            let _ = runtime.block_on(async { tokio::time::timeout(STOP_TIMEOUT, server).await });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        match sink {
            Some(Err(e)) => Err(Error::Sink(e)),
            _ => Ok(()),
        }
    }
}

impl Drop for SearchService {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("stopping the search service: {e}");
        }
    }
}

/// Creates `index` with the mapping unless it exists, waiting up to 30 s for an engine
/// that does not answer yet.
async fn ensure_index(engine: &EngineClient, index: &str) -> Result<bool, EngineError> {
    let mapping = mapping();
    (|| engine.ensure_index(index, &mapping))
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .without_max_times()
                .with_total_delay(Some(ENGINE_START_TIMEOUT)),
        )
        .sleep(tokio::time::sleep)
        .when(EngineError::is_transient)
        .notify(|e, delay| tracing::warn!("creating the index {index}, retrying in {delay:?}: {e}"))
        .await
}
