//! The runtime reports its metrics through the `metrics` facade: records consumed,
//! processed and produced, processing and commit latency, and consumer lag. Needs the
//! broker (`dev/kafka start`, or run `dev/test`). A test binary of its own, since it
//! installs a global recorder.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use streams_core::runtime::{KafkaStreams, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_n, produce_keyed, require_broker, within, TestTopic,
};

/// Everything recorded so far (a debugging snapshot resets counters, so it is summed).
#[derive(Default)]
struct Observed {
    counters: HashMap<String, u64>,
    names: HashSet<(MetricKind, String)>,
}

impl Observed {
    fn update(&mut self, snapshotter: &Snapshotter) -> &Self {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let name = key.key().name().to_string();
            if let DebugValue::Counter(n) = value {
                *self.counters.entry(name.clone()).or_default() += n;
            }
            self.names.insert((key.kind(), name));
        }
        self
    }

    fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    fn has(&self, kind: MetricKind, name: &str) -> bool {
        self.names.contains(&(kind, name.to_string()))
    }
}

#[test]
fn throughput_latency_and_lag_are_recorded() {
    within(Duration::from_secs(120), || {
        require_broker();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("first recorder of this test binary");

        let input = TestTopic::new("metrics-in", 2);
        let output = TestTopic::new("metrics-out", 2);
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .filter(|_, v| v != "skip")
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let app = format!("it-metrics-{}", uuid::Uuid::new_v4().simple());
        let mut config =
            StreamsConfig::new(&app, bootstrap()).with_commit_interval(Duration::from_millis(100));
        config.statistics_interval = Duration::from_millis(200);
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        let records: Vec<(String, String)> = (0..100)
            .map(|i| {
                (
                    format!("k{i}"),
                    if i % 10 == 0 {
                        "skip".into()
                    } else {
                        format!("v{i}")
                    },
                )
            })
            .collect();
        produce_keyed(input.name(), records);
        assert_eq!(
            consume_n(output.name(), 90, Duration::from_secs(30)).len(),
            90
        );

        // Wait for a commit (after the flush that counts produced records) and a statistics report.
        let mut seen = Observed::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while (seen
            .update(&snapshotter)
            .counter("streams_records_produced_total")
            < 90
            || !seen.has(MetricKind::Gauge, "streams_consumer_lag"))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(seen.counter("streams_records_consumed_total"), 100);
        assert_eq!(seen.counter("streams_records_processed_total"), 100);
        assert_eq!(seen.counter("streams_records_produced_total"), 90);
        assert!(seen.has(MetricKind::Histogram, "streams_process_latency_seconds"));
        assert!(seen.has(MetricKind::Histogram, "streams_commit_latency_seconds"));
        assert!(seen.has(MetricKind::Gauge, "streams_consumer_lag"));
        assert!(streams.close(Duration::from_secs(30)));
    });
}
