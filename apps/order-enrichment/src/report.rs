//! The fraud report: `GET /fraud?limit=N` answers the customers with more than two
//! orders in a 30-second window, newest windows first, as
//! `[{"customerId":1,"lastName":"…","firstName":"…","counts":3,"windowStart":"…","windowEnd":"…"}]`
//! (times in RFC 3339, UTC). The windows are read from every instance through the
//! query router, so each instance answers the same report.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use orders_platform::enrichment::{fraud_alerts, CustomerKey, FraudAlert, FRAUD_COUNTS};
use serde::Serialize;
use streams_core::query::QueryRouter;

/// Alerts listed when the request names no limit.
pub const DEFAULT_LIMIT: usize = 10;
/// The most alerts one request may ask for.
pub const MAX_LIMIT: usize = 1000;

/// One alert as the report writes it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AlertBody {
    customer_id: i64,
    last_name: String,
    first_name: String,
    counts: i64,
    window_start: String,
    window_end: String,
}

fn rfc3339(ms: i64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

impl From<FraudAlert> for AlertBody {
    fn from(alert: FraudAlert) -> Self {
        AlertBody {
            customer_id: alert.customer_id,
            last_name: alert.last_name,
            first_name: alert.first_name,
            counts: alert.counts,
            window_start: rfc3339(alert.window_start),
            window_end: rfc3339(alert.window_end),
        }
    }
}

/// The report's routes.
pub fn routes(router: QueryRouter) -> Router {
    Router::new().route("/fraud", get(fraud)).with_state(router)
}

/// A query parameter the report refuses, and why.
#[derive(Debug)]
struct BadParameter {
    parameter: String,
    message: String,
}

impl IntoResponse for BadParameter {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "parameter": self.parameter });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// Reads `limit`: absent means [`DEFAULT_LIMIT`]; otherwise 1 to [`MAX_LIMIT`]. Any
/// other parameter is refused, so a misspelt one is not silently ignored.
fn limit(query: &HashMap<String, String>) -> Result<usize, BadParameter> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "limit") {
        return Err(BadParameter {
            parameter: unknown.clone(),
            message: format!("unknown parameter {unknown:?}; the report takes only limit"),
        });
    }
    match query.get("limit").map(|l| l.parse::<usize>()) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(BadParameter {
            parameter: "limit".into(),
            message: format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        }),
    }
}

async fn fraud(
    State(router): State<QueryRouter>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&query) {
        Ok(limit) => limit,
        Err(bad) => return bad.into_response(),
    };
    match router
        .fetch_all_windows::<CustomerKey, i64>(FRAUD_COUNTS, 0, i64::MAX)
        .await
    {
        Ok(routed) => {
            let alerts: Vec<AlertBody> = fraud_alerts(routed.value, limit)
                .into_iter()
                .map(AlertBody::from)
                .collect();
            Json(alerts).into_response()
        }
        Err(e) => {
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let body = serde_json::json!({ "error": format!("reading the fraud counts: {e}") });
            (status, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_limit_is_checked() {
        assert_eq!(limit(&query(&[])).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&query(&[("limit", "3")])).unwrap(), 3);
        for bad in ["0", "-1", "ten", "1001", ""] {
            let refused = limit(&query(&[("limit", bad)])).unwrap_err();
            assert_eq!(refused.parameter, "limit", "{bad:?}");
            assert_eq!(refused.into_response().status(), StatusCode::BAD_REQUEST);
        }
        let refused = limit(&query(&[("limt", "3")])).unwrap_err();
        assert_eq!(refused.parameter, "limt");
    }

    #[test]
    fn window_bounds_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_280_680_000), "2025-11-27T21:58:00Z");
    }
}
