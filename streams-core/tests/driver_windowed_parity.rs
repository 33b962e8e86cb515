//! Windowed aggregations and suppression on the test driver, record for record as Kafka
//! Streams emits them: which windows a record lands in, when windows close (at the
//! stream time each processor has observed), what a session merge emits, the order
//! and timestamps of sliding-window results, final-result emission on window close.

use std::time::Duration;

use streams_core::dsl::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::state::{SessionWindowedSerde, TimeWindowedSerde, Windowed};
use streams_core::test_driver::TopologyTestDriver;
use streams_core::{Consumed, Grouped, KStream, Materialized, Produced, StreamsBuilder};

fn s(v: &str) -> String {
    v.to_string()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A windowed result as read from the output: key, window start and end, value, timestamp.
type Out<V> = (String, i64, i64, Option<V>, i64);

fn flatten<V>(records: Vec<streams_core::Record<Windowed<String>, Option<V>>>) -> Vec<Out<V>> {
    records
        .into_iter()
        .map(|r| {
            let w = r.key;
            (w.key, w.window.start, w.window.end, r.value, r.timestamp)
        })
        .collect()
}

/// Reads time-windowed results of windows `size` wide.
fn read_time_windowed<V: 'static>(
    driver: &TopologyTestDriver,
    size: Duration,
    value: impl streams_core::serde::Serde<V>,
) -> Vec<Out<V>> {
    flatten(
        driver
            .output_topic(
                "out",
                TimeWindowedSerde::new(StringSerde, size),
                Nullable(value),
            )
            .read_records(),
    )
}

/// Reads session-windowed results.
fn read_sessions<V: 'static>(
    driver: &TopologyTestDriver,
    value: impl streams_core::serde::Serde<V>,
) -> Vec<Out<V>> {
    flatten(
        driver
            .output_topic(
                "out",
                SessionWindowedSerde::new(StringSerde),
                Nullable(value),
            )
            .read_records(),
    )
}

fn clicks(builder: &StreamsBuilder) -> KStream<String, String> {
    builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
}

fn time_counts(stream: KStream<String, String>, windows: TimeWindows, emit: EmitStrategy) {
    stream
        .group_by_key(Grouped::new())
        .windowed_by(windows)
        .emit_strategy(emit)
        .count(Materialized::new())
        .to_stream()
        .to(
            "out",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, windows.size()),
                Nullable(I64Serde),
            ),
        );
}

/// Session counts with the record cache off, so every update is seen, as Kafka Streams'
/// own session tests see them.
fn session_counts(stream: KStream<String, String>, windows: SessionWindows) {
    session_counts_cached(stream, windows, false);
}

fn session_counts_cached(stream: KStream<String, String>, windows: SessionWindows, caching: bool) {
    stream
        .group_by_key(Grouped::new())
        .windowed_by_session(windows)
        .count(Materialized::new().with_caching(caching))
        .to_stream()
        .to(
            "out",
            Produced::with(SessionWindowedSerde::new(StringSerde), Nullable(I64Serde)),
        );
}

fn sliding_counts(stream: KStream<String, String>, windows: SlidingWindows, emit: EmitStrategy) {
    stream
        .group_by_key(Grouped::new())
        .windowed_by_sliding(windows)
        .emit_strategy(emit)
        .count(Materialized::new())
        .to_stream()
        .to(
            "out",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, ms(10)),
                Nullable(I64Serde),
            ),
        );
}

#[test]
fn hopping_windows_whose_size_is_not_a_multiple_of_the_advance_include_the_earliest_window() {
    let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(4));
    let builder = StreamsBuilder::new();
    time_counts(clicks(&builder), windows, EmitStrategy::on_window_update());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 9);
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [
            (s("a"), 0, 10, Some(1), 9),
            (s("a"), 4, 14, Some(1), 9),
            (s("a"), 8, 18, Some(1), 9),
        ]
    );
}

#[test]
fn time_window_results_carry_the_largest_timestamp_of_the_window_records() {
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(10)).advance_by(ms(5));
    let builder = StreamsBuilder::new();
    time_counts(clicks(&builder), windows, EmitStrategy::on_window_update());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 7); // [0,10) and [5,15)
    input.pipe_input_at(s("a"), s("x"), 3); // out of order: [0,10) keeps 7
    input.pipe_input_at(s("a"), s("x"), 9); // [0,10) and [5,15) now at 9
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [
            (s("a"), 0, 10, Some(1), 7),
            (s("a"), 5, 15, Some(1), 7),
            (s("a"), 0, 10, Some(2), 7),
            (s("a"), 0, 10, Some(3), 9),
            (s("a"), 5, 15, Some(2), 9),
        ]
    );
}

