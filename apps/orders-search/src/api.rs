//! The search API: `GET /api/orders` (exact filters on id, customerId, state and
//! product, free text `q` over every field, newest first, `limit` results),
//! `GET /api/orders/{id}` (every state of one order, oldest first), and
//! `GET /api/fraud?limit=N`, the order-enrichment service's fraud report proxied so the
//! page needs no cross-origin call. A bad parameter is a 400 whose JSON names it.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use orders_platform::records::{OrderState, Product};
use serde::Serialize;
use serde_json::{json, Value};

use crate::document::TEXT_FIELD;
use crate::engine::{EngineClient, EngineError};

/// Results of `/api/orders` when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` of `/api/orders`.
pub const MAX_LIMIT: usize = 1000;
/// Alerts asked of the fraud report when `limit` is not given.
pub const DEFAULT_FRAUD_LIMIT: usize = 10;
/// The largest `limit` of `/api/fraud`.
pub const MAX_FRAUD_LIMIT: usize = 100;
/// States of one order returned by `/api/orders/{id}` at most.
const MAX_STATES: usize = 100;
/// How long the fraud report may take to answer.
const FRAUD_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct SearchApi {
    /// The engine.
    pub engine: EngineClient,
    /// The index searched.
    pub index: String,
    /// Base URL of the fraud report service.
    pub fraud_report_url: String,
    /// The client calling it.
    pub http: reqwest::Client,
}

/// A request parameter that is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamError {
    /// The parameter at fault.
    pub parameter: String,
    /// What is wrong with it.
    pub error: String,
}

impl ParamError {
    fn new(parameter: &str, error: impl Into<String>) -> Self {
        ParamError {
            parameter: parameter.to_string(),
            error: error.into(),
        }
    }
}

/// A search of `/api/orders`; empty parameters count as absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderQuery {
    /// Exact order id.
    pub id: Option<String>,
    /// Exact customer id.
    pub customer_id: Option<i64>,
    /// Exact state.
    pub state: Option<OrderState>,
    /// Exact product.
    pub product: Option<Product>,
    /// Free text over every field (all words must match).
    pub q: Option<String>,
    /// Most results.
    pub limit: usize,
}

/// Each name given once, with its value; empty values dropped; unknown names refused.
fn parameters<'a>(
    pairs: &'a [(String, String)],
    known: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ParamError> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(ParamError::new(
                name,
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        if seen.iter().any(|(n, _)| n == name) {
            return Err(ParamError::new(name, "given more than once"));
        }
        seen.push((name, value.trim()));
    }
    Ok(seen.into_iter().filter(|(_, v)| !v.is_empty()).collect())
}

fn parse_limit(value: &str, max: usize) -> Result<usize, ParamError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ParamError::new(
            "limit",
            format!("must be a whole number from 1 to {max}, not {value:?}"),
        )),
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    parameter: &str,
    value: &str,
    names: &[&str],
) -> Result<T, ParamError> {
    serde_json::from_value(Value::String(value.to_uppercase())).map_err(|_| {
        ParamError::new(
            parameter,
            format!("must be one of {}, not {value:?}", names.join(", ")),
        )
    })
}

impl OrderQuery {
    /// Reads the query string's `(name, value)` pairs.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ParamError> {
        let mut query = OrderQuery {
            limit: DEFAULT_LIMIT,
            ..OrderQuery::default()
        };
        let known = ["id", "customerId", "state", "product", "q", "limit"];
        for (name, value) in parameters(pairs, &known)? {
            match name {
                "id" => query.id = Some(value.to_string()),
                "customerId" => {
                    query.customer_id = Some(value.parse().map_err(|_| {
                        ParamError::new(name, format!("must be a whole number, not {value:?}"))
                    })?)
                }
                "state" => {
                    query.state = Some(parse_enum(
                        name,
                        value,
                        &["CREATED", "VALIDATED", "FAILED", "SHIPPED"],
                    )?)
                }
                "product" => {
                    query.product = Some(parse_enum(
                        name,
                        value,
                        &["JUMPERS", "UNDERPANTS", "STOCKINGS"],
                    )?)
                }
                "q" => query.q = Some(value.to_string()),
                "limit" => query.limit = parse_limit(value, MAX_LIMIT)?,
                _ => unreachable!("only known names pass"),
            }
        }
        Ok(query)
    }

    /// The `_search` body: filters for the exact parameters, a `simple_query_string`
    /// (every word must match, syntax errors impossible) over the copied-together text
    /// of each document, newest first.
    pub fn to_search(&self) -> Value {
        let mut filters = Vec::new();
        if let Some(id) = &self.id {
            filters.push(json!({"term": {"id": id}}));
        }
        if let Some(customer) = self.customer_id {
            filters.push(json!({"term": {"customerId": customer}}));
        }
        if let Some(state) = self.state {
            filters.push(json!({"term": {"state": state}}));
        }
        if let Some(product) = self.product {
            filters.push(json!({"term": {"product": product}}));
        }
        let mut must = Vec::new();
        if let Some(q) = &self.q {
            must.push(json!({"simple_query_string": {
                "query": q,
                "fields": [TEXT_FIELD],
                "default_operator": "and",
                "lenient": true
            }}));
        }
        json!({
            "size": self.limit,
            "track_total_hits": true,
            "query": {"bool": {"filter": filters, "must": must}},
            "sort": [{"timestamp": "desc"}, {"offset": "desc"}]
        })
    }
}

