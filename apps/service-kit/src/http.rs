//! The HTTP endpoints every service serves on its port: `/health` (200 while its
//! `KafkaStreams` instance runs or rebalances, 503 otherwise, with the state) and
//! `/metrics` (the `metrics` facade's values in Prometheus text format). Services with
//! an API of their own merge their routes into [`router`].

use std::sync::{Arc, OnceLock};

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use streams_core::runtime::{KafkaStreams, State};

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test's) may be installed: then /metrics shows nothing.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// What `/health` answers.
#[derive(serde::Serialize)]
struct Health {
    service: String,
    state: String,
    errors: Vec<String>,
}

/// The routes `/health` and `/metrics` of service `name` running `streams`.
pub fn router(name: &str, streams: Arc<KafkaStreams>) -> Router {
    let metrics = prometheus();
    let name = name.to_string();
    Router::new()
        .route(
            "/health",
            get(move |AxumState(streams): AxumState<Arc<KafkaStreams>>| {
                let name = name.clone();
                async move {
                    let state = streams.state();
                    let healthy = matches!(state, State::Running | State::Rebalancing);
                    let status = if healthy {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let body = Health {
                        service: name,
                        state: format!("{state:?}"),
                        errors: streams.thread_errors(),
                    };
                    (status, Json(body))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move { metrics.render().into_response() }),
        )
        .with_state(streams)
}