#[test]
fn time_windows_close_at_the_stream_time_the_aggregation_observed() {
    let builder = StreamsBuilder::new();
    let all = clicks(&builder);
    // Records of another source of the same task never reach the aggregation.
    let other = builder.stream("other", Consumed::with(StringSerde, StringSerde));
    all.merge(&other)
        .to("merged", Produced::with(StringSerde, StringSerde));
    let kept = all.filter(|_, v| v != "skip");
    time_counts(
        kept,
        TimeWindows::of_size_with_no_grace(ms(10)),
        EmitStrategy::on_window_update(),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let other = driver.input_topic("other", StringSerde, StringSerde);
    other.pipe_input_at(s("a"), s("x"), 100); // the task's stream time: 100
    input.pipe_input_at(s("a"), s("skip"), 90); // filtered out before the aggregation
    input.pipe_input_at(s("a"), s("x"), 5); // the aggregation has seen nothing later
    input.pipe_input_at(s("a"), s("x"), 25);
    input.pipe_input_at(s("a"), s("x"), 12); // [10,20) closed at observed time 25
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [(s("a"), 0, 10, Some(1), 5), (s("a"), 20, 30, Some(1), 25)]
    );
}

#[test]
fn session_windows_close_at_stream_time_minus_grace_and_gap() {
    let builder = StreamsBuilder::new();
    session_counts(
        clicks(&builder),
        SessionWindows::with_inactivity_gap_and_no_grace(ms(10)),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("b"), s("x"), 15); // close time 15 - 0 - 10 = 5
    input.pipe_input_at(s("a"), s("x"), 8); // extends [0,0] to [0,8], ending after 5
    input.pipe_input_at(s("c"), s("x"), 4); // a session [4,4] would end before 5: dropped
    input.pipe_input_at(s("d"), s("x"), 5); // ends exactly at the close time: kept
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [
            (s("a"), 0, 0, Some(1), 0),
            (s("b"), 15, 15, Some(1), 15),
            (s("a"), 0, 0, None, 0),
            (s("a"), 0, 8, Some(2), 8),
            (s("d"), 5, 5, Some(1), 5),
        ]
    );
}

#[test]
fn session_windows_close_at_the_stream_time_the_aggregation_observed() {
    let builder = StreamsBuilder::new();
    session_counts(
        clicks(&builder).filter(|_, v| v != "skip"),
        SessionWindows::with_inactivity_gap_and_no_grace(ms(10)),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("skip"), 100);
    input.pipe_input_at(s("a"), s("x"), 0);
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [(s("a"), 0, 0, Some(1), 0)]
    );
}

#[test]
fn a_record_inside_a_session_deletes_and_re_emits_it_with_the_session_end_as_timestamp() {
    let builder = StreamsBuilder::new();
    session_counts(
        clicks(&builder),
        SessionWindows::with_inactivity_gap_and_no_grace(ms(10)),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("a"), s("x"), 5); // extends the session to [0,5]
    input.pipe_input_at(s("a"), s("x"), 3); // inside [0,5]
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [
            (s("a"), 0, 0, Some(1), 0),
            (s("a"), 0, 0, None, 0),
            (s("a"), 0, 5, Some(2), 5),
            (s("a"), 0, 5, None, 5),
            (s("a"), 0, 5, Some(3), 5),
        ]
    );
}

#[test]
fn with_the_record_cache_a_record_inside_a_session_emits_only_the_update() {
    // The session is removed and written again under the same key within one commit:
    // the cache keeps the write only, as Kafka Streams' caching session store does.
    let builder = StreamsBuilder::new();
    session_counts_cached(
        clicks(&builder),
        SessionWindows::with_inactivity_gap_and_no_grace(ms(10)),
        true,
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("a"), s("x"), 5);
    input.pipe_input_at(s("a"), s("x"), 3);
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [
            (s("a"), 0, 0, Some(1), 0),
            (s("a"), 0, 0, None, 0),
            (s("a"), 0, 5, Some(2), 5),
            (s("a"), 0, 5, Some(3), 5),
        ]
    );
}

#[test]
fn session_windows_reduce_and_merge_sessions_with_the_reducer() {
    let builder = StreamsBuilder::new();
    clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(ms(10)))
        .reduce(|a, b| format!("{a}{b}"), Materialized::as_store("sessions"))
        .to_stream()
        .to(
            "out",
            Produced::with(
                SessionWindowedSerde::new(StringSerde),
                Nullable(StringSerde),
            ),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("a"), s("y"), 20);
    input.pipe_input_at(s("a"), s("z"), 10); // bridges both sessions
    assert_eq!(
        read_sessions(&driver, StringSerde),
        [
            (s("a"), 0, 0, Some(s("x")), 0),
            (s("a"), 20, 20, Some(s("y")), 20),
            (s("a"), 0, 0, None, 0),
            (s("a"), 20, 20, None, 20),
            (s("a"), 0, 20, Some(s("xyz")), 20),
        ]
    );
    let store = driver.session_store::<String, String>("sessions").unwrap();
    assert_eq!(store.fetch_session(&s("a"), 0, 20), Some(s("xyz")));
}

