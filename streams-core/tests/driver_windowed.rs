//! Windowed operators on the test driver: tumbling, hopping and session aggregations
//! with grace and late-record dropping, and suppression.

use std::time::Duration;

use streams_core::dsl::{SessionWindows, TimeWindows};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::state::{SessionWindowedSerde, TimeWindowedSerde, Windowed};
use streams_core::test_driver::TopologyTestDriver;
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};

fn s(v: &str) -> String {
    v.to_string()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn windowed_counts(windows: TimeWindows) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .windowed_by(windows)
        // Kept a minute, longer than the default (size + grace), to query closed windows.
        .count(Materialized::as_store("clicks-per-window").with_retention(Duration::from_secs(60)))
        .to_stream()
        .to(
            "counts",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, windows.size()),
                Nullable(I64Serde),
            ),
        );
    TopologyTestDriver::new(builder.build().unwrap())
}

fn read_counts(
    driver: &TopologyTestDriver,
    size: Duration,
) -> Vec<((String, i64, i64), Option<i64>)> {
    driver
        .output_topic(
            "counts",
            TimeWindowedSerde::new(StringSerde, size),
            Nullable(I64Serde),
        )
        .read_key_values()
        .into_iter()
        .map(|(w, c): (Windowed<String>, Option<i64>)| ((w.key, w.window.start, w.window.end), c))
        .collect()
}

#[test]
fn tumbling_windows_count_per_key_and_window() {
    let driver = windowed_counts(TimeWindows::of_size_with_no_grace(ms(10)));
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for ts in [1, 5, 12] {
        input.pipe_input_at(s("a"), s("x"), ts);
    }
    input.pipe_input_at(s("b"), s("x"), 13);
    assert_eq!(
        read_counts(&driver, ms(10)),
        [
            ((s("a"), 0, 10), Some(1)),
            ((s("a"), 0, 10), Some(2)),
            ((s("a"), 10, 20), Some(1)),
            ((s("b"), 10, 20), Some(1)),
        ]
    );
    let store = driver
        .window_store::<String, i64>("clicks-per-window")
        .unwrap();
    assert_eq!(store.fetch(&s("a"), 0), Some(2));
}

#[test]
fn hopping_windows_count_a_record_in_every_window_containing_it() {
    let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(5));
    let driver = windowed_counts(windows);
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 7); // windows [0,10) and [5,15)
    input.pipe_input_at(s("a"), s("x"), 12); // windows [5,15) and [10,20)
    assert_eq!(
        read_counts(&driver, ms(10)),
        [
            ((s("a"), 0, 10), Some(1)),
            ((s("a"), 5, 15), Some(1)),
            ((s("a"), 5, 15), Some(2)),
            ((s("a"), 10, 20), Some(1)),
        ]
    );
}

#[test]
fn records_later_than_the_grace_period_are_dropped() {
    let driver = windowed_counts(TimeWindows::of_size_and_grace(ms(10), ms(5)));
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 3);
    input.pipe_input_at(s("a"), s("x"), 14); // stream time 14: window [0,10) open until 15
    input.pipe_input_at(s("a"), s("x"), 8); // late but within grace: counted
    input.pipe_input_at(s("a"), s("x"), 15); // stream time 15: [0,10) closes
    input.pipe_input_at(s("a"), s("x"), 9); // beyond grace: dropped
    let counts = read_counts(&driver, ms(10));
    assert_eq!(
        counts,
        [
            ((s("a"), 0, 10), Some(1)),
            ((s("a"), 10, 20), Some(1)),
            ((s("a"), 0, 10), Some(2)),
            ((s("a"), 10, 20), Some(2)),
        ]
    );
}

#[test]
fn a_record_bridging_two_sessions_merges_them() {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(StringSerde, I64Serde))
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(ms(10)))
        .aggregate(
            || 0i64,
            |_, v, sum| sum + v,
            |_, a, b| a + b,
            Materialized::as_store("sessions"),
        )
        .to_stream()
        .to(
            "totals",
            Produced::with(SessionWindowedSerde::new(StringSerde), Nullable(I64Serde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("events", StringSerde, I64Serde);
    input.pipe_input_at(s("u"), 1, 0); // session [0,0]
    input.pipe_input_at(s("u"), 2, 20); // separate session [20,20]
    input.pipe_input_at(s("u"), 4, 10); // within 10 of both: merges into [0,20]
    let totals: Vec<((i64, i64), Option<i64>)> = driver
        .output_topic(
            "totals",
            SessionWindowedSerde::new(StringSerde),
            Nullable(I64Serde),
        )
        .read_key_values()
        .into_iter()
        .map(|(w, v)| ((w.window.start, w.window.end), v))
        .collect();
    assert_eq!(
        totals,
        [
            ((0, 0), Some(1)),
            ((20, 20), Some(2)),
            ((0, 0), None),
            ((20, 20), None),
            ((0, 20), Some(7)),
        ]
    );
    let sessions = driver.session_store::<String, i64>("sessions").unwrap();
    assert_eq!(sessions.fetch_session(&s("u"), 0, 20), Some(7));
}

#[test]
fn suppression_emits_each_window_once_when_it_closes() {
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(5));
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .windowed_by(windows)
        .count(Materialized::new())
        .suppress_until_window_closes()
        .to_stream()
        .to(
            "final",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, windows.size()),
                Nullable(I64Serde),
            ),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let output = driver.output_topic(
        "final",
        TimeWindowedSerde::new(StringSerde, ms(10)),
        Nullable(I64Serde),
    );
    for ts in [1, 4, 9, 12] {
        input.pipe_input_at(s("a"), s("x"), ts);
    }
    assert!(
        output.is_empty(),
        "window [0,10) is open until stream time 15"
    );
    input.pipe_input_at(s("a"), s("x"), 14); // window [10,20)
    input.pipe_input_at(s("b"), s("x"), 8); // late but within grace for [0,10)
    assert!(output.is_empty());
    input.pipe_input_at(s("c"), s("x"), 15); // stream time 15: [0,10) closes for every key
    let finals: Vec<(String, i64, Option<i64>)> = output
        .read_key_values()
        .into_iter()
        .map(|(w, c)| (w.key, w.window.start, c))
        .collect();
    assert_eq!(finals, [(s("a"), 0, Some(3)), (s("b"), 0, Some(1))]);
    input.pipe_input_at(s("a"), s("x"), 30); // closes [10,20)
    let finals: Vec<(String, i64, Option<i64>)> = output
        .read_key_values()
        .into_iter()
        .map(|(w, c)| (w.key, w.window.start, c))
        .collect();
    assert_eq!(finals, [(s("a"), 10, Some(2)), (s("c"), 10, Some(1))]);
}

