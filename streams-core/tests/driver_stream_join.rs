//! Windowed stream-stream joins on the test driver: inner, left and outer joins, with
//! the records Kafka Streams emits for them (keys, values and timestamps).

use std::time::Duration;

use streams_core::dsl::JoinWindows;
use streams_core::serde::StringSerde;
use streams_core::test_driver::TopologyTestDriver;
use streams_core::{Consumed, Produced, StreamsBuilder};

fn s(v: &str) -> String {
    v.to_string()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn join_driver(kind: &str) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let orders = builder.stream("orders", Consumed::with(StringSerde, StringSerde));
    let payments = builder.stream("payments", Consumed::with(StringSerde, StringSerde));
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(10));
    let joined = match kind {
        "inner" => orders.join_stream(&payments, |o, p| format!("{o}+{p}"), windows),
        "left" => orders.left_join_stream(
            &payments,
            |o, p| format!("{o}+{}", p.map_or("-", String::as_str)),
            windows,
        ),
        _ => orders.outer_join_stream(
            &payments,
            |o, p| {
                format!(
                    "{}+{}",
                    o.map_or("-", String::as_str),
                    p.map_or("-", String::as_str)
                )
            },
            windows,
        ),
    };
    joined.to("joined", Produced::with(StringSerde, StringSerde));
    TopologyTestDriver::new(builder.build().unwrap())
}

fn run_join(kind: &str) -> Vec<(String, i64)> {
    let driver = join_driver(kind);
    let orders = driver.input_topic("orders", StringSerde, StringSerde);
    let payments = driver.input_topic("payments", StringSerde, StringSerde);
    let read = || -> Vec<(String, i64)> {
        driver
            .output_topic("joined", StringSerde, StringSerde)
            .read_records()
            .into_iter()
            .map(|r| (r.value, r.timestamp))
            .collect()
    };
    orders.pipe_input_at(s("k"), s("o1"), 100); // no payment yet: held, not emitted
    payments.pipe_input_at(s("k"), s("p1"), 105); // within 10 of o1
    payments.pipe_input_at(s("k"), s("p2"), 130); // no order near
    orders.pipe_input_at(s("k"), s("o2"), 125); // within 10 of p2 (later side)
    orders.pipe_input_at(s("x"), s("o3"), 131); // other key: no payment
    let mut out = read();
    // Stream time 200 closes every window above (o3's at 141): unmatched records go out.
    payments.pipe_input_at(s("z"), s("p3"), 200);
    out.push((s("--- stream time 200"), 200));
    out.extend(read());
    out
}

#[test]
fn stream_stream_inner_join_pairs_records_within_the_window() {
    assert_eq!(
        run_join("inner"),
        [
            (s("o1+p1"), 105),
            (s("o2+p2"), 130),
            (s("--- stream time 200"), 200)
        ]
    );
}

#[test]
fn left_and_outer_joins_emit_unmatched_records_only_when_their_window_closes() {
    assert_eq!(
        run_join("left"),
        [
            (s("o1+p1"), 105),
            (s("o2+p2"), 130),
            (s("--- stream time 200"), 200),
            (s("o3+-"), 131)
        ]
    );
    // p2 was matched by o2 before its window closed; p3's window is still open.
    assert_eq!(
        run_join("outer"),
        [
            (s("o1+p1"), 105),
            (s("o2+p2"), 130),
            (s("--- stream time 200"), 200),
            (s("o3+-"), 131)
        ]
    );
}

/// The join kinds, with Kafka's `toString` joiner: `left+right`, `null` for a missing
/// side.
#[derive(Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Outer,
}

fn show(v: Option<&String>) -> &str {
    v.map_or("null", String::as_str)
}

/// Joins topic `left` with topic `right` (string keys and values) into `joined`; left
/// records whose value is `skip` are filtered out before the join.
fn kafka_join(kind: Kind, windows: JoinWindows) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let left = builder
        .stream("left", Consumed::with(StringSerde, StringSerde))
        .filter(|_, v| v != "skip");
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    let joined = match kind {
        Kind::Inner => left.join_stream(&right, |l, r| format!("{l}+{r}"), windows),
        Kind::Left => left.left_join_stream(&right, |l, r| format!("{l}+{}", show(r)), windows),
        Kind::Outer => {
            left.outer_join_stream(&right, |l, r| format!("{}+{}", show(l), show(r)), windows)
        }
    };
    joined.to("joined", Produced::with(StringSerde, StringSerde));
    TopologyTestDriver::new(builder.build().unwrap())
}

