//! Counting application: counts records per key in a persistent (RocksDB, change-logged)
//! store and writes every new count to an output topic. It is the process the failover
//! tests start, kill with SIGKILL and start again (`examples/tests/count_failover.rs`).
//!
//! ```text
//! INPUT_TOPIC ──group_by_key──> count (store "counts", changelog <APP_ID>-counts-changelog)
//!                                  └──to_stream──> OUTPUT_TOPIC (String key, i64 big-endian)
//! ```
//!
//! Configuration comes from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `APP_ID` | application id (consumer group, internal topic prefix); required |
//! | `INPUT_TOPIC`, `OUTPUT_TOPIC` | topics to read and write; required, must exist |
//! | `STATE_DIR` | directory of the state stores; required |
//! | `KAFKA_BOOTSTRAP` | bootstrap servers; default `127.0.0.1:9092` |
//! | `COMMIT_INTERVAL_MS` | commit interval; default 1000 |
//! | `SESSION_TIMEOUT_MS` | consumer `session.timeout.ms`; default 6000, so a killed instance is evicted quickly |
//! | `HEARTBEAT_INTERVAL_MS` | consumer `heartbeat.interval.ms`; default a sixth of the session timeout (100 to 3000) |
//! | `STREAMS_*` | any override `StreamsConfig::with_env_overrides` knows |
//!
//! On stdout it prints, one per line: `RUNNING` once the application first reaches
//! state Running; `STATE <state> tasks=[..]` whenever its state or its tasks (with
//! their status, `Restoring` or `Running`) change; `STANDBY [<task>:<store>:lag=<n>:end=<offset>, ..]`
//! whenever its standby tasks or their lag change;
//! `RESTORE-START`/`RESTORE-END` lines while stores are restored from their changelog;
//! `CLOSED` after a graceful close. It runs until SIGTERM or Ctrl-C (and, when
//! `EXIT_WHEN_STDIN_CLOSES=1`, until its stdin closes), then closes gracefully.

use anyhow::Result;
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};
use streams_examples::required;

/// Name of the count store; its changelog is `<APP_ID>-counts-changelog`.
const STORE: &str = "counts";

/// `input → group_by_key → count("counts") → to_stream → output`.
fn topology(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        // The record cache is on, as by default: updates of a key between commits go
        // out as one.
        .count(Materialized::as_store(STORE).with_key_serde(StringSerde))
        .to_stream()
        .to(output, Produced::with(StringSerde, Nullable(I64Serde)));
    builder.build().expect("the counting topology is valid")
}

fn main() -> Result<()> {
    let topology = topology(&required("INPUT_TOPIC")?, &required("OUTPUT_TOPIC")?);
    streams_examples::run(topology, streams_examples::config_from_env()?)
}
