//! The orders search service: indexes `orders.v1` in the engine at
//! `ORDERS_SEARCH_ENGINE_URL` (or `OPENSEARCH_URL`, default http://127.0.0.1:9200) and
//! serves the search API and page on port 8020 (`PLATFORM_HTTP_PORT`). Configuration:
//! `service_kit::ServiceConfig` and `orders_search::SearchConfig`.

use anyhow::Context;
use orders_search::{SearchConfig, SearchService};
use service_kit::ServiceConfig;

fn main() -> anyhow::Result<()> {
    let config = ServiceConfig::load(orders_search::HTTP_PORT)?;
    let search = SearchConfig::load()?;
    service_kit::telemetry::init(config.log_format);
    let service = SearchService::start(&config, &search).context("starting orders-search")?;
    let outcome = service.wait_for_stop();
    service.stop()?;
    Ok(outcome?)
}