#[test]
fn sliding_windows_take_a_record_into_the_windows_still_open_when_its_left_window_closed() {
    let builder = StreamsBuilder::new();
    sliding_counts(
        clicks(&builder),
        SlidingWindows::with_time_difference_and_no_grace(ms(10)),
        EmitStrategy::on_window_update(),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 20);
    input.pipe_input_at(s("b"), s("x"), 30); // close time 30
                                             // [12,22] has closed, but 20's right window [21,31] is open and takes the record.
    input.pipe_input_at(s("a"), s("x"), 22);
    // 19 + 10 < 30: every window that could hold it has closed.
    input.pipe_input_at(s("a"), s("x"), 19);
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [
            (s("a"), 10, 20, Some(1), 20),
            (s("b"), 20, 30, Some(1), 30),
            (s("a"), 21, 31, Some(1), 22),
        ]
    );
}

#[test]
fn sliding_windows_close_at_the_stream_time_the_aggregation_observed() {
    let builder = StreamsBuilder::new();
    sliding_counts(
        clicks(&builder).filter(|_, v| v != "skip"),
        SlidingWindows::with_time_difference_and_no_grace(ms(10)),
        EmitStrategy::on_window_update(),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("skip"), 100);
    input.pipe_input_at(s("a"), s("x"), 15);
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [(s("a"), 5, 15, Some(1), 15)]
    );
}

#[test]
fn sliding_windows_fold_records_in_arrival_order_and_carry_their_latest_timestamp() {
    let builder = StreamsBuilder::new();
    clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by_sliding(SlidingWindows::with_time_difference_and_grace(
            ms(10),
            ms(100),
        ))
        .reduce(|a, b| format!("{a}{b}"), Materialized::new())
        .to_stream()
        .to(
            "out",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, ms(10)),
                Nullable(StringSerde),
            ),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let read = || read_time_windowed(&driver, ms(10), StringSerde);
    input.pipe_input_at(s("a"), s("A"), 10);
    assert_eq!(read(), [(s("a"), 0, 10, Some(s("A")), 10)]);
    // Earlier than A but after it: A's window folds it in after A; the window right
    // after B starts as a copy of what follows B.
    input.pipe_input_at(s("a"), s("B"), 5);
    assert_eq!(
        read(),
        [
            (s("a"), 6, 16, Some(s("A")), 10),
            (s("a"), 0, 10, Some(s("AB")), 10),
        ]
    );
    // Existing windows first (latest start first), then the previous record's right
    // window and the record's own left window.
    input.pipe_input_at(s("a"), s("C"), 12);
    assert_eq!(
        read(),
        [
            (s("a"), 6, 16, Some(s("AC")), 12),
            (s("a"), 11, 21, Some(s("C")), 12),
            (s("a"), 2, 12, Some(s("ABC")), 12),
        ]
    );
}

