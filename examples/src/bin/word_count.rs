//! The word count quickstart (see `streams_examples::quickstarts::word_count`):
//!
//! ```text
//! dev/kafka start
//! cargo run -p streams-examples --bin word-count -- --sample
//! ```
//!
//! Prints each word's new count as it is written to `streams-wordcount-output`; type
//! more lines into `streams-plaintext-input` with any producer. Ctrl-C stops it.

use anyhow::Result;
use clap::Parser;
use streams_examples::quickstarts::plumbing::{self, QuickstartArgs};
use streams_examples::quickstarts::word_count::{self, INPUT, OUTPUT, SAMPLE};

#[derive(Parser)]
#[command(about = "Counts the words of streams-plaintext-input")]
struct Options {
    #[command(flatten)]
    common: QuickstartArgs,
}

fn main() -> Result<()> {
    let Options { common } = Options::parse();
    let (input, output) = (common.topic(INPUT), common.topic(OUTPUT));
    plumbing::ensure_topics(&common.bootstrap, &[input.clone(), output.clone()], 3)?;
    plumbing::print_topic(&common.bootstrap, &output, "COUNT", |k, v| {
        format!("{} -> {}", plumbing::text(k), plumbing::long(v))
    })?;
    if common.sample {
        let lines: Vec<(&str, &str)> = SAMPLE.iter().map(|l| ("", *l)).collect();
        plumbing::send(&common.bootstrap, &input, &plumbing::text_records(&lines))?;
    }
    streams_examples::run(
        word_count::topology(&input, &output),
        common.config("wordcount"),
    )
}
