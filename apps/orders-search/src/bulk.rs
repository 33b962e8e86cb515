//! [`BulkWriter`]: writes a batch of documents through the engine's `_bulk` API
//! (NDJSON) and retries what the engine did not acknowledge, with exponential backoff
//! and jitter (`backon`), until every document is acknowledged or refused for good, or
//! the retry budget is spent. Only the unacknowledged documents are sent again, under
//! their own ids, so a retry never duplicates one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;

use crate::engine::{EngineClient, EngineError, ItemOutcome};

/// One document to index: its id and its JSON source.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexAction {
    /// The document id.
    pub id: String,
    /// The document, serialized as JSON on one line.
    pub source: String,
}

/// How a batch ended when it did not fail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkReport {
    /// Positions (in the batch) and reasons of the documents the engine refused for good;
    /// every other document is acknowledged.
    pub rejected: Vec<(usize, String)>,
    /// `_bulk` requests sent (1 when nothing needed a retry).
    pub requests: usize,
}

/// A batch that was not fully acknowledged: nothing of it may count as indexed.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The retry budget ran out while the engine was down, throttling or failing.
    #[error("gave up after {requests} _bulk requests in {elapsed:?}: {last}")]
    GaveUp {
        /// Requests sent.
        requests: usize,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },
    /// The engine refused the request as a whole (not a transient failure).
    #[error("the engine refused the _bulk request: {0}")]
    Refused(EngineError),
}

/// Why one attempt did not finish the batch.
#[derive(Debug)]
enum Attempt {
    /// The request failed as a whole.
    Request(EngineError),
    /// Some items were not acknowledged, for reasons that may pass.
    Items { count: usize, example: String },
}

impl Attempt {
    fn is_transient(&self) -> bool {
        match self {
            Attempt::Request(e) => e.is_transient(),
            Attempt::Items { .. } => true,
        }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Request(e) => write!(f, "{e}"),
            Attempt::Items { count, example } => {
                write!(f, "{count} documents not acknowledged, e.g. {example}")
            }
        }
    }
}

/// Writes batches to one index of one engine.
#[derive(Clone, Debug)]
pub struct BulkWriter {
    engine: EngineClient,
    index: String,
    mapping: Value,
    backoff: ExponentialBuilder,
    cancel: Arc<AtomicBool>,
}