#[test]
fn suppression_closes_windows_at_the_stream_time_it_observed() {
    let builder = StreamsBuilder::new();
    clicks(&builder)
        .filter(|_, v| v != "skip")
        .group_by_key(Grouped::new())
        .count(Materialized::new())
        .suppress_until_time_limit(ms(10))
        .to_stream()
        .to("out", Produced::with(StringSerde, Nullable(I64Serde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, Nullable(I64Serde));
    input.pipe_input_at(s("a"), s("x"), 0); // due at 10
    input.pipe_input_at(s("a"), s("skip"), 100); // never reaches the suppression
    input.pipe_input_at(s("b"), s("x"), 1); // due at 11; observed time 1
    assert!(output.is_empty());
    input.pipe_input_at(s("c"), s("x"), 10);
    let emitted: Vec<(String, Option<i64>, i64)> = output
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(emitted, [(s("a"), Some(1), 0)]);
}

#[test]
fn suppression_until_window_closes_drops_the_tombstones_of_merged_sessions() {
    let builder = StreamsBuilder::new();
    clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            ms(10),
            ms(20),
        ))
        .count(Materialized::new())
        .suppress_until_window_closes()
        .to_stream()
        .to(
            "out",
            Produced::with(SessionWindowedSerde::new(StringSerde), Nullable(I64Serde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("a"), s("x"), 20);
    input.pipe_input_at(s("a"), s("x"), 10); // merges [0,0] and [20,20] into [0,20]
    assert!(read_sessions(&driver, I64Serde).is_empty());
    input.pipe_input_at(s("b"), s("x"), 100); // every session of a has closed
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [(s("a"), 0, 20, Some(3), 20)]
    );
}

#[test]
fn time_windows_emit_only_final_results_on_window_close() {
    let builder = StreamsBuilder::new();
    time_counts(
        clicks(&builder),
        TimeWindows::of_size_and_grace(ms(10), ms(5)),
        EmitStrategy::on_window_close(),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let read = || read_time_windowed(&driver, ms(10), I64Serde);
    for (key, ts) in [("a", 1), ("a", 4), ("a", 12), ("b", 8)] {
        input.pipe_input_at(s(key), s("x"), ts);
    }
    assert!(read().is_empty(), "[0,10) is open until stream time 15");
    input.pipe_input_at(s("a"), s("x"), 15); // [0,10) closes
                                             // Each carries the largest timestamp among its window's records.
    assert_eq!(
        read(),
        [(s("a"), 0, 10, Some(2), 4), (s("b"), 0, 10, Some(1), 8)]
    );
    input.pipe_input_at(s("a"), s("x"), 16); // no further window closes
    assert!(read().is_empty());
    input.pipe_input_at(s("b"), s("x"), 30); // [10,20) closes
    assert_eq!(read(), [(s("a"), 10, 20, Some(3), 16)]);
}

#[test]
fn sliding_windows_emit_only_final_results_on_window_close() {
    let builder = StreamsBuilder::new();
    sliding_counts(
        clicks(&builder),
        SlidingWindows::with_time_difference_and_no_grace(ms(10)),
        EmitStrategy::on_window_close(),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 5); // [0,10]
    input.pipe_input_at(s("a"), s("x"), 8); // [0,10] again and 5's right window [6,16]
    assert!(read_time_windowed(&driver, ms(10), I64Serde).is_empty());
    input.pipe_input_at(s("a"), s("x"), 30); // both end before 30: final
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [(s("a"), 0, 10, Some(2), 8), (s("a"), 6, 16, Some(1), 8)]
    );
    input.pipe_input_at(s("a"), s("x"), 41); // [20,30] ends before 41
    assert_eq!(
        read_time_windowed(&driver, ms(10), I64Serde),
        [(s("a"), 20, 30, Some(1), 30)]
    );
}

#[test]
fn session_windows_emit_only_final_results_on_window_close() {
    let builder = StreamsBuilder::new();
    clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(ms(10)))
        .emit_strategy(EmitStrategy::on_window_close())
        .count(Materialized::new())
        .to_stream()
        .to(
            "out",
            Produced::with(SessionWindowedSerde::new(StringSerde), Nullable(I64Serde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at(s("a"), s("x"), 0);
    input.pipe_input_at(s("a"), s("x"), 5); // [0,5]
    input.pipe_input_at(s("b"), s("x"), 12); // close time 2
    input.pipe_input_at(s("a"), s("x"), 14); // merges into [0,14]: no deletes go out
    assert!(read_sessions(&driver, I64Serde).is_empty());
    input.pipe_input_at(s("c"), s("x"), 30); // close time 20: both sessions are final
    assert_eq!(
        read_sessions(&driver, I64Serde),
        [(s("b"), 12, 12, Some(1), 12), (s("a"), 0, 14, Some(3), 14)]
    );
    input.pipe_input_at(s("d"), s("x"), 31);
    assert!(read_sessions(&driver, I64Serde).is_empty());
}

/// Kafka Streams' sliding-window test topology: difference 10, the given grace, values
/// appended to the initial "0" as "agg+value" (or reduced as "a+b").
fn sliding_strings(grace: u64, emit: EmitStrategy, reduce: bool) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let windowed = clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by_sliding(SlidingWindows::with_time_difference_and_grace(
            ms(10),
            ms(grace),
        ))
        .emit_strategy(emit);
    let table = if reduce {
        windowed.reduce(|a, b| format!("{a}+{b}"), Materialized::new())
    } else {
        windowed.aggregate(
            || s("0"),
            |_, v, agg: String| format!("{agg}+{v}"),
            Materialized::new(),
        )
    };
    table.to_stream().to(
        "out",
        Produced::with(
            TimeWindowedSerde::new(StringSerde, ms(10)),
            Nullable(StringSerde),
        ),
    );
    TopologyTestDriver::new(builder.build().unwrap())
}

/// Pipes `(key, value, timestamp)` records and returns every result as
/// `(key, start, end, value, timestamp)`, sorted by key and window start (results of
/// one window keep their order).
fn run_sliding(
    driver: &TopologyTestDriver,
    records: &[(&str, &str, i64)],
) -> Vec<(String, i64, i64, String, i64)> {
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for (k, v, ts) in records {
        input.pipe_input_at(s(k), s(v), *ts);
    }
    let mut out: Vec<_> = read_time_windowed(driver, ms(10), StringSerde)
        .into_iter()
        .map(|(k, start, end, v, ts)| (k, start, end, v.expect("no deletes"), ts))
        .collect();
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

fn w(key: &str, start: i64, value: &str, ts: i64) -> (String, i64, i64, String, i64) {
    (s(key), start, start + 10, s(value), ts)
}

const SMALL_INPUT: [(&str, &str, i64); 7] = [
    ("A", "1", 10),
    ("A", "2", 10),
    ("A", "3", 14),
    ("A", "4", 15),
    ("A", "5", 20),
    ("A", "6", 22),
    ("A", "7", 30),
];

#[test]
fn kafka_sliding_aggregate_small_input() {
    let driver = sliding_strings(5, EmitStrategy::on_window_update(), false);
    assert_eq!(
        run_sliding(&driver, &SMALL_INPUT),
        [
            w("A", 0, "0+1", 10),
            w("A", 0, "0+1+2", 10),
            w("A", 4, "0+1+2+3", 14),
            w("A", 5, "0+1+2+3+4", 15),
            w("A", 10, "0+1+2+3+4+5", 20),
            w("A", 11, "0+3", 14),
            w("A", 11, "0+3+4", 15),
            w("A", 11, "0+3+4+5", 20),
            w("A", 12, "0+3+4+5+6", 22),
            w("A", 15, "0+4", 15),
            w("A", 15, "0+4+5", 20),
            w("A", 15, "0+4+5+6", 22),
            w("A", 16, "0+5", 20),
            w("A", 16, "0+5+6", 22),
            w("A", 20, "0+5+6+7", 30),
            w("A", 21, "0+6", 22),
            w("A", 21, "0+6+7", 30),
            w("A", 23, "0+7", 30),
        ]
    );
}

#[test]
fn kafka_sliding_aggregate_small_input_on_window_close() {
    let driver = sliding_strings(5, EmitStrategy::on_window_close(), false);
    assert_eq!(
        run_sliding(&driver, &SMALL_INPUT),
        [
            w("A", 0, "0+1+2", 10),
            w("A", 4, "0+1+2+3", 14),
            w("A", 5, "0+1+2+3+4", 15),
            w("A", 10, "0+1+2+3+4+5", 20),
            w("A", 11, "0+3+4+5", 20),
            w("A", 12, "0+3+4+5+6", 22),
        ]
    );
}

const REDUCE_INPUT: [(&str, &str, i64); 6] = [
    ("A", "1", 10),
    ("A", "2", 14),
    ("A", "3", 15),
    ("A", "4", 22),
    ("A", "5", 26),
    ("A", "6", 30),
];

#[test]
fn kafka_sliding_reduce_small_input() {
    let driver = sliding_strings(5, EmitStrategy::on_window_update(), true);
    assert_eq!(
        run_sliding(&driver, &REDUCE_INPUT),
        [
            w("A", 0, "1", 10),
            w("A", 4, "1+2", 14),
            w("A", 5, "1+2+3", 15),
            w("A", 11, "2", 14),
            w("A", 11, "2+3", 15),
            w("A", 12, "2+3+4", 22),
            w("A", 15, "3", 15),
            w("A", 15, "3+4", 22),
            w("A", 16, "4", 22),
            w("A", 16, "4+5", 26),
            w("A", 20, "4+5+6", 30),
            w("A", 23, "5", 26),
            w("A", 23, "5+6", 30),
            w("A", 27, "6", 30),
        ]
    );
}

#[test]
fn kafka_sliding_reduce_small_input_on_window_close() {
    let driver = sliding_strings(5, EmitStrategy::on_window_close(), true);
    assert_eq!(
        run_sliding(&driver, &REDUCE_INPUT),
        [
            w("A", 0, "1", 10),
            w("A", 4, "1+2", 14),
            w("A", 5, "1+2+3", 15),
            w("A", 11, "2+3", 15),
            w("A", 12, "2+3+4", 22),
        ]
    );
}

/// Out-of-order records of four keys.
const LARGE_INPUT: [(&str, &str, i64); 19] = [
    ("A", "1", 10),
    ("A", "2", 20),
    ("A", "3", 22),
    ("A", "4", 15),
    ("B", "1", 12),
    ("B", "2", 13),
    ("B", "3", 18),
    ("B", "4", 19),
    ("B", "5", 25),
    ("B", "6", 14),
    ("C", "1", 11),
    ("C", "2", 15),
    ("C", "3", 16),
    ("C", "4", 21),
    ("C", "5", 23),
    ("D", "4", 11),
    ("D", "2", 12),
    ("D", "3", 29),
    ("D", "5", 16),
];

#[test]
fn kafka_sliding_aggregate_large_out_of_order_input() {
    let driver = sliding_strings(50, EmitStrategy::on_window_update(), false);
    assert_eq!(
        run_sliding(&driver, &LARGE_INPUT),
        [
            w("A", 0, "0+1", 10),
            w("A", 5, "0+1+4", 15),
            w("A", 10, "0+1+2", 20),
            w("A", 10, "0+1+2+4", 20),
            w("A", 11, "0+2", 20),
            w("A", 11, "0+2+4", 20),
            w("A", 12, "0+2+3", 22),
            w("A", 12, "0+2+3+4", 22),
            w("A", 16, "0+2+3", 22),
            w("A", 21, "0+3", 22),
            w("B", 2, "0+1", 12),
            w("B", 3, "0+1+2", 13),
            w("B", 4, "0+1+2+6", 14),
            w("B", 8, "0+1+2+3", 18),
            w("B", 8, "0+1+2+3+6", 18),
            w("B", 9, "0+1+2+3+4", 19),
            w("B", 9, "0+1+2+3+4+6", 19),
            w("B", 13, "0+2", 13),
            w("B", 13, "0+2+3", 18),
            w("B", 13, "0+2+3+4", 19),
            w("B", 13, "0+2+3+4+6", 19),
            w("B", 14, "0+3", 18),
            w("B", 14, "0+3+4", 19),
            w("B", 14, "0+3+4+6", 19),
            w("B", 15, "0+3+4+5", 25),
            w("B", 19, "0+4", 19),
            w("B", 19, "0+4+5", 25),
            w("B", 20, "0+5", 25),
            w("C", 1, "0+1", 11),
            w("C", 5, "0+1+2", 15),
            w("C", 6, "0+1+2+3", 16),
            w("C", 11, "0+1+2+3+4", 21),
            w("C", 12, "0+2", 15),
            w("C", 12, "0+2+3", 16),
            w("C", 12, "0+2+3+4", 21),
            w("C", 13, "0+2+3+4+5", 23),
            w("C", 16, "0+3", 16),
            w("C", 16, "0+3+4", 21),
            w("C", 16, "0+3+4+5", 23),
            w("C", 17, "0+4", 21),
            w("C", 17, "0+4+5", 23),
            w("C", 22, "0+5", 23),
            w("D", 1, "0+4", 11),
            w("D", 2, "0+4+2", 12),
            w("D", 6, "0+4+2+5", 16),
            w("D", 12, "0+2", 12),
            w("D", 12, "0+2+5", 16),
            w("D", 13, "0+5", 16),
            w("D", 19, "0+3", 29),
        ]
    );
}

#[test]
fn kafka_sliding_aggregate_large_out_of_order_input_on_window_close() {
    let driver = sliding_strings(10, EmitStrategy::on_window_close(), false);
    assert_eq!(
        run_sliding(&driver, &LARGE_INPUT),
        [
            w("A", 0, "0+1", 10),
            w("A", 5, "0+1+4", 15),
            w("B", 2, "0+1", 12),
            w("B", 3, "0+1+2", 13),
            w("B", 8, "0+1+2+3+6", 18),
            w("C", 5, "0+2", 15),
            w("C", 6, "0+2+3", 16),
        ]
    );
}

#[test]
fn kafka_hopping_window_aggregate_basic() {
    let builder = StreamsBuilder::new();
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(100)).advance_by(ms(5));
    clicks(&builder)
        .group_by_key(Grouped::new())
        .windowed_by(windows)
        .aggregate(
            || s("0"),
            |_, v, agg: String| format!("{agg}+{v}"),
            Materialized::new(),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, ms(10)),
                Nullable(StringSerde),
            ),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let records = [
        ("A", "1", 0),
        ("B", "2", 1),
        ("C", "3", 2),
        ("D", "4", 3),
        ("A", "1", 4),
        ("A", "1", 5),
        ("B", "2", 6),
        ("D", "4", 7),
        ("B", "2", 8),
        ("C", "3", 9),
        ("A", "1", 10),
        ("B", "2", 11),
        ("D", "4", 12),
        ("B", "2", 13),
        ("C", "3", 14),
        ("B", "1", 3),
        ("B", "2", 2),
        ("B", "3", 9),
    ];
    for (k, v, ts) in records {
        input.pipe_input_at(s(k), s(v), ts);
    }
    let out: Vec<_> = read_time_windowed(&driver, ms(10), StringSerde)
        .into_iter()
        .map(|(k, start, end, v, ts)| (k, start, end, v.unwrap(), ts))
        .collect();
    assert_eq!(
        out,
        [
            w("A", 0, "0+1", 0),
            w("B", 0, "0+2", 1),
            w("C", 0, "0+3", 2),
            w("D", 0, "0+4", 3),
            w("A", 0, "0+1+1", 4),
            w("A", 0, "0+1+1+1", 5),
            w("A", 5, "0+1", 5),
            w("B", 0, "0+2+2", 6),
            w("B", 5, "0+2", 6),
            w("D", 0, "0+4+4", 7),
            w("D", 5, "0+4", 7),
            w("B", 0, "0+2+2+2", 8),
            w("B", 5, "0+2+2", 8),
            w("C", 0, "0+3+3", 9),
            w("C", 5, "0+3", 9),
            w("A", 5, "0+1+1", 10),
            w("A", 10, "0+1", 10),
            w("B", 5, "0+2+2+2", 11),
            w("B", 10, "0+2", 11),
            w("D", 5, "0+4+4", 12),
            w("D", 10, "0+4", 12),
            w("B", 5, "0+2+2+2+2", 13),
            w("B", 10, "0+2+2", 13),
            w("C", 5, "0+3+3", 14),
            w("C", 10, "0+3", 14),
            w("B", 0, "0+2+2+2+1", 8),
            w("B", 0, "0+2+2+2+1+2", 8),
            w("B", 0, "0+2+2+2+1+2+3", 9),
            w("B", 5, "0+2+2+2+2+3", 13),
        ]
    );
}

/// Kafka Streams' suppression scenarios: a windowed count written raw to "raw" and
/// through `suppress_until_window_closes` to "suppressed", keys shown as Kafka prints
/// them (`[key@start/end]`).
mod suppress_scenarios {
    use super::*;
    use streams_core::KTable;

    type Shown = (String, Option<i64>, i64);

    fn outputs<KS: Fn() -> S, S: streams_core::serde::Serde<Windowed<String>> + 'static>(
        counts: KTable<Windowed<String>, i64>,
        key_serde: KS,
    ) {
        counts
            .to_stream()
            .to("raw", Produced::with(key_serde(), Nullable(I64Serde)));
        counts.suppress_until_window_closes().to_stream().to(
            "suppressed",
            Produced::with(key_serde(), Nullable(I64Serde)),
        );
    }

    fn drain<S: streams_core::serde::Serde<Windowed<String>> + 'static>(
        driver: &TopologyTestDriver,
        topic: &str,
        key_serde: S,
    ) -> Vec<Shown> {
        driver
            .output_topic(topic, key_serde, Nullable(I64Serde))
            .read_records()
            .into_iter()
            .map(|r| {
                let w = &r.key.window;
                (
                    format!("[{}@{}/{}]", r.key.key, w.start, w.end),
                    r.value,
                    r.timestamp,
                )
            })
            .collect()
    }

    fn shown(key: &str, value: Option<i64>, ts: i64) -> Shown {
        (s(key), value, ts)
    }

    fn pipe(driver: &TopologyTestDriver, records: &[(&str, i64)]) {
        let input = driver.input_topic("input", StringSerde, StringSerde);
        for (key, ts) in records {
            input.pipe_input_at(s(key), s("v1"), *ts);
        }
    }

    fn time_windows(size: u64, grace: u64) -> TopologyTestDriver {
        let builder = StreamsBuilder::new();
        let counts = builder
            .stream("input", Consumed::with(StringSerde, StringSerde))
            .group_by_key(Grouped::new())
            .windowed_by(TimeWindows::of_size_and_grace(ms(size), ms(grace)))
            .count(Materialized::new());
        outputs(counts, || TimeWindowedSerde::new(StringSerde, ms(size)));
        TopologyTestDriver::new(builder.build().unwrap())
    }

    #[test]
    fn final_results_for_time_windows() {
        let driver = time_windows(2, 1);
        let serde = || TimeWindowedSerde::new(StringSerde, ms(2));
        pipe(
            &driver,
            &[
                ("k1", 0),
                ("k1", 1),
                ("k1", 2),
                ("k1", 1),
                ("k1", 0),
                ("k1", 5),
            ],
        );
        pipe(&driver, &[("k1", 0)]); // beyond the grace period: dropped
        assert_eq!(
            drain(&driver, "raw", serde()),
            [
                shown("[k1@0/2]", Some(1), 0),
                shown("[k1@0/2]", Some(2), 1),
                shown("[k1@2/4]", Some(1), 2),
                shown("[k1@0/2]", Some(3), 1),
                shown("[k1@0/2]", Some(4), 1),
                shown("[k1@4/6]", Some(1), 5),
            ]
        );
        assert_eq!(
            drain(&driver, "suppressed", serde()),
            [shown("[k1@0/2]", Some(4), 1), shown("[k1@2/4]", Some(1), 2)]
        );
    }

    #[test]
    fn final_results_for_time_windows_with_a_large_jump() {
        let driver = time_windows(2, 2);
        let serde = || TimeWindowedSerde::new(StringSerde, ms(2));
        pipe(
            &driver,
            &[
                ("k1", 0),
                ("k1", 1),
                ("k1", 2),
                ("k1", 0),
                ("k1", 3),
                ("k1", 0),
                ("k1", 4),
                ("k1", 0), // [0,2) closed at stream time 4: dropped
                ("k1", 30),
            ],
        );
        assert_eq!(
            drain(&driver, "raw", serde()),
            [
                shown("[k1@0/2]", Some(1), 0),
                shown("[k1@0/2]", Some(2), 1),
                shown("[k1@2/4]", Some(1), 2),
                shown("[k1@0/2]", Some(3), 1),
                shown("[k1@2/4]", Some(2), 3),
                shown("[k1@0/2]", Some(4), 1),
                shown("[k1@4/6]", Some(1), 4),
                shown("[k1@30/32]", Some(1), 30),
            ]
        );
        assert_eq!(
            drain(&driver, "suppressed", serde()),
            [
                shown("[k1@0/2]", Some(4), 1),
                shown("[k1@2/4]", Some(2), 3),
                shown("[k1@4/6]", Some(1), 4),
            ]
        );
    }

    #[test]
    fn final_results_for_sliding_windows() {
        let builder = StreamsBuilder::new();
        let counts = builder
            .stream("input", Consumed::with(StringSerde, StringSerde))
            .group_by_key(Grouped::new())
            .windowed_by_sliding(SlidingWindows::with_time_difference_and_grace(
                ms(5),
                ms(15),
            ))
            .count(Materialized::new());
        let serde = || TimeWindowedSerde::new(StringSerde, ms(5));
        outputs(counts, serde);
        let driver = TopologyTestDriver::new(builder.build().unwrap());
        pipe(
            &driver,
            &[
                ("k1", 10),
                ("k1", 11),
                ("k1", 10),
                ("k1", 13),
                ("k1", 10),
                ("k1", 24),
                ("k1", 5),
                ("k1", 7),
                ("k1", 90), // advances stream time to flush every window
            ],
        );
        let mut raw = drain(&driver, "raw", serde());
        raw.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        assert_eq!(
            raw,
            [
                shown("[k1@11/16]", Some(1), 11),
                shown("[k1@11/16]", Some(2), 13),
                shown("[k1@12/17]", Some(1), 13),
                shown("[k1@19/24]", Some(1), 24),
                shown("[k1@5/10]", Some(1), 10),
                shown("[k1@5/10]", Some(2), 10),
                shown("[k1@5/10]", Some(3), 10),
                shown("[k1@5/10]", Some(4), 10),
                shown("[k1@5/10]", Some(5), 10),
                shown("[k1@6/11]", Some(2), 11),
                shown("[k1@6/11]", Some(3), 11),
                shown("[k1@6/11]", Some(4), 11),
                shown("[k1@6/11]", Some(5), 11),
                shown("[k1@8/13]", Some(4), 13),
                shown("[k1@8/13]", Some(5), 13),
                shown("[k1@85/90]", Some(1), 90),
            ]
        );
        assert_eq!(
            drain(&driver, "suppressed", serde()),
            [
                shown("[k1@5/10]", Some(5), 10),
                shown("[k1@6/11]", Some(5), 11),
                shown("[k1@8/13]", Some(5), 13),
                shown("[k1@11/16]", Some(2), 13),
                shown("[k1@12/17]", Some(1), 13),
                shown("[k1@19/24]", Some(1), 24),
            ]
        );
    }

    #[test]
    fn final_results_for_session_windows() {
        let builder = StreamsBuilder::new();
        let counts = builder
            .stream("input", Consumed::with(StringSerde, StringSerde))
            .group_by_key(Grouped::new())
            .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(ms(5)))
            // As in Kafka's scenario: without the record cache, every update is seen.
            .count(Materialized::new().with_caching(false));
        outputs(counts, || SessionWindowedSerde::new(StringSerde));
        let driver = TopologyTestDriver::new(builder.build().unwrap());
        pipe(
            &driver,
            &[
                ("k1", 0),
                ("k1", 5),
                ("k1", 1),  // disordered but admitted: [0,5] is open
                ("k2", 11), // another key advances stream time
                ("k1", 5),  // [0,5] has closed: dropped
                ("k1", 30),
            ],
        );
        let serde = || SessionWindowedSerde::new(StringSerde);
        assert_eq!(
            drain(&driver, "raw", serde()),
            [
                shown("[k1@0/0]", Some(1), 0),
                shown("[k1@0/0]", None, 0),
                shown("[k1@0/5]", Some(2), 5),
                shown("[k1@0/5]", None, 5),
                shown("[k1@0/5]", Some(3), 5),
                shown("[k2@11/11]", Some(1), 11),
                shown("[k1@30/30]", Some(1), 30),
            ]
        );
        assert_eq!(
            drain(&driver, "suppressed", serde()),
            [
                shown("[k1@0/5]", Some(3), 5),
                shown("[k2@11/11]", Some(1), 11)
            ]
        );
    }
}
