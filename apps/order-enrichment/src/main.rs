//! The order-enrichment binary: `orders-enriched.v1`, and the fraud report on port 8010
//! (`GET /fraud?limit=N`), answered from every instance's windows through interactive
//! queries (between instances on `PLATFORM_APPLICATION_SERVER`, default port 8110).
//! Configuration: see `service_kit::ServiceConfig`.

fn main() -> anyhow::Result<()> {
    order_enrichment::run()
}
