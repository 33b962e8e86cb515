//! The customers connector: publishes table `customers` of a SQLite database (by default
//! the demo database `<state_dir>/customers.db`, created when missing) to `customers`,
//! polling every second, with `/health` and `/metrics` on port 8006, until SIGTERM or
//! Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use customers_connector::connector::ConnectorStatus;
use customers_connector::{http, Connector, ConnectorConfig, ConnectorOptions, RunningConnector};
use customers_connector::{HTTP_PORT, SERVICE_NAME};
use service_kit::ServiceConfig;

fn main() -> Result<()> {
    let options = ConnectorOptions::parse();
    let service = ServiceConfig::load(HTTP_PORT)?;
    service_kit::telemetry::init(service.log_format);
    service_kit::http::prometheus();
    let config = ConnectorConfig::new(service, &options);
    let connector = Connector::start(&config).context("starting the connector")?;
    let running = RunningConnector::spawn(connector, config.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve(&config, running.status()));
    running.stop();
    tracing::info!(service = SERVICE_NAME, "stopped");
    served
}

/// Serves `/health` and `/metrics` until SIGTERM or Ctrl-C.
async fn serve(config: &ConnectorConfig, status: Arc<ConnectorStatus>) -> Result<()> {
    let service = &config.service;
    let address: SocketAddr = format!("{}:{}", service.http_host, service.http_port)
        .parse()
        .with_context(|| format!("http_host {:?} is not an IP address", service.http_host))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    tracing::info!(service = SERVICE_NAME, port = service.http_port, "started");
    axum::serve(listener, http::router(status))
        .with_graceful_shutdown(async {
            let signal = service_kit::shutdown::signal().await;
            tracing::info!("stopping on {signal}");
        })
        .await
        .context("serving /health and /metrics")
}