#[test]
fn suppression_with_a_time_limit_emits_the_latest_update_per_key() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::new(),
        )
        .suppress_until_time_limit(ms(100))
        .to_stream()
        .to("settled", Produced::with(StringSerde, Nullable(I64Serde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("prices", StringSerde, Nullable(I64Serde));
    let output = driver.output_topic("settled", StringSerde, Nullable(I64Serde));
    input.pipe_input_at(s("tea"), Some(1), 0);
    input.pipe_input_at(s("tea"), Some(2), 50);
    input.pipe_input_at(s("jam"), Some(7), 60);
    assert!(output.is_empty());
    input.pipe_input_at(s("tea"), Some(3), 100); // tea's first update was at 0: due now
    assert_eq!(output.read_key_values(), [(s("tea"), Some(3))]);
    input.pipe_input_at(s("pie"), Some(1), 170); // jam due at 160
    assert_eq!(output.read_key_values(), [(s("jam"), Some(7))]);
}

#[test]
fn sliding_windows_hold_the_records_within_the_time_difference() {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .windowed_by_sliding(
            streams_core::dsl::SlidingWindows::with_time_difference_and_grace(ms(10), ms(5)),
        )
        .count(Materialized::as_store("sliding").with_retention(Duration::from_secs(60)))
        .to_stream()
        .to(
            "counts",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, ms(10)),
                Nullable(I64Serde),
            ),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let read = || read_counts(&driver, ms(10));
    input.pipe_input_at(s("a"), s("x"), 5);
    // The window ending at 5 starts at 0 at the earliest.
    assert_eq!(read(), [((s("a"), 0, 10), Some(1))]);
    input.pipe_input_at(s("a"), s("x"), 8);
    // The window right after 5 appears, holding 8; then [0,10] holds both (an early
    // record updates [0, d] last).
    assert_eq!(
        read(),
        [((s("a"), 6, 16), Some(1)), ((s("a"), 0, 10), Some(2))]
    );
    input.pipe_input_at(s("a"), s("x"), 20);
    // Only the window ending at 20 holds it: 8 + 1 + 10 = 19 < 20.
    assert_eq!(read(), [((s("a"), 10, 20), Some(1))]);
    input.pipe_input_at(s("a"), s("x"), 17); // out of order, within grace
                                             // Existing windows first, then the ones the record creates.
    assert_eq!(
        read(),
        [
            ((s("a"), 10, 20), Some(2)), // ending at 20: 17 and 20
            ((s("a"), 9, 19), Some(1)),  // right after 8, now holding 17
            ((s("a"), 7, 17), Some(2)),  // ending at 17: 8 and 17
            ((s("a"), 18, 28), Some(1)), // right after 17: holds 20
        ]
    );
    let store = driver.window_store::<String, i64>("sliding").unwrap();
    assert_eq!(store.fetch(&s("a"), 0), Some(2));
    input.pipe_input_at(s("a"), s("x"), 40); // closes everything before 25
    read();
    input.pipe_input_at(s("a"), s("x"), 6); // too late: dropped
    assert!(read().is_empty());
}

/// A windowed aggregation keeps each window's largest record timestamp with its value,
/// in one store, and logs it as Kafka's timestamped window stores do: the changelog
/// value is the 8-byte timestamp, then the serialized aggregate.
#[test]
fn windowed_aggregates_are_logged_with_their_largest_record_timestamp() {
    let driver = windowed_counts(TimeWindows::of_size_with_no_grace(ms(10)));
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 3);
    input.pipe_input_at(s("a"), s("y"), 7);
    input.pipe_input_at(s("a"), s("z"), 5);
    let logged: Vec<Option<Vec<u8>>> = driver
        .output_topic(
            "test-driver-clicks-per-window-changelog",
            streams_core::serde::BytesSerde,
            Nullable(streams_core::serde::BytesSerde),
        )
        .read_values();
    let stamped = |timestamp: i64, count: i64| {
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&count.to_be_bytes());
        Some(bytes)
    };
    // A late record in the window keeps the window's largest timestamp, 7.
    assert_eq!(logged, [stamped(3, 1), stamped(7, 2), stamped(7, 3)]);
    assert!(
        driver
            .window_store::<String, i64>("clicks-per-window-max-timestamps")
            .is_none(),
        "no companion store of timestamps"
    );
}
