//! Final results of a windowed aggregation that emits on window close, under the
//! runtime against the real broker: how far results have been emitted survives a
//! restart on another instance (its store is restored from its changelog), so no window
//! is emitted twice. Start the broker with `dev/kafka start` (or run `dev/test`).

use std::path::Path;
use std::time::{Duration, Instant};

use streams_core::dsl::{EmitStrategy, TimeWindows};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, require_broker, within, Isolation, TestTopic,
};

/// Counts records per key in 10 s windows, emitting each window once when it closes, as
/// `"<key>@<window start - base>"` -> `"<count>"`. Event time is the value (epoch
/// milliseconds; recent, or the broker would expire the window changelog's records).
fn final_counts(app: &str, input: &str, output: &str, state_dir: &Path, base: i64) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            input,
            Consumed::with(StringSerde, StringSerde).with_timestamp_extractor(
                |_: &String, value: &String, _, _| value.parse().expect("event times"),
            ),
        )
        .group_by_key(Grouped::new())
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(10)))
        .emit_strategy(EmitStrategy::on_window_close())
        // Closed windows stay queryable for an hour, so the store still holds them
        // when the next instance starts.
        .count(Materialized::new().with_retention(Duration::from_secs(3600)))
        .to_stream()
        .map(move |window, count| {
            let key = format!("{}@{}", window.key, window.window.start - base);
            (key, count.map_or(s("deleted"), |c| c.to_string()))
        })
        .to(output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(app, bootstrap())
        .with_commit_interval(Duration::from_millis(200))
        .with_state_dir(state_dir);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    streams.start().unwrap();
    assert!(
        streams.wait_for_state(State::Running, Duration::from_secs(60)),
        "{:?}",
        streams.state()
    );
    streams
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Every output record, once one keyed `last` is there: anything emitted before it
/// (a window emitted twice included) is in the list.
fn outputs_until(topic: &str, last: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records: Vec<(String, String)> =
            consume_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(20))
                .iter()
                .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
                .collect();
        if records.iter().any(|(k, _)| k == last) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "no {last} in {topic}: {records:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn final_results_are_emitted_once_across_a_restart_on_another_instance() {
    within(Duration::from_secs(240), || {
        require_broker();
        let app = format!("it-emit-final-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("emit-final-in", 1);
        let output = TestTopic::new("emit-final-out", 1);
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        // Event times count from a window start an hour ago.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let base = (now - 3_600_000) / 10_000 * 10_000;
        let at = |offsets: &[i64]| -> Vec<(String, String)> {
            offsets
                .iter()
                .map(|o| (s("k"), (base + o).to_string()))
                .collect()
        };

        // A: two records in [0,10 s), then one at 15 s closes that window.
        let a = final_counts(&app, input.name(), output.name(), dir_a.path(), base);
        produce_keyed(input.name(), at(&[1000, 2000, 15000]));
        assert_eq!(outputs_until(output.name(), "k@0"), [(s("k@0"), s("2"))]);
        assert!(a.close(Duration::from_secs(30)));

        // B, with an empty state directory, restores the windows and how far results
        // went; 16 s closes nothing new, 25 s closes [10 s, 20 s).
        let b = final_counts(&app, input.name(), output.name(), dir_b.path(), base);
        produce_keyed(input.name(), at(&[16000, 25000]));
        assert_eq!(
            outputs_until(output.name(), "k@10000"),
            [(s("k@0"), s("2")), (s("k@10000"), s("2"))],
            "[0,10 s) was emitted once, before the restart"
        );
        assert!(b.close(Duration::from_secs(30)));
    });
}
