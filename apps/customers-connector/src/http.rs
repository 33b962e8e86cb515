//! The connector's HTTP endpoints: `/health` (200 while it polls, 503 while it starts,
//! fails or has stopped; the JSON body has the same fields as the streams services':
//! `service`, `state`, `errors`, plus its counts) and `/metrics` (Prometheus text,
//! through the platform's recorder `service_kit::http::prometheus`):
//!
//! * `customers_connector_records_total{kind="upsert"|"tombstone"}`: records committed;
//! * `customers_connector_transactions_total{outcome="committed"|"aborted"|"failed"}`;
//! * `customers_connector_polls_total`, `customers_connector_restarts_total`;
//! * `customers_connector_table_rows`: rows in the table at the last poll.
//!
//! `service_kit::http::router` serves the health of a `KafkaStreams` instance, which a
//! connector does not have; this is its counterpart for the connector's status.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::config::SERVICE_NAME;
use crate::connector::{ConnectorState, ConnectorStatus};

/// What `/health` answers.
#[derive(serde::Serialize)]
struct Health {
    service: &'static str,
    state: ConnectorState,
    errors: Vec<String>,
    polls: u64,
    published: u64,
    restarts: u64,
}

/// The routes `/health` and `/metrics` of the connector whose status is `status`.
pub fn router(status: Arc<ConnectorStatus>) -> Router {
    let metrics = service_kit::http::prometheus();
    Router::new()
        .route(
            "/health",
            get(move || {
                let status = status.clone();
                async move {
                    let state = status.state();
                    let code = if state == ConnectorState::Running {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let body = Health {
                        service: SERVICE_NAME,
                        state,
                        errors: status.last_error().into_iter().collect(),
                        polls: status.polls(),
                        published: status.published(),
                        restarts: status.restarts(),
                    };
                    (code, Json(body))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move { metrics.render().into_response() }),
        )
}