impl BulkWriter {
    /// A writer to `index` (re-created with `mapping` if it disappears), retrying a
    /// batch for up to about `retry_timeout` of backoff: 100 ms, doubling, at most 5 s
    /// apart, with jitter.
    pub fn new(engine: EngineClient, index: &str, mapping: Value, retry_timeout: Duration) -> Self {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(retry_timeout));
        BulkWriter {
            engine,
            index: index.to_string(),
            mapping,
            backoff,
            cancel: Arc::default(),
        }
    }

    /// This writer, retrying no more once `cancel` is set (a stopping service gives a
    /// batch up at once instead of waiting out the retry budget).
    pub fn cancelled_by(self, cancel: Arc<AtomicBool>) -> Self {
        BulkWriter { cancel, ..self }
    }

    /// The index written to.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The NDJSON body indexing `actions[i]` for each `i` of `which`: an action line
    /// (`index`, so a document sent again overwrites itself) and the source line.
    pub fn ndjson(&self, actions: &[IndexAction], which: &[usize]) -> String {
        let mut body = String::new();
        for &i in which {
            let action = format!(
                "{{\"index\":{{\"_index\":{},\"_id\":{}}}}}\n",
                Value::from(self.index.as_str()),
                Value::from(actions[i].id.as_str())
            );
            body.push_str(&action);
            body.push_str(&actions[i].source);
            body.push('\n');
        }
        body
    }

    /// Indexes `actions`; `Ok` once the engine acknowledged every document except those
    /// listed as rejected, which it refused for good.
    pub async fn write(&self, actions: &[IndexAction]) -> Result<BulkReport, BulkError> {
        let started = Instant::now();
        let remaining = Mutex::new((0..actions.len()).collect::<Vec<usize>>());
        let rejected = Mutex::new(Vec::new());
        let requests = AtomicUsize::new(0);
        let (remaining, rejected, requests) = (&remaining, &rejected, &requests);
        let attempt = move || async move {
            let which = remaining.lock().expect("bulk state").clone();
            if which.is_empty() {
                return Ok(());
            }
            requests.fetch_add(1, Ordering::Relaxed);
            let response = self
                .engine
                .bulk(self.ndjson(actions, &which), which.len())
                .await
                .map_err(Attempt::Request)?;
            let mut again = Vec::new();
            let mut example = None;
            let mut index_missing = false;
            for (&position, outcome) in which.iter().zip(response.items) {
                match outcome {
                    ItemOutcome::Acknowledged => {}
                    ItemOutcome::Retry(reason) => {
                        again.push(position);
                        example.get_or_insert(reason);
                    }
                    ItemOutcome::IndexMissing(reason) => {
                        again.push(position);
                        example.get_or_insert(reason);
                        index_missing = true;
                    }
                    ItemOutcome::Rejected(reason) => {
                        rejected
                            .lock()
                            .expect("bulk state")
                            .push((position, reason));
                    }
                }
            }
            let count = again.len();
            *remaining.lock().expect("bulk state") = again;
            if count == 0 {
                return Ok(());
            }
            if index_missing {
                match self.engine.ensure_index(&self.index, &self.mapping).await {
                    Ok(true) => tracing::warn!(
                        index = self.index,
                        "the index had disappeared; created it again"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(index = self.index, "cannot create the index: {e}"),
                }
            }
            Err(Attempt::Items {
                count,
                example: example.unwrap_or_default(),
            })
        };
        let outcome = attempt
            .retry(self.backoff)
            .sleep(tokio::time::sleep)
            .when(|failure| failure.is_transient() && !self.cancel.load(Ordering::Relaxed))
            .notify(|failure: &Attempt, delay: Duration| {
                metrics::counter!("orders_search_bulk_retries_total").increment(1);
                tracing::warn!(
                    index = self.index,
                    "bulk write incomplete, retrying in {delay:?}: {failure}"
                );
            })
            .await;
        let requests = requests.load(Ordering::Relaxed);
        metrics::counter!("orders_search_bulk_requests_total").increment(requests as u64);
        match outcome {
            Ok(()) => {
                let mut rejected = std::mem::take(&mut *rejected.lock().expect("bulk state"));
                rejected.sort_by_key(|(position, _)| *position);
                Ok(BulkReport { rejected, requests })
            }
            Err(Attempt::Request(e)) if !e.is_transient() => Err(BulkError::Refused(e)),
            Err(last) => Err(BulkError::GaveUp {
                requests,
                elapsed: started.elapsed(),
                last: last.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_is_one_action_line_and_one_source_line_per_document() {
        let engine = EngineClient::new("http://127.0.0.1:1", Duration::from_secs(1)).unwrap();
        let writer = BulkWriter::new(engine, "p-orders", json!({}), Duration::from_secs(1));
        let actions = vec![
            IndexAction {
                id: "1-CREATED".into(),
                source: r#"{"id":"1"}"#.into(),
            },
            IndexAction {
                id: "2-CREATED".into(),
                source: r#"{"id":"2"}"#.into(),
            },
        ];
        assert_eq!(
            writer.ndjson(&actions, &[1, 0]),
            "{\"index\":{\"_index\":\"p-orders\",\"_id\":\"2-CREATED\"}}\n{\"id\":\"2\"}\n\
             {\"index\":{\"_index\":\"p-orders\",\"_id\":\"1-CREATED\"}}\n{\"id\":\"1\"}\n"
        );
    }

    #[test]
    fn an_engine_that_never_answers_is_given_up_within_the_budget() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Port 1 on loopback: refused at once.
        let engine = EngineClient::new("http://127.0.0.1:1", Duration::from_secs(1)).unwrap();
        let writer = BulkWriter::new(engine, "x", json!({}), Duration::from_millis(500));
        let started = Instant::now();
        let error = runtime
            .block_on(writer.write(&[IndexAction {
                id: "1".into(),
                source: "{}".into(),
            }]))
            .unwrap_err();
        assert!(
            matches!(error, BulkError::GaveUp { requests, .. } if requests >= 2),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
