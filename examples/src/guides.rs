//! The guides of the repository's `docs/` directory, included as documentation so that
//! `cargo test --doc -p streams-examples` compiles every Rust example in them, and runs
//! those that need no broker (on the `TopologyTestDriver`). Examples that need a running
//! broker are marked `no_run`; blocks in other languages carry their language (`sh`,
//! `toml`, `text`, `java`, `mermaid`), since a block without one is compiled as Rust.
//!
//! The modules are empty: each only carries one page as its documentation.

#[doc = include_str!("../../docs/README.md")]
pub mod index {}

#[doc = include_str!("../../docs/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../../docs/dsl-guide.md")]
pub mod dsl_guide {}

#[doc = include_str!("../../docs/migration-from-kafka-streams.md")]
pub mod migration_from_kafka_streams {}

#[doc = include_str!("../../docs/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../../docs/interactive-queries.md")]
pub mod interactive_queries {}

#[doc = include_str!("../../docs/operations.md")]
pub mod operations {}

/// The order platform's services, one page each (`docs/services/`).
pub mod services {
    #[doc = include_str!("../../docs/services/README.md")]
    pub mod index {}

    #[doc = include_str!("../../docs/services/orders-service.md")]
    pub mod orders_service {}

    #[doc = include_str!("../../docs/services/order-details-service.md")]
    pub mod order_details_service {}

    #[doc = include_str!("../../docs/services/inventory-service.md")]
    pub mod inventory_service {}

    #[doc = include_str!("../../docs/services/fraud-service.md")]
    pub mod fraud_service {}

    #[doc = include_str!("../../docs/services/validations-aggregator.md")]
    pub mod validations_aggregator {}

    #[doc = include_str!("../../docs/services/email-service.md")]
    pub mod email_service {}

    #[doc = include_str!("../../docs/services/order-enrichment.md")]
    pub mod order_enrichment {}

    #[doc = include_str!("../../docs/services/customers-connector.md")]
    pub mod customers_connector {}

    #[doc = include_str!("../../docs/services/orders-search.md")]
    pub mod orders_search {}

    #[doc = include_str!("../../docs/services/populator.md")]
    pub mod populator {}
}
