//! [`EngineClient`]: the calls this service makes to an Elasticsearch-compatible engine
//! (OpenSearch, Elasticsearch) over its REST API: cluster health, index creation with an
//! explicit mapping, `_bulk` with its per-item results, `_search`, `_count`, `_refresh`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How long a health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A call to the engine that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// No answer: refused, timed out, connection dropped.
    #[error("{url} did not answer: {reason} (is the engine up? `dev/opensearch start`)")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// What the HTTP client saw.
        reason: String,
    },
    /// An answer with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body (the engine's JSON error), cut to 2000 characters.
        body: String,
    },
    /// An answer that is not what the API documents.
    #[error("{url} answered something unexpected: {reason}")]
    Unexpected {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl EngineError {
    /// Whether trying again may succeed: no answer, 429 (too many requests) or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Unreachable { .. } => true,
            EngineError::Status { status, .. } => *status == 429 || *status >= 500,
            EngineError::Unexpected { .. } => false,
        }
    }
}

/// What the engine said about one action of a `_bulk` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Indexed (201 created or 200 updated).
    Acknowledged,
    /// Not indexed for a reason that may pass (429, 5xx): send it again.
    Retry(String),
    /// The index does not exist (deleted while the service ran): create it, send again.
    IndexMissing(String),
    /// Refused for good (the document does not fit the mapping, ...).
    Rejected(String),
}

/// The per-item results of a `_bulk` request, in the order of its actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkResponse {
    /// One outcome per action.
    pub items: Vec<ItemOutcome>,
}

