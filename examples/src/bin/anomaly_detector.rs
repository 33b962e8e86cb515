//! The anomaly detector quickstart (see `streams_examples::quickstarts::anomaly_detector`):
//!
//! ```text
//! dev/kafka start
//! cargo run -p streams-examples --bin anomaly-detector -- --sample
//! ```
//!
//! Prints each user with three or more clicks in a minute once that minute's window
//! closes. Its topics have one partition, so that one stream time closes every
//! user's windows. Ctrl-C stops it.

use anyhow::Result;
use clap::Parser;
use streams_examples::quickstarts::anomaly_detector::{self, CLICKS, OUTPUT, SAMPLE};
use streams_examples::quickstarts::plumbing::{self, QuickstartArgs};

#[derive(Parser)]
#[command(about = "Reports users with three or more clicks in a minute")]
struct Options {
    #[command(flatten)]
    common: QuickstartArgs,
}

fn main() -> Result<()> {
    let Options { common } = Options::parse();
    let (clicks, output) = (common.topic(CLICKS), common.topic(OUTPUT));
    plumbing::ensure_topics(&common.bootstrap, &[clicks.clone(), output.clone()], 1)?;
    plumbing::print_topic(&common.bootstrap, &output, "ANOMALY", |k, v| {
        format!("{} -> {} clicks", plumbing::text(k), plumbing::long(v))
    })?;
    if common.sample {
        // At the start of the current minute, so the sample's first minute is one window.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let start = now - now % 60_000;
        let records: Vec<_> = SAMPLE
            .iter()
            .map(|(user, page, secs)| {
                (
                    user.as_bytes().to_vec(),
                    page.as_bytes().to_vec(),
                    Some(start + secs * 1000),
                )
            })
            .collect();
        plumbing::send(&common.bootstrap, &clicks, &records)?;
    }
    streams_examples::run(
        anomaly_detector::topology(&clicks, &output),
        common.config("anomaly-detector"),
    )
}
