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