impl BulkResponse {
    /// Reads a `_bulk` answer; it must hold one item per action sent (`expected`).
    pub fn parse(body: &Value, expected: usize) -> Result<Self, String> {
        let items = body
            .get("items")
            .and_then(Value::as_array)
            .ok_or("no \"items\" array")?;
        if items.len() != expected {
            return Err(format!("{} items for {expected} actions", items.len()));
        }
        let items = items
            .iter()
            .map(|item| {
                // {"index": {"_id": .., "status": 201}} or {"index": {.., "error": {..}}}
                let result = item
                    .as_object()
                    .and_then(|o| o.values().next())
                    .ok_or_else(|| format!("item {item} is not an action result"))?;
                let status = result
                    .get("status")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("item {item} has no status"))?;
                let error = result.get("error");
                let reason = || match error {
                    Some(e) => format!(
                        "{} ({}): {}",
                        status,
                        e.get("type").and_then(Value::as_str).unwrap_or("?"),
                        e.get("reason").and_then(Value::as_str).unwrap_or("")
                    ),
                    None => format!("status {status}"),
                };
                let kind = error.and_then(|e| e.get("type")).and_then(Value::as_str);
                Ok(match status {
                    200..=299 if error.is_none() => ItemOutcome::Acknowledged,
                    _ if kind == Some("index_not_found_exception") => {
                        ItemOutcome::IndexMissing(reason())
                    }
                    429 | 500..=599 => ItemOutcome::Retry(reason()),
                    _ => ItemOutcome::Rejected(reason()),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(BulkResponse { items })
    }
}

/// The hits of a search: how many documents match, and the `_source` of those returned.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHits {
    /// Matching documents in all.
    pub total: u64,
    /// The documents returned, in the order asked for.
    pub sources: Vec<Value>,
}

/// A client of one engine, cheap to clone.
#[derive(Clone, Debug)]
pub struct EngineClient {
    http: reqwest::Client,
    base: String,
}

impl EngineClient {
    /// A client of the engine at `base_url`, each request limited to `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, EngineError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| EngineError::Unexpected {
                url: base_url.to_string(),
                reason: format!("cannot create an HTTP client: {e}"),
            })?;
        Ok(EngineClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        })
    }

    /// The engine's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The cluster's health colour (`green`, `yellow`, `red`), asked with a short timeout.
    pub async fn cluster_health(&self) -> Result<String, EngineError> {
        let url = format!("{}/_cluster/health", self.base);
        let body = self
            .call(self.http.get(&url).timeout(PROBE_TIMEOUT), &url)
            .await?;
        body.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| EngineError::Unexpected {
                url,
                reason: "no \"status\"".into(),
            })
    }

    /// Creates `index` with `settings_and_mappings` unless it exists; true if it was
    /// created here. Another instance creating it meanwhile counts as existing.
    pub async fn ensure_index(
        &self,
        index: &str,
        settings_and_mappings: &Value,
    ) -> Result<bool, EngineError> {
        let url = format!("{}/{index}", self.base);
        let head = self
            .http
            .request(Method::HEAD, &url)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        match head.status() {
            StatusCode::OK => return Ok(false),
            StatusCode::NOT_FOUND => {}
            status => {
                return Err(EngineError::Status {
                    url,
                    status: status.as_u16(),
                    body: String::new(),
                })
            }
        }
        match self
            .call(self.http.put(&url).json(settings_and_mappings), &url)
            .await
        {
            Ok(_) => Ok(true),
            Err(EngineError::Status {
                status: 400, body, ..
            }) if body.contains("resource_already_exists_exception") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends one `_bulk` request of `actions` actions (NDJSON, each line ending in `\n`)
    /// and returns each action's outcome.
    pub async fn bulk(&self, ndjson: String, actions: usize) -> Result<BulkResponse, EngineError> {
        let url = format!("{}/_bulk", self.base);
        let body = self
            .call(
                self.http
                    .post(&url)
                    .header("Content-Type", "application/x-ndjson")
                    .body(ndjson),
                &url,
            )
            .await?;
        BulkResponse::parse(&body, actions)
            .map_err(|reason| EngineError::Unexpected { url, reason })
    }

    /// Runs the search `query` (a `_search` body) on `index`.
    pub async fn search(&self, index: &str, query: &Value) -> Result<SearchHits, EngineError> {
        let url = format!("{}/{index}/_search", self.base);
        let body = self.call(self.http.post(&url).json(query), &url).await?;
        let hits = &body["hits"];
        let total = hits["total"]["value"]
            .as_u64()
            .or_else(|| hits["total"].as_u64())
            .unwrap_or(0);
        let sources = hits["hits"]
            .as_array()
            .ok_or_else(|| EngineError::Unexpected {
                url,
                reason: "no hits.hits array".into(),
            })?
            .iter()
            .map(|hit| hit["_source"].clone())
            .collect();
        Ok(SearchHits { total, sources })
    }

    /// How many documents `index` holds (as of its last refresh).
    pub async fn count(&self, index: &str) -> Result<u64, EngineError> {
        let url = format!("{}/{index}/_count", self.base);
        let body = self.call(self.http.get(&url), &url).await?;
        body["count"]
            .as_u64()
            .ok_or_else(|| EngineError::Unexpected {
                url,
                reason: "no count".into(),
            })
    }

    /// Makes everything indexed so far searchable now, instead of at the next refresh.
    pub async fn refresh(&self, index: &str) -> Result<(), EngineError> {
        let url = format!("{}/{index}/_refresh", self.base);
        self.call(self.http.post(&url), &url).await.map(drop)
    }

    /// Deletes `index`; a missing index is fine.
    pub async fn delete_index(&self, index: &str) -> Result<(), EngineError> {
        let url = format!("{}/{index}", self.base);
        match self.call(self.http.delete(&url), &url).await {
            Ok(_) | Err(EngineError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends `request`; a 2xx answer's JSON body, or the error.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, EngineError> {
        let response = request.send().await.map_err(|e| unreachable(url, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unreachable(url, &e))?;
        if !status.is_success() {
            return Err(EngineError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: text.chars().take(2000).collect(),
            });
        }
        serde_json::from_str(&text).map_err(|e| EngineError::Unexpected {
            url: url.to_string(),
            reason: format!("not JSON: {e}"),
        })
    }
}

fn unreachable(url: &str, error: &reqwest::Error) -> EngineError {
    EngineError::Unreachable {
        url: url.to_string(),
        reason: describe(error),
    }
}

/// An HTTP client error with its causes: reqwest's own message hides them ("error
/// sending request"), the chain names them ("Connection refused").
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bulk_items_are_read_in_order_and_classified() {
        let body = json!({"took": 3, "errors": true, "items": [
            {"index": {"_id": "1-CREATED", "status": 201}},
            {"index": {"_id": "1-VALIDATED", "status": 200}},
            {"index": {"_id": "2", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"index": {"_id": "3", "status": 400, "error": {"type": "strict_dynamic_mapping_exception", "reason": "no"}}},
            {"index": {"_id": "4", "status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index"}}},
            {"index": {"_id": "5", "status": 503, "error": {"type": "unavailable_shards_exception", "reason": "down"}}}
        ]});
        let response = BulkResponse::parse(&body, 6).unwrap();
        assert_eq!(response.items[0], ItemOutcome::Acknowledged);
        assert_eq!(response.items[1], ItemOutcome::Acknowledged);
        assert!(
            matches!(&response.items[2], ItemOutcome::Retry(r) if r.contains("queue full")),
            "{:?}",
            response.items[2]
        );
        assert!(
            matches!(&response.items[3], ItemOutcome::Rejected(r) if r.contains("strict_dynamic_mapping_exception"))
        );
        assert!(matches!(&response.items[4], ItemOutcome::IndexMissing(_)));
        assert!(matches!(&response.items[5], ItemOutcome::Retry(_)));
    }

    #[test]
    fn a_bulk_answer_must_account_for_every_action() {
        let body = json!({"errors": false, "items": [{"index": {"status": 201}}]});
        assert!(BulkResponse::parse(&body, 2)
            .unwrap_err()
            .contains("1 items for 2"));
        assert!(BulkResponse::parse(&json!({"error": "x"}), 1).is_err());
    }

    #[test]
    fn only_missing_answers_throttling_and_server_errors_are_transient() {
        let status = |status| EngineError::Status {
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(status(429).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(400).is_transient());
        assert!(EngineError::Unreachable {
            url: "u".into(),
            reason: "refused".into()
        }
        .is_transient());
    }
}
