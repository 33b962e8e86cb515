//! The enrichment quickstart (see `streams_examples::quickstarts::purchase_enrichment`):
//!
//! ```text
//! dev/kafka start
//! cargo run -p streams-examples --bin purchase-enrichment -- --sample
//! ```
//!
//! Prints each enriched purchase written to `enriched-purchases`. Ctrl-C stops it.

use anyhow::Result;
use clap::Parser;
use streams_examples::quickstarts::plumbing::{self, QuickstartArgs};
use streams_examples::quickstarts::purchase_enrichment::{
    self, OUTPUT, PRODUCTS, PURCHASES, SAMPLE_PRODUCTS, SAMPLE_PURCHASES,
};

#[derive(Parser)]
#[command(about = "Joins purchases with the product catalogue (a global table)")]
struct Options {
    #[command(flatten)]
    common: QuickstartArgs,
}

fn main() -> Result<()> {
    let Options { common } = Options::parse();
    let [products, purchases, output] = [PRODUCTS, PURCHASES, OUTPUT].map(|t| common.topic(t));
    plumbing::ensure_topics(
        &common.bootstrap,
        &[products.clone(), purchases.clone(), output.clone()],
        3,
    )?;
    plumbing::print_topic(&common.bootstrap, &output, "ENRICHED", |k, v| {
        format!("{} -> {}", plumbing::text(k), plumbing::text(v))
    })?;
    if common.sample {
        plumbing::send(
            &common.bootstrap,
            &products,
            &plumbing::text_records(&SAMPLE_PRODUCTS),
        )?;
        plumbing::send(
            &common.bootstrap,
            &purchases,
            &plumbing::text_records(&SAMPLE_PURCHASES),
        )?;
    }
    streams_examples::run(
        purchase_enrichment::topology(&products, &purchases, &output),
        common.config("purchase-enrichment"),
    )
}
