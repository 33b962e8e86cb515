//! A windowed anomaly detector (Kafka's `AnomalyDetectionLambdaExample`): users who
//! click three times or more within one minute. Clicks are counted per user in
//! one-minute tumbling windows, and each window's count is held back until the window
//! closes (`suppress_until_window_closes`), so every anomalous user is reported once
//! per window, with its final count, instead of at the third, fourth, ... click.
//!
//! ```text
//! clicks (user → page) ─group_by_key─windowed_by(1 min, grace 10 s)─count
//!   ─suppress_until_window_closes─filter(count ≥ 3)─> anomalous-users
//!                                                     ("user@window start" → count)
//! ```
//!
//! A window closes when stream time (the largest record timestamp seen) passes its end
//! plus the grace: its result appears with the first record after that.
//!
//! ```
//! use streams_core::serde::{I64Serde, StringSerde};
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_examples::quickstarts::anomaly_detector::topology;
//!
//! let driver = TopologyTestDriver::new(topology("clicks", "anomalies"));
//! let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
//! for second in [1, 5, 9, 20] {
//!     clicks.pipe_input_at("eve".into(), "/home".into(), second * 1000);
//! }
//! clicks.pipe_input_at("bob".into(), "/home".into(), 30_000);
//! let out = driver.output_topic("anomalies", StringSerde, I64Serde);
//! assert!(out.is_empty(), "the window is still open");
//! // A click after the window's end plus grace closes it.
//! clicks.pipe_input_at("bob".into(), "/about".into(), 71_000);
//! assert_eq!(out.read_key_values(), vec![("eve@0".to_string(), 4)]);
//! ```

use std::time::Duration;

use streams_core::dsl::TimeWindows;
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::state::Windowed;
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};

/// The input topic of the quickstart.
pub const CLICKS: &str = "clicks";
/// The output topic of the quickstart.
pub const OUTPUT: &str = "anomalous-users";
/// Clicks in one window that make a user anomalous.
pub const THRESHOLD: i64 = 3;
/// The counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How late a click may arrive and still count.
pub const GRACE: Duration = Duration::from_secs(10);

/// Users with at least [`THRESHOLD`] clicks in a window of `clicks`, once per window,
/// to `output` keyed `user@<window start ms>`.
pub fn topology(clicks: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(clicks, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .windowed_by(TimeWindows::of_size_and_grace(WINDOW, GRACE))
        .count(Materialized::as_store("clicks-per-window"))
        .suppress_until_window_closes()
        .to_stream()
        .flat_map(|window: Windowed<String>, count: Option<i64>| {
            count
                .filter(|c| *c >= THRESHOLD)
                .map(|c| (format!("{}@{}", window.key, window.window.start), c))
        })
        .to(output, Produced::with(StringSerde, I64Serde));
    builder
        .build()
        .expect("the anomaly detector topology is valid")
}

/// The sample clicks of `--sample`: `(user, page, seconds after the start)`. The last
/// click, a minute later, closes the first window.
pub const SAMPLE: [(&str, &str, i64); 8] = [
    ("alice", "/home", 0),
    ("bob", "/home", 2),
    ("alice", "/cart", 5),
    ("alice", "/checkout", 9),
    ("bob", "/about", 14),
    ("alice", "/home", 20),
    ("carol", "/home", 25),
    ("carol", "/home", 75),
];
