//! `/health` (200 while the engine answers and the sink's consumer runs, 503 otherwise,
//! with both in JSON) and `/metrics` (Prometheus text, through service-kit's recorder).
//! service-kit's own `/health` reports a `KafkaStreams` instance; this service runs a
//! plain consumer, so it has this one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::engine::EngineClient;
use crate::sink::SinkStatus;

/// What `/health` looks at.
#[derive(Clone)]
pub struct HealthState {
    /// The engine, probed on each call.
    pub engine: EngineClient,
    /// The index written.
    pub index: String,
    /// The sink.
    pub sink: Arc<SinkStatus>,
}

/// The routes `/health` and `/metrics`.
pub fn routes(state: HealthState) -> Router {
    let metrics = service_kit::http::prometheus();
    Router::new()
        .route("/health", get(health))
        .route(
            "/metrics",
            get(move || async move { metrics.render().into_response() }),
        )
        .with_state(state)
}

async fn health(State(state): State<HealthState>) -> Response {
    let probe = state.engine.cluster_health().await;
    let consumer = state.sink.snapshot();
    // A red cluster cannot take writes to some index; yellow (missing replicas) can.
    let engine_ok = matches!(probe.as_deref(), Ok("green" | "yellow"));
    let healthy = engine_ok && consumer.running;
    let engine = match &probe {
        Ok(status) => json!({"url": state.engine.url(), "reachable": true, "status": status}),
        Err(e) => json!({"url": state.engine.url(), "reachable": false, "error": e.to_string()}),
    };
    let body = json!({
        "service": crate::SERVICE_NAME,
        "status": if healthy { "UP" } else { "DOWN" },
        "index": state.index,
        "engine": engine,
        "consumer": consumer,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
