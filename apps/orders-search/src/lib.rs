//! The orders search index: every event of `orders.v1` indexed in an
//! Elasticsearch-compatible engine (OpenSearch in development: `dev/opensearch start`),
//! one document per order id and state, so a replay never duplicates; a search API and
//! a live page over it on HTTP port 8020. It stands in for the Elasticsearch sink and
//! Kibana of the original "microservices-orders" demo.
//!
//! * [`config`]: the service's own settings (engine, index, batching, fraud report);
//! * [`document`]: an order event as a document, its id and the index mapping;
//! * [`engine`]: the engine's REST API (health, index creation, `_bulk`, `_search`);
//! * [`bulk`]: batches written through `_bulk`, retried with backoff until acknowledged;
//! * [`sink`]: the consumer that batches, indexes, dead-letters and commits only what
//!   the engine acknowledged;
//! * [`api`]: `/api/orders`, `/api/orders/{id}` and the fraud report proxy `/api/fraud`;
//! * [`health`]: `/health` and `/metrics`;
//! * [`page`]: the web page at `/`;
//! * [`service`]: all of it started and stopped as one [`SearchService`].
//!
//! ```no_run
//! use orders_search::{SearchConfig, SearchService};
//! use service_kit::ServiceConfig;
//!
//! let config = ServiceConfig::load(orders_search::HTTP_PORT)?;
//! let service = SearchService::start(&config, &SearchConfig::load()?)?;
//! println!("search page at {}", service.url());
//! service.wait_for_stop()?;
//! service.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod bulk;
pub mod config;
pub mod document;
pub mod engine;
pub mod error;
pub mod health;
pub mod page;
pub mod service;
pub mod sink;

pub use config::SearchConfig;
pub use error::Error;
pub use service::SearchService;

use service_kit::ServiceSpec;

/// The service's name: its consumer group and dead-letter topic are named after it.
pub const SERVICE_NAME: &str = "orders-search";
/// The default HTTP port of the API, the page, `/health` and `/metrics`.
pub const HTTP_PORT: u16 = 8020;

/// The service as service-kit describes services: it reads `orders.v1` and writes no
/// Avro; its dead-letter topic is `<prefix>orders-search-dead-letters`.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: SERVICE_NAME,
        http_port: HTTP_PORT,
        topics: |t| vec![t.orders.clone()],
        writes: |_| Vec::new(),
        serves_queries: false,
    }
}
