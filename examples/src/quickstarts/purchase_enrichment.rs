//! Enrichment with a global table: purchases (keyed by customer) joined with the
//! product catalogue (a `GlobalKTable` keyed by product id, read in full by every
//! instance, so the purchases need no repartitioning), written out with the product's
//! name and the purchase's total. A purchase of an unknown product is dropped (inner
//! join).
//!
//! ```text
//! products (product id → {"name","price"})  ──global_table("products")──┐
//! purchases (customer → {"productId","quantity"}) ──join_global(product id)──> enriched-purchases
//!                                                         (customer → {"customer","product","quantity","total"})
//! ```
//!
//! ```
//! use streams_core::serde::{JsonSerde, StringSerde};
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_examples::quickstarts::purchase_enrichment::*;
//!
//! let driver = TopologyTestDriver::new(topology("products", "purchases", "out"));
//! driver
//!     .input_topic("products", StringSerde, JsonSerde::<Product>::new())
//!     .pipe_input("p1".into(), Product { name: "Lamp".into(), price: 20.0 });
//! driver
//!     .input_topic("purchases", StringSerde, JsonSerde::<Purchase>::new())
//!     .pipe_input("ann".into(), Purchase { product_id: "p1".into(), quantity: 3 });
//! let out = driver.output_topic("out", StringSerde, JsonSerde::<EnrichedPurchase>::new());
//! assert_eq!(out.read_value().unwrap().total, 60.0);
//! ```

use serde::{Deserialize, Serialize};
use streams_core::serde::{JsonSerde, StringSerde};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder, Topology};

/// The catalogue topic of the quickstart (compacted in production).
pub const PRODUCTS: &str = "products";
/// The purchases topic of the quickstart.
pub const PURCHASES: &str = "purchases";
/// The output topic of the quickstart.
pub const OUTPUT: &str = "enriched-purchases";

/// A product of the catalogue, keyed by its id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Product {
    /// Its name.
    pub name: String,
    /// Price of one.
    pub price: f64,
}

/// A purchase, keyed by the customer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// What was bought.
    pub product_id: String,
    /// How many.
    pub quantity: u32,
}

/// A purchase with its product's name and its total.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnrichedPurchase {
    /// Who bought.
    pub customer: String,
    /// The product's name.
    pub product: String,
    /// How many.
    pub quantity: u32,
    /// Quantity times price.
    pub total: f64,
}

/// Purchases on `purchases` joined with the catalogue on `products`, to `output`.
pub fn topology(products: &str, purchases: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    let catalogue = builder.global_table(
        products,
        Consumed::with(StringSerde, JsonSerde::<Product>::new()),
        Materialized::as_store("products"),
    );
    builder
        .stream(
            purchases,
            Consumed::with(StringSerde, JsonSerde::<Purchase>::new()),
        )
        .join_global(
            &catalogue,
            |_customer, purchase: &Purchase| purchase.product_id.clone(),
            |purchase: &Purchase, product: &Product| (purchase.clone(), product.clone()),
        )
        .map_values_with_key(
            |customer: &String, (purchase, product): (Purchase, Product)| EnrichedPurchase {
                total: f64::from(purchase.quantity) * product.price,
                customer: customer.clone(),
                product: product.name,
                quantity: purchase.quantity,
            },
        )
        .to(
            output,
            Produced::with(StringSerde, JsonSerde::<EnrichedPurchase>::new()),
        );
    builder.build().expect("the enrichment topology is valid")
}

/// The sample catalogue of `--sample`: `(product id, JSON)`.
pub const SAMPLE_PRODUCTS: [(&str, &str); 3] = [
    ("p1", r#"{"name":"Desk lamp","price":24.5}"#),
    ("p2", r#"{"name":"Notebook","price":3.2}"#),
    ("p3", r#"{"name":"Fountain pen","price":41.0}"#),
];

/// The sample purchases of `--sample`: `(customer, JSON)`; `p9` is not in the catalogue.
pub const SAMPLE_PURCHASES: [(&str, &str); 4] = [
    ("ann", r#"{"productId":"p1","quantity":2}"#),
    ("bob", r#"{"productId":"p3","quantity":1}"#),
    ("ann", r#"{"productId":"p2","quantity":10}"#),
    ("cid", r#"{"productId":"p9","quantity":1}"#),
];