/// The routes of the API.
pub fn routes(api: SearchApi) -> Router {
    Router::new()
        .route("/api/orders", get(search_orders))
        .route("/api/orders/{id}", get(order_states))
        .route("/api/fraud", get(fraud_report))
        .with_state(api)
}

/// An error answer: a status and `{"error": ...}`, plus `"parameter"` for a bad one.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    parameter: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            parameter: None,
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: e.error,
            parameter: Some(e.parameter),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        tracing::warn!("search failed: {e}");
        // Down, overloaded, or the index not created yet: try later.
        let status = if e.is_transient() || matches!(e, EngineError::Status { status: 404, .. }) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        ApiError::new(status, format!("the search engine failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.parameter {
            Some(parameter) => json!({"error": self.error, "parameter": parameter}),
            None => json!({"error": self.error}),
        };
        (self.status, Json(body)).into_response()
    }
}

/// The query string as `(name, value)` pairs.
type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

async fn search_orders(
    State(api): State<SearchApi>,
    query: Pairs,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query?;
    let query = OrderQuery::parse(&pairs)?;
    let hits = api.engine.search(&api.index, &query.to_search()).await?;
    Ok(Json(json!({"total": hits.total, "orders": hits.sources})))
}

async fn order_states(
    State(api): State<SearchApi>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let search = json!({
        "size": MAX_STATES,
        "query": {"bool": {"filter": [{"term": {"id": id}}]}},
        "sort": [{"timestamp": "asc"}, {"offset": "asc"}]
    });
    let hits = api.engine.search(&api.index, &search).await?;
    if hits.sources.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no order {id:?} is indexed"),
        ));
    }
    Ok(Json(hits.sources))
}

async fn fraud_report(State(api): State<SearchApi>, query: Pairs) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query?;
    let mut limit = DEFAULT_FRAUD_LIMIT;
    for (_, value) in parameters(&pairs, &["limit"])? {
        limit = parse_limit(value, MAX_FRAUD_LIMIT)?;
    }
    let url = format!(
        "{}/fraud?limit={limit}",
        api.fraud_report_url.trim_end_matches('/')
    );
    let unavailable = |why: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the fraud report at {url} is unavailable: {why}"),
        )
    };
    let response = api
        .http
        .get(&url)
        .timeout(FRAUD_TIMEOUT)
        .send()
        .await
        .map_err(|e| unavailable(crate::engine::describe(&e)))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("it answered {}", response.status())));
    }
    match response.json::<Value>().await {
        Ok(alerts @ Value::Array(_)) => Ok(Json(alerts)),
        Ok(other) => Err(unavailable(format!(
            "it answered {other} instead of an array"
        ))),
        Err(e) => Err(unavailable(format!("its answer is not JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_become_filters_and_free_text() {
        let query = OrderQuery::parse(&pairs(&[
            ("id", "7"),
            ("customerId", "3"),
            ("state", "validated"),
            ("product", "JUMPERS"),
            ("q", "jumpers 3"),
            ("limit", "5"),
        ]))
        .unwrap();
        assert_eq!(query.state, Some(OrderState::Validated));
        let search = query.to_search();
        assert_eq!(search["size"], 5);
        assert_eq!(
            search["query"]["bool"]["filter"],
            json!([{"term": {"id": "7"}}, {"term": {"customerId": 3}},
                   {"term": {"state": "VALIDATED"}}, {"term": {"product": "JUMPERS"}}])
        );
        assert_eq!(
            search["query"]["bool"]["must"][0]["simple_query_string"]["query"],
            "jumpers 3"
        );
        assert_eq!(search["sort"][0], json!({"timestamp": "desc"}));
    }

    #[test]
    fn nothing_given_is_the_newest_orders() {
        let query = OrderQuery::parse(&pairs(&[("q", " "), ("state", "")])).unwrap();
        assert_eq!(
            query,
            OrderQuery {
                limit: DEFAULT_LIMIT,
                ..OrderQuery::default()
            }
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |list: &[(&str, &str)]| OrderQuery::parse(&pairs(list)).unwrap_err().parameter;
        assert_eq!(bad(&[("limit", "0")]), "limit");
        assert_eq!(bad(&[("limit", "many")]), "limit");
        assert_eq!(bad(&[("limit", "1001")]), "limit");
        assert_eq!(bad(&[("customerId", "x")]), "customerId");
        assert_eq!(bad(&[("state", "LOST")]), "state");
        assert_eq!(bad(&[("product", "HATS")]), "product");
        assert_eq!(bad(&[("colour", "red")]), "colour");
        assert_eq!(bad(&[("id", "1"), ("id", "2")]), "id");
    }
}