struct Pipes<'a> {
    driver: &'a TopologyTestDriver,
}

impl Pipes<'_> {
    fn left(&self, key: &str, value: &str, ts: i64) {
        self.driver
            .input_topic("left", StringSerde, StringSerde)
            .pipe_input_at(s(key), s(value), ts);
    }

    fn right(&self, key: &str, value: &str, ts: i64) {
        self.driver
            .input_topic("right", StringSerde, StringSerde)
            .pipe_input_at(s(key), s(value), ts);
    }

    /// Every record emitted since the last read: key, value, timestamp.
    fn read(&self) -> Vec<(String, String, i64)> {
        self.driver
            .output_topic("joined", StringSerde, StringSerde)
            .read_records()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect()
    }
}

fn kvt(key: &str, value: &str, ts: i64) -> (String, String, i64) {
    (s(key), s(value), ts)
}

#[test]
fn a_late_record_still_joins_what_the_other_window_store_retains() {
    let driver = kafka_join(
        Kind::Inner,
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.left("k", "o1", 100);
    pipes.right("z", "far", 200); // the join's stream time is 200
    assert!(pipes.read().is_empty());
    // 105 + 10 + 10 < 200, but the left store still holds o1 (retention 20 behind 100).
    pipes.right("k", "p1", 105);
    assert_eq!(pipes.read(), [kvt("k", "o1+p1", 105)]);
}

#[test]
fn a_late_unmatched_record_of_a_left_join_is_emitted_at_once() {
    let driver = kafka_join(
        Kind::Left,
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.left("k", "o1", 100);
    pipes.right("z", "far", 200);
    // o1's window closed at stream time 200.
    assert_eq!(pipes.read(), [kvt("k", "o1+null", 100)]);
    // A late right record still joins o1, which the left store retains (20 behind 100).
    pipes.right("k", "p1", 105);
    assert_eq!(pipes.read(), [kvt("k", "o1+p1", 105)]);
    // 150 + 10 < 200: no right record can still fall in its window.
    pipes.left("x", "o2", 150);
    assert_eq!(pipes.read(), [kvt("x", "o2+null", 150)]);
    // The left store has moved to 150: o1 has expired, a late p2 finds nothing.
    pipes.right("k", "p2", 106);
    assert!(pipes.read().is_empty());
}

#[test]
fn the_join_keeps_its_own_stream_time() {
    let driver = kafka_join(
        Kind::Left,
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.left("k", "o1", 100);
    // Filtered out before the join: the task's stream time moves to 500, the join's not.
    pipes.left("q", "skip", 500);
    pipes.right("k", "p1", 105);
    assert_eq!(pipes.read(), [kvt("k", "o1+p1", 105)]);
    pipes.right("k", "p2", 109);
    assert_eq!(pipes.read(), [kvt("k", "o1+p2", 109)]);
}

#[test]
fn expired_unmatched_records_go_out_before_the_join_results_of_the_record_closing_them() {
    let driver = kafka_join(
        Kind::Outer,
        JoinWindows::of_time_difference_with_no_grace(ms(100)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.left("0", "A0", 0);
    pipes.left("1", "A1", 100);
    assert!(pipes.read().is_empty());
    pipes.right("1", "11", 110);
    assert_eq!(
        pipes.read(),
        [kvt("0", "A0+null", 0), kvt("1", "A1+11", 110)]
    );
}

#[test]
fn unmatched_records_at_equal_times_go_out_right_side_first() {
    let driver = kafka_join(
        Kind::Outer,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.left("0", "A0", 0);
    pipes.right("1", "11", 0);
    assert!(pipes.read().is_empty());
    // Past the window (100), not past the grace period (110): nothing closes yet.
    pipes.left("1", "A1", 101);
    pipes.right("0", "10", 101);
    assert!(pipes.read().is_empty());
    pipes.right("0", "100", 112);
    assert_eq!(
        pipes.read(),
        [kvt("1", "null+11", 0), kvt("0", "A0+null", 0)]
    );
}

#[test]
fn unmatched_records_go_out_by_their_own_timestamp_in_an_asymmetric_window() {
    // Right records may be 5 earlier or 20 later than a left one: a left record's
    // window closes 20 after it, a right record's 5 after it.
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(5)).after(ms(20));
    let driver = kafka_join(Kind::Outer, windows);
    let pipes = Pipes { driver: &driver };
    pipes.left("0", "A0", 29);
    pipes.left("1", "A1", 30);
    pipes.right("2", "12", 31);
    pipes.right("3", "13", 36);
    assert!(pipes.read().is_empty());
    pipes.right("4", "14", 37);
    assert_eq!(pipes.read(), [kvt("2", "null+12", 31)]);
    pipes.right("5", "15", 50);
    assert_eq!(
        pipes.read(),
        [
            kvt("0", "A0+null", 29),
            kvt("3", "null+13", 36),
            kvt("4", "null+14", 37)
        ]
    );
}

#[test]
fn outer_join_emits_right_records_without_a_left_partner() {
    let driver = kafka_join(
        Kind::Outer,
        JoinWindows::of_time_difference_with_no_grace(ms(100)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.right("0", "10", 1);
    pipes.right("1", "11", 2);
    pipes.right("0", "12", 3);
    assert!(pipes.read().is_empty());
    pipes.left("1", "A1", 3);
    assert_eq!(pipes.read(), [kvt("1", "A1+11", 3)]);
    // Closes the windows of 10 and 12 (key 0), never matched.
    pipes.left("2", "dummy", 401);
    assert_eq!(
        pipes.read(),
        [kvt("0", "null+10", 1), kvt("0", "null+12", 3)]
    );
    pipes.right("2", "100", 402);
    assert_eq!(pipes.read(), [kvt("2", "dummy+100", 402)]);
}

#[test]
fn left_join_never_emits_right_records_alone() {
    let driver = kafka_join(
        Kind::Left,
        JoinWindows::of_time_difference_with_no_grace(ms(100)),
    );
    let pipes = Pipes { driver: &driver };
    pipes.right("0", "10", 1);
    pipes.left("1", "A1", 3);
    pipes.left("2", "dummy", 401);
    assert_eq!(pipes.read(), [kvt("1", "A1+null", 3)]);
}

#[test]
fn left_join_with_zero_after_emits_each_left_record_once_the_next_time_passes_it() {
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(100)).after(ms(0));
    let driver = kafka_join(Kind::Left, windows);
    let pipes = Pipes { driver: &driver };
    let keys = ["0", "1", "2", "3"];
    for (i, k) in keys.iter().enumerate() {
        pipes.left(k, &format!("A{k}"), 1000 + i as i64);
    }
    assert_eq!(
        pipes.read(),
        [
            kvt("0", "A0+null", 1000),
            kvt("1", "A1+null", 1001),
            kvt("2", "A2+null", 1002)
        ]
    );
    // Right records may be up to 100 earlier than a left one and not later; the left
    // records still in the store join them, emitted alone before or not.
    let expect = |prefix: &str, from: usize| -> Vec<(String, String, i64)> {
        keys[from..]
            .iter()
            .enumerate()
            .map(|(i, k)| kvt(k, &format!("A{k}+{prefix}{k}"), 1000 + (from + i) as i64))
            .collect()
    };
    for (round, prefix) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        for k in keys {
            pipes.right(k, &format!("{prefix}{k}"), 999 + round as i64);
        }
        // A right record at t joins left records at t..t+100: from key t-999 on.
        assert_eq!(
            pipes.read(),
            expect(prefix, round.saturating_sub(1)),
            "{prefix}"
        );
    }
    for k in keys {
        pipes.right(k, &format!("f{k}"), 1100);
    }
    assert!(pipes.read().is_empty());
}
