//! The interactive-query quickstart (see `streams_examples::quickstarts::query_service`):
//! two instances of one application in this process (one per `--http-ports` entry),
//! each answering
//! `GET /views/{page}` for every page, wherever its count lives.
//!
//! ```text
//! dev/kafka start
//! cargo run -p streams-examples --bin query-service -- --sample
//! curl -s http://127.0.0.1:7070/views/home ; curl -s http://127.0.0.1:7071/views/home
//! ```
//!
//! Ctrl-C (or SIGTERM) stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use streams_core::runtime::KafkaStreams;
use streams_examples::quickstarts::plumbing::{self, QuickstartArgs};
use streams_examples::quickstarts::query_service::{self, PAGE_VIEWS, SAMPLE};

#[derive(Parser)]
#[command(about = "Counts page views; any instance answers GET /views/{page}")]
struct Options {
    #[command(flatten)]
    common: QuickstartArgs,
    /// HTTP port of each instance: one instance per port.
    #[arg(long, value_delimiter = ',', default_values_t = [7070u16, 7071])]
    http_ports: Vec<u16>,
    /// Query (gRPC) port of each instance, as many as HTTP ports.
    #[arg(long, value_delimiter = ',', default_values_t = [7170u16, 7171])]
    query_ports: Vec<u16>,
}

fn main() -> Result<()> {
    let options = Options::parse();
    streams_examples::init_logging();
    let common = &options.common;
    let views = common.topic(PAGE_VIEWS);
    plumbing::ensure_topics(&common.bootstrap, std::slice::from_ref(&views), 3)?;
    if common.sample {
        let pages: Vec<(&str, &str)> = SAMPLE
            .iter()
            .map(|(u, p)| (*u, p.trim_start_matches('/')))
            .collect();
        plumbing::send(&common.bootstrap, &views, &plumbing::text_records(&pages))?;
    }
    anyhow::ensure!(
        options.http_ports.len() == options.query_ports.len(),
        "give as many --query-ports as --http-ports (one of each per instance)"
    );
    let mut instances = Vec::new();
    for (i, (http_port, query_port)) in options
        .http_ports
        .iter()
        .zip(&options.query_ports)
        .enumerate()
    {
        let state_dir =
            std::env::temp_dir().join(format!("streams-query-service-{i}-{}", std::process::id()));
        let config = common
            .config("query-service")
            .with_state_dir(state_dir)
            .with_application_server(format!("127.0.0.1:{query_port}"));
        let streams = Arc::new(KafkaStreams::new(query_service::topology(&views), config)?);
        streams.start()?;
        instances.push((streams, *http_port));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        for (streams, port) in &instances {
            let address: SocketAddr = ([127, 0, 0, 1], *port).into();
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on {address}"))?;
            let app = query_service::routes(streams.router());
            tokio::spawn(async move { axum::serve(listener, app).await });
            println!("SERVING http://{address}/views/{{page}}");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        anyhow::Ok(())
    })?;
    for (streams, _) in &instances {
        streams.close(Duration::from_secs(30));
    }
    println!("CLOSED");
    Ok(())
}
