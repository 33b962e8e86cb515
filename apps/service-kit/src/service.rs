//! Running a topology service: configuration, logs, topics and schemas, the
//! `KafkaStreams` instance, `/health` and `/metrics`, and a graceful close on SIGTERM
//! or Ctrl-C (or when the instance stops by itself).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::Router;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::PlatformTopics;
use streams_core::runtime::{DeserializationErrorHandler, KafkaStreams, State};
use streams_core::serde::{CachedSchemaRegistry, SchemaRegistryConfig};
use streams_core::Topology;

use crate::config::ServiceConfig;
use crate::{http, shutdown, telemetry, topics};

/// What a service is: its name (also its application id), its default HTTP port, the
/// topics it reads or writes (created at start-up if missing), and the schemas it
/// writes, registered at start-up as `(topic, schema)` under `<topic>-value`.
pub struct ServiceSpec {
    /// Application id, log and metrics name.
    pub name: &'static str,
    /// Default port of `/health` and `/metrics`.
    pub http_port: u16,
    /// Topics the service reads and writes.
    pub topics: fn(&PlatformTopics) -> Vec<String>,
    /// `(topic, Avro schema)` of each value the service writes.
    pub writes: fn(&PlatformTopics) -> Vec<(String, &'static str)>,
    /// Whether the service answers interactive queries: its `application_server`
    /// then defaults to the HTTP host with the HTTP port + 100.
    pub serves_queries: bool,
}

impl ServiceSpec {
    /// The dead-letter topic of records that do not decode.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}-dead-letters", self.name)
    }
}

/// The registry client of `config`, with the schemas of `writes` registered.
pub fn registry(config: &ServiceConfig, writes: &[(String, &str)]) -> Result<CachedSchemaRegistry> {
    let registry =
        CachedSchemaRegistry::new(&SchemaRegistryConfig::new(&config.schema_registry_url))
            .context("creating the schema registry client")?;
    for (topic, schema) in writes {
        let subject = format!("{topic}-value");
        registry.id_for(&subject, schema).with_context(|| {
            format!(
                "registering {subject} at {} (is the registry up? `dev/registry start`)",
                config.schema_registry_url
            )
        })?;
    }
    Ok(registry)
}

/// What a service's own HTTP routes may use.
pub struct ServiceContext {
    /// The running instance.
    pub streams: Arc<KafkaStreams>,
    /// The record serdes (Avro through the registry).
    pub serdes: PlatformSerdes,
    /// The topic names.
    pub topics: PlatformTopics,
    /// The settings.
    pub config: ServiceConfig,
}

/// Runs the service `spec` whose topology `build` makes, until SIGTERM or Ctrl-C;
/// fails if the instance stops by itself.
pub fn run_topology_service(
    spec: ServiceSpec,
    build: impl FnOnce(&PlatformSerdes, &PlatformTopics, &ServiceConfig) -> Topology,
) -> Result<()> {
    run_service(spec, build, |_| Ok(Router::new()))
}

/// Like [`run_topology_service`], serving the routes `routes` makes (once the instance
/// started) beside `/health` and `/metrics`.
pub fn run_service(
    spec: ServiceSpec,
    build: impl FnOnce(&PlatformSerdes, &PlatformTopics, &ServiceConfig) -> Topology,
    routes: impl FnOnce(ServiceContext) -> Result<Router>,
) -> Result<()> {
    let mut config = ServiceConfig::load(spec.http_port)?;
    if spec.serves_queries && config.application_server.is_none() {
        config.application_server =
            Some(format!("{}:{}", config.http_host, config.http_port + 100));
    }
    telemetry::init(config.log_format);
    http::prometheus();
    let platform_topics = config.topics();
    let dead_letters = format!("{}{}", config.topic_prefix, spec.dead_letter_topic());
    let mut all_topics = (spec.topics)(&platform_topics);
    all_topics.push(dead_letters.clone());
    topics::ensure_topics(&config, &all_topics)?;
    let serdes = PlatformSerdes::avro(registry(&config, &(spec.writes)(&platform_topics))?)?;
    let topology = build(&serdes, &platform_topics, &config);
    let context_serdes = serdes.clone();
    // A record that does not decode goes to the dead-letter topic; its partition moves on.
    // The prefix keeps platforms on one cluster apart: topics, groups, internal topics.
    let application_id = format!("{}{}", config.topic_prefix, spec.name);
    let streams_config = config
        .streams_config(&application_id)?
        .with_deserialization_error_handler(DeserializationErrorHandler::DeadLetter {
            topic: dead_letters.clone(),
        });
    let streams = Arc::new(KafkaStreams::new(topology, streams_config)?);
    streams.start()?;
    tracing::info!(service = spec.name, port = config.http_port, "started");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let context = ServiceContext {
        streams: streams.clone(),
        serdes: context_serdes,
        topics: platform_topics,
        config: config.clone(),
    };
    // The routes may create clients that need the runtime (gRPC channels).
    let result = runtime.block_on(async {
        let extra = routes(context)?;
        serve(&spec, &config, streams.clone(), extra).await
    });
    if !streams.close(Duration::from_secs(30)) {
        bail!("{} did not stop within 30 s", spec.name);
    }
    result
}

/// Serves `/health` and `/metrics` until a stop signal or the instance stopping by
/// itself.
async fn serve(
    spec: &ServiceSpec,
    config: &ServiceConfig,
    streams: Arc<KafkaStreams>,
    extra: Router,
) -> Result<()> {
    let address: SocketAddr = format!("{}:{}", config.http_host, config.http_port)
        .parse()
        .with_context(|| format!("http_host {:?} is not an IP address", config.http_host))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let app = http::router(spec.name, streams.clone()).merge(extra);
    let stopped_by_itself = {
        let streams = streams.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if matches!(
                    streams.state(),
                    State::Error | State::NotRunning | State::PendingError
                ) {
                    return streams.thread_errors();
                }
            }
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let outcome = tokio::select! {
        name = shutdown::signal() => {
            tracing::info!("stopping on {name}");
            Ok(())
        }
        errors = stopped_by_itself => Err(anyhow::anyhow!("the streams instance stopped by itself: {errors:?}")),
    };
    let _ = stop.send(());
    server.await??;
    outcome
}
