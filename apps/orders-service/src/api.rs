//! The REST API on port 8000: `POST /v1/orders` writes an order to `orders.v1` and
//! answers 201 once Kafka acknowledged it; `GET /v1/orders/{id}` and
//! `GET /v1/orders/{id}/validated` long-poll the order (in any state, or once final)
//! for up to `timeout` ms, reading it wherever it lives: here, with a waiter woken by
//! the view, or at the instance owning its partition, through the query router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orders_platform::orders_view::ORDERS_STORE;
use orders_platform::records::Order;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::PlatformTopics;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;
use streams_core::query::QueryRouter;
use streams_core::runtime::{KafkaStreams, StreamsError};

use crate::order_body::{self, BodyError};
use crate::waiters::{Waiters, Wanted};

/// How long a GET waits when it names no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait a GET may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest body a POST may carry.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long a POST waits for Kafka's acknowledgement.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(15);

/// What the handlers share.
#[derive(Clone)]
pub struct OrdersApi {
    /// The instance holding this instance's part of `orders-store`.
    pub streams: Arc<KafkaStreams>,
    /// Reads orders wherever they live.
    pub router: QueryRouter,
    /// Writes orders (acks=all, idempotent).
    pub producer: FutureProducer,
    /// Record serdes.
    pub serdes: PlatformSerdes,
    /// Topic names.
    pub topics: PlatformTopics,
    /// Readers waiting on this instance.
    pub waiters: Arc<Waiters>,
}

/// An error answer: `{"error": ..., "field": ...}`.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>, field: Option<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
            field,
        }),
    )
        .into_response()
}

/// The routes of the API.
pub fn routes(api: OrdersApi) -> Router {
    Router::new()
        .route("/v1/orders", post(post_order))
        .route("/v1/orders/", post(post_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/validated", get(get_validated))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

async fn post_order(State(api): State<OrdersApi>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text(), None),
    };
    let order = match order_body::parse(&body) {
        Ok(order) => order,
        Err(BodyError {
            field,
            error: message,
        }) => {
            let field = (!field.is_empty()).then_some(field);
            return error(StatusCode::BAD_REQUEST, message, field);
        }
    };
    let value = match api.serdes.order.serialize(&api.topics.orders, &order) {
        Ok(Some(value)) => value,
        Ok(None) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the order serialized to null",
                None,
            )
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot encode the order: {e}"),
                None,
            )
        }
    };
    let record = FutureRecord::to(&api.topics.orders)
        .key(&order.id)
        .payload(&value);
    if let Err((e, _)) = api
        .producer
        .send(record, Timeout::After(PRODUCE_TIMEOUT))
        .await
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Kafka did not take the order: {e}"),
            None,
        );
    }
    let location = format!("/v1/orders/{}", order.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(order),
    )
        .into_response()
}

async fn get_order(
    state: State<OrdersApi>,
    id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Response {
    long_poll(state, id, query, Wanted::AnyState).await
}

async fn get_validated(
    state: State<OrdersApi>,
    id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Response {
    long_poll(state, id, query, Wanted::Final).await
}

async fn long_poll(
    State(api): State<OrdersApi>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    wanted: Wanted,
) -> Response {
    let timeout = match query.get("timeout").map(|t| t.parse::<u64>()) {
        None => DEFAULT_TIMEOUT,
        Some(Ok(ms)) if Duration::from_millis(ms) <= MAX_TIMEOUT => Duration::from_millis(ms),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "timeout must be a number of milliseconds up to {}",
                    MAX_TIMEOUT.as_millis()
                ),
                Some("timeout".into()),
            )
        }
    };
    match wait_for(&api, &id, wanted, timeout).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "timed out after {} ms waiting for order {id}{}",
                timeout.as_millis(),
                if wanted == Wanted::Final {
                    " to be validated or failed"
                } else {
                    ""
                }
            ),
            None,
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading order {id}: {e}"),
            None,
        ),
    }
}

/// Waits until order `id` is what `wanted` asks for, at most `timeout`; `None` when
/// it is not by then.
async fn wait_for(
    api: &OrdersApi,
    id: &str,
    wanted: Wanted,
    timeout: Duration,
) -> Result<Option<Order>, StreamsError> {
    let deadline = Instant::now() + timeout;
    let mut poll_interval = Duration::from_millis(20);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        // Registered before the read: an update landing in between wakes it.
        let mut registration = api.waiters.register(id, wanted);
        match api
            .router
            .clone()
            .with_deadline(remaining)
            .get::<String, Order>(ORDERS_STORE, &id.to_string())
            .await
        {
            Ok(answer) => {
                if let Some(order) = answer.value.filter(|o| wanted.accepts(o)) {
                    return Ok(Some(order));
                }
                let local = answer
                    .answered_by
                    .iter()
                    .any(|i| i.process_id == api.streams.process_id());
                if local {
                    // This instance owns the order: its view wakes the waiter.
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    return Ok(tokio::time::timeout(remaining, &mut registration.answer)
                        .await
                        .ok()
                        .and_then(Result::ok));
                }
                // Another instance owns it: ask again there shortly.
                drop(registration);
                tokio::time::sleep(
                    poll_interval.min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
                poll_interval = (poll_interval * 3 / 2).min(Duration::from_millis(200));
            }
            // No owner found before the deadline (a rebalance): timed out.
            Err(StreamsError::DeadlineExceeded { .. }) => return Ok(None),
            Err(e) if e.is_retryable() => {
                drop(registration);
                tokio::time::sleep(
                    poll_interval.min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
            Err(e) => return Err(e),
        }
    }
}
