//! Stateful DSL operators on the test driver: grouping and aggregation of streams and
//! tables, tables read from topics, table operators and stream-table / table-table joins.

use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};

fn s(v: &str) -> String {
    v.to_string()
}

fn strings() -> Consumed<String, String> {
    Consumed::with(StringSerde, StringSerde)
}

#[test]
fn word_count_repartitions_by_word_and_counts() {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", strings())
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word| word.clone(),
            Grouped::with(StringSerde, StringSerde).with_name("words"),
        )
        .count(Materialized::as_store("word-counts"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, Nullable(I64Serde)));
    let topology = builder.build().unwrap();
    assert_eq!(topology.subtopology_count(), 2, "{}", topology.describe());
    let driver = TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default()
            .with_application_id("wc")
            .with_partitions("lines", 3),
    );
    let lines = driver.input_topic("lines", StringSerde, StringSerde);
    lines.pipe_input(s("a"), s("the cat"));
    lines.pipe_input(s("b"), s("The dog"));
    lines.pipe_input(s("c"), s("a cat"));
    let counts = driver
        .output_topic("counts", StringSerde, Nullable(I64Serde))
        .read_key_values_to_map();
    assert_eq!(counts[&s("the")], Some(2));
    assert_eq!(counts[&s("cat")], Some(2));
    assert_eq!(counts[&s("dog")], Some(1));
    assert_eq!(counts[&s("a")], Some(1));
    let store = driver
        .key_value_store::<String, i64>("word-counts")
        .unwrap();
    assert_eq!(store.get(&s("cat")), Some(2));
    // Records went through the internal topic named after the grouping.
    assert!(driver
        .output_topic("wc-words-repartition", StringSerde, StringSerde)
        .read_values()
        .contains(&s("dog")));
}

#[test]
fn reduce_and_aggregate_keep_one_value_per_key() {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .group_by_key(Grouped::new());
    grouped
        .reduce(|a, b| a.max(b), Materialized::as_store("max"))
        .to_stream()
        .to("max-out", Produced::with(StringSerde, Nullable(I64Serde)));
    grouped
        .aggregate(
            || s(""),
            |_k, v, agg: String| format!("{agg}{v},"),
            Materialized::as_store("history").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(
            "history-out",
            Produced::with(StringSerde, Nullable(StringSerde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe_key_values([(s("x"), 3), (s("x"), 9), (s("x"), 4), (s("y"), 1)]);
    let max = driver
        .output_topic("max-out", StringSerde, Nullable(I64Serde))
        .read_values();
    assert_eq!(max, [Some(3), Some(9), Some(9), Some(1)]);
    let history = driver.key_value_store::<String, String>("history").unwrap();
    assert_eq!(history.get(&s("x")), Some(s("3,9,4,")));
    assert_eq!(history.get(&s("y")), Some(s("1,")));
}

#[test]
fn an_aggregation_without_a_value_serde_for_a_new_type_is_refused() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", strings())
        .group_by_key(Grouped::new())
        .aggregate(|| 0u32, |_, _, n| n + 1, Materialized::new());
    let err = builder.build().err().expect("missing serde");
    assert!(err.to_string().contains("value serde"), "{err}");
}

#[test]
fn tables_read_from_topics_apply_updates_and_tombstones() {
    let builder = StreamsBuilder::new();
    let users = builder.table("users", strings(), Materialized::as_store("users"));
    users
        .filter(|_, city| city != "nowhere")
        .map_values(|city| city.to_uppercase())
        .to_stream()
        .to(
            "user-cities",
            Produced::with(StringSerde, Nullable(StringSerde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("users", StringSerde, Nullable(StringSerde));
    input.pipe_input(s("ann"), Some(s("paris")));
    input.pipe_input(s("bob"), Some(s("rome")));
    input.pipe_input(s("ann"), Some(s("nowhere"))); // stops matching: a delete downstream
    input.pipe_input(s("bob"), None); // tombstone
    input.pipe_input(s("zed"), None); // tombstone of an unknown key: nothing
    let out = driver
        .output_topic("user-cities", StringSerde, Nullable(StringSerde))
        .read_key_values();
    assert_eq!(
        out,
        [
            (s("ann"), Some(s("PARIS"))),
            (s("bob"), Some(s("ROME"))),
            (s("ann"), None),
            (s("bob"), None)
        ]
    );
    let store = driver.key_value_store::<String, String>("users").unwrap();
    assert_eq!(store.get(&s("ann")), Some(s("nowhere")));
    assert_eq!(store.get(&s("bob")), None);
}

#[test]
fn stream_table_joins_read_the_current_table_value() {
    let builder = StreamsBuilder::new();
    let customers = builder.table("customers", strings(), Materialized::new());
    let orders = builder.stream("orders", strings());
    orders
        .join(&customers, |order, name| format!("{order} for {name}"))
        .to("joined", Produced::with(StringSerde, StringSerde));
    orders
        .left_join(&customers, |order, name| {
            format!("{order} for {}", name.map_or("unknown", String::as_str))
        })
        .to("left-joined", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.subtopology_count(),
        1,
        "stream and table share a task"
    );
    let driver = TopologyTestDriver::new(topology);
    let customers_in = driver.input_topic("customers", StringSerde, StringSerde);
    let orders_in = driver.input_topic("orders", StringSerde, StringSerde);
    orders_in.pipe_input(s("c1"), s("o1")); // no customer yet
    customers_in.pipe_input(s("c1"), s("Ann"));
    orders_in.pipe_input(s("c1"), s("o2"));
    customers_in.pipe_input(s("c1"), s("Ann B."));
    orders_in.pipe_input(s("c1"), s("o3"));
    let joined = driver
        .output_topic("joined", StringSerde, StringSerde)
        .read_values();
    assert_eq!(joined, [s("o2 for Ann"), s("o3 for Ann B.")]);
    let left = driver
        .output_topic("left-joined", StringSerde, StringSerde)
        .read_values();
    assert_eq!(
        left,
        [s("o1 for unknown"), s("o2 for Ann"), s("o3 for Ann B.")]
    );
}

#[test]
fn table_table_joins_propagate_updates_and_deletes() {
    let builder = StreamsBuilder::new();
    let left = builder.table("left", strings(), Materialized::new());
    let right = builder.table("right", strings(), Materialized::new());
    let sink =
        |t: &str| Produced::with(StringSerde, Nullable(StringSerde)).with_name(format!("{t}-sink"));
    left.join(&right, |l, r| format!("{l}+{r}"))
        .to_stream()
        .to("inner", sink("inner"));
    left.left_join(&right, |l, r| {
        format!("{l}+{}", r.map_or("-", String::as_str))
    })
    .to_stream()
    .to("left-out", sink("left"));
    left.outer_join(&right, |l, r| {
        format!(
            "{}+{}",
            l.map_or("-", String::as_str),
            r.map_or("-", String::as_str)
        )
    })
    .to_stream()
    .to("outer", sink("outer"));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let l = driver.input_topic("left", StringSerde, Nullable(StringSerde));
    let r = driver.input_topic("right", StringSerde, Nullable(StringSerde));
    l.pipe_input(s("k"), Some(s("a"))); // left only
    r.pipe_input(s("k"), Some(s("x"))); // both
    l.pipe_input(s("k"), Some(s("b"))); // left update
    r.pipe_input(s("k"), None); // right delete
    l.pipe_input(s("k"), None); // left delete
    let read = |t: &str| {
        driver
            .output_topic(t, StringSerde, Nullable(StringSerde))
            .read_values()
    };
    assert_eq!(read("inner"), [Some(s("a+x")), Some(s("b+x")), None]);
    assert_eq!(
        read("left-out"),
        [
            Some(s("a+-")),
            Some(s("a+x")),
            Some(s("b+x")),
            Some(s("b+-")),
            None
        ]
    );
    assert_eq!(
        read("outer"),
        [
            Some(s("a+-")),
            Some(s("a+x")),
            Some(s("b+x")),
            Some(s("b+-")),
            None
        ]
    );
}

/// Left, right-only and both-sided rows through inner, left and outer table-table
/// joins, with the timestamps of the results: the larger of the change's and the other
/// side's row's.
#[test]
fn table_table_join_results_carry_the_latest_timestamp_and_outer_joins_keep_right_only_rows() {
    let builder = StreamsBuilder::new();
    let left = builder.table("left", strings(), Materialized::new());
    let right = builder.table("right", strings(), Materialized::new());
    let show = |v: Option<&String>| v.map_or("-", String::as_str).to_string();
    let sink =
        |t: &str| Produced::with(StringSerde, Nullable(StringSerde)).with_name(format!("{t}-sink"));
    left.join(&right, |l, r| format!("{l}+{r}"))
        .to_stream()
        .to("inner", sink("inner"));
    left.left_join(&right, move |l, r| format!("{l}+{}", show(r)))
        .to_stream()
        .to("left-out", sink("left"));
    left.outer_join(&right, move |l, r| format!("{}+{}", show(l), show(r)))
        .to_stream()
        .to("outer", sink("outer"));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let l = driver.input_topic("left", StringSerde, Nullable(StringSerde));
    let r = driver.input_topic("right", StringSerde, Nullable(StringSerde));
    r.pipe_input_at(s("k"), Some(s("x")), 5); // right only
    l.pipe_input_at(s("k"), Some(s("a")), 10); // both: the left change is later
    r.pipe_input_at(s("k"), Some(s("y")), 20); // the right change is later
    l.pipe_input_at(s("k"), Some(s("b")), 15); // earlier than the right row
    r.pipe_input_at(s("k"), None, 30); // right delete
    l.pipe_input_at(s("k"), None, 25); // left delete, nothing on the right
    r.pipe_input_at(s("j"), Some(s("z")), 40); // right only, another key
    r.pipe_input_at(s("j"), None, 41);
    let read = |t: &str| -> Vec<(String, Option<String>, i64)> {
        driver
            .output_topic(t, StringSerde, Nullable(StringSerde))
            .read_records()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect()
    };
    let row = |k: &str, v: Option<&str>, ts: i64| (s(k), v.map(s), ts);
    assert_eq!(
        read("inner"),
        [
            row("k", Some("a+x"), 10),
            row("k", Some("a+y"), 20),
            row("k", Some("b+y"), 20),
            row("k", None, 30),
        ]
    );
    assert_eq!(
        read("left-out"),
        [
            row("k", Some("a+x"), 10),
            row("k", Some("a+y"), 20),
            row("k", Some("b+y"), 20),
            row("k", Some("b+-"), 30),
            row("k", None, 25),
        ]
    );
    assert_eq!(
        read("outer"),
        [
            row("k", Some("-+x"), 5),
            row("k", Some("a+x"), 10),
            row("k", Some("a+y"), 20),
            row("k", Some("b+y"), 20),
            row("k", Some("b+-"), 30),
            row("k", None, 25),
            row("j", Some("-+z"), 40),
            row("j", None, 41),
        ]
    );
}

#[test]
fn table_group_by_moves_rows_between_groups_with_adder_and_subtractor() {
    let builder = StreamsBuilder::new();
    let users = builder.table("users", strings(), Materialized::new());
    users
        .group_by(
            |_user, city| (city.clone(), 1i64),
            Grouped::with(StringSerde, I64Serde).with_name("by-city"),
        )
        .count(Materialized::as_store("users-per-city"))
        .to_stream()
        .to("per-city", Produced::with(StringSerde, Nullable(I64Serde)));
    users
        .group_by(
            |_user, city| (s("all"), city.clone()),
            Grouped::with(StringSerde, StringSerde),
        )
        .reduce(
            |a, b| format!("{a}|{b}"),
            remove_one,
            Materialized::as_store("cities"),
        )
        .to_stream()
        .to("cities", Produced::with(StringSerde, Nullable(StringSerde)));
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_partitions("users", 2),
    );
    let input = driver.input_topic("users", StringSerde, Nullable(StringSerde));
    input.pipe_input(s("ann"), Some(s("paris")));
    input.pipe_input(s("bob"), Some(s("paris")));
    input.pipe_input(s("cid"), Some(s("rome")));
    input.pipe_input(s("bob"), Some(s("rome"))); // moves: paris -1, rome +1
    input.pipe_input(s("ann"), None); // leaves: paris -1
    let store = driver
        .key_value_store::<String, i64>("users-per-city")
        .unwrap();
    assert_eq!(store.get(&s("paris")), Some(0));
    assert_eq!(store.get(&s("rome")), Some(2));
    let updates = driver
        .output_topic("per-city", StringSerde, Nullable(I64Serde))
        .read_key_values();
    assert_eq!(updates.last(), Some(&(s("paris"), Some(0))));
    let cities = driver.key_value_store::<String, String>("cities").unwrap();
    assert_eq!(cities.get(&s("all")), Some(s("rome|rome")));
}

/// Removes the first `item` from a `|`-separated list.
fn remove_one(list: String, item: String) -> String {
    let mut items: Vec<&str> = list.split('|').collect();
    if let Some(i) = items.iter().position(|x| *x == item) {
        items.remove(i);
    }
    items.join("|")
}

/// A table grouping: each row `city:score` adds its score to its city.
fn scores_per_city(builder: &StreamsBuilder) {
    builder
        .table("scores", strings(), Materialized::new())
        .group_by(
            |_user, row| {
                let (city, score) = row.split_once(':').unwrap();
                (s(city), score.parse::<i64>().unwrap())
            },
            Grouped::with(StringSerde, I64Serde),
        )
        .aggregate(
            || 0,
            |_, score, sum| sum + score,
            |_, score, sum| sum - score,
            Materialized::with(StringSerde, I64Serde),
        )
        .to_stream()
        .to("per-city", Produced::with(StringSerde, Nullable(I64Serde)));
}

#[test]
fn a_table_row_updated_within_its_group_emits_one_result_not_the_intermediate_one() {
    let builder = StreamsBuilder::new();
    scores_per_city(&builder);
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("scores", StringSerde, StringSerde);
    input.pipe_input_at(s("ann"), s("paris:5"), 1);
    // Same group: one change carries both rows, so "paris" goes from 5 to 7 directly,
    // never through 0 (KIP-904).
    input.pipe_input_at(s("ann"), s("paris:7"), 2);
    // Another group: subtract from the old one, then add to the new one.
    input.pipe_input_at(s("ann"), s("rome:1"), 3);
    let out: Vec<_> = driver
        .output_topic("per-city", StringSerde, Nullable(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        [
            (s("paris"), Some(5), 1),
            (s("paris"), Some(7), 2),
            (s("paris"), Some(0), 3),
            (s("rome"), Some(1), 3)
        ]
    );
}

/// Counts the words of each line per line key (no repartition: the key stays).
fn words_per_key(cache_bytes: usize) -> Vec<(String, i64, i64)> {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", strings())
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("words"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, Nullable(I64Serde)));
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_store_cache_max_bytes(cache_bytes),
    );
    let lines = driver.input_topic("lines", StringSerde, StringSerde);
    lines.pipe_input_at(s("k"), s("a b c"), 5);
    lines.pipe_input_at(s("j"), s("d"), 6);
    lines.pipe_input_at(s("k"), s("e"), 9);
    driver
        .output_topic("counts", StringSerde, Nullable(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value.unwrap(), r.timestamp))
        .collect()
}

#[test]
fn the_record_cache_merges_the_updates_of_one_record_and_the_driver_commits_after_each() {
    // The driver commits after every record, as Kafka's does: each input record's
    // updates of a key reach downstream as one, the latest, with its timestamp.
    assert_eq!(
        words_per_key(10 * 1024 * 1024),
        [(s("k"), 3, 5), (s("j"), 1, 6), (s("k"), 4, 9)]
    );
    // Without the cache every update is forwarded.
    assert_eq!(
        words_per_key(0),
        [
            (s("k"), 1, 5),
            (s("k"), 2, 5),
            (s("k"), 3, 5),
            (s("j"), 1, 6),
            (s("k"), 4, 9)
        ]
    );
}

#[test]
fn materialized_with_caching_off_forwards_every_update_under_any_budget() {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", strings())
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("words").with_caching(false))
        .to_stream()
        .to("counts", Produced::with(StringSerde, Nullable(I64Serde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let lines = driver.input_topic("lines", StringSerde, StringSerde);
    lines.pipe_input_at(s("k"), s("a b"), 5);
    let out = driver
        .output_topic("counts", StringSerde, Nullable(I64Serde))
        .read_key_values();
    assert_eq!(out, [(s("k"), Some(1)), (s("k"), Some(2))]);
}

#[test]
fn a_table_aggregate_carries_the_latest_timestamp_of_its_rows() {
    let builder = StreamsBuilder::new();
    scores_per_city(&builder);
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("scores", StringSerde, StringSerde);
    input.pipe_input_at(s("ann"), s("paris:5"), 10);
    // An older row: the aggregate keeps the later timestamp of the two.
    input.pipe_input_at(s("bob"), s("paris:1"), 4);
    // Leaving "paris" at 3: paris stays at 10, rome starts at 3.
    input.pipe_input_at(s("ann"), s("rome:2"), 3);
    let out: Vec<_> = driver
        .output_topic("per-city", StringSerde, Nullable(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        [
            (s("paris"), Some(5), 10),
            (s("paris"), Some(6), 10),
            (s("paris"), Some(1), 10),
            (s("rome"), Some(2), 3)
        ]
    );
}

#[test]
fn a_stream_aggregate_carries_the_latest_timestamp_of_its_records() {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", strings())
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("event-counts"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, Nullable(I64Serde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe_input_at(s("k"), s("a"), 10);
    input.pipe_input_at(s("k"), s("b"), 4); // out of order: the count stays at 10
    input.pipe_input_at(s("k"), s("c"), 12);
    input.pipe_input_at(s("j"), s("d"), 1);
    let out: Vec<_> = driver
        .output_topic("counts", StringSerde, Nullable(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        [
            (s("k"), Some(1), 10),
            (s("k"), Some(2), 10),
            (s("k"), Some(3), 12),
            (s("j"), Some(1), 1)
        ]
    );
    let store = driver
        .key_value_store::<String, i64>("event-counts")
        .unwrap();
    assert_eq!(store.get(&s("k")), Some(3));
    assert_eq!(store.all(), [(s("j"), 1), (s("k"), 3)]);
}

#[test]
fn to_table_keeps_the_latest_value_per_key_and_repartitions_changed_keys() {
    let builder = StreamsBuilder::new();
    let table = builder
        .stream("events", strings())
        .select_key(|_, v: &String| v[..1].to_string())
        .to_table(Materialized::as_store("latest").with_value_serde(StringSerde));
    table.to_stream().to(
        "latest-out",
        Produced::with(StringSerde, Nullable(StringSerde)),
    );
    let topology = builder.build().unwrap();
    // The key changed before the table: a repartition splits the topology in two.
    assert_eq!(topology.subtopology_count(), 2, "{}", topology.describe());
    let driver = TopologyTestDriver::new(topology);
    let events = driver.input_topic("events", StringSerde, StringSerde);
    events.pipe_input(s("1"), s("a1"));
    events.pipe_input(s("2"), s("b1"));
    events.pipe_input(s("3"), s("a2"));
    let out = driver.output_topic("latest-out", StringSerde, Nullable(StringSerde));
    assert_eq!(
        out.read_key_values(),
        vec![
            (s("a"), Some(s("a1"))),
            (s("b"), Some(s("b1"))),
            (s("a"), Some(s("a2"))),
        ]
    );
    let store = driver.key_value_store::<String, String>("latest").unwrap();
    assert_eq!(store.get(&s("a")), Some(s("a2")));
    assert_eq!(store.get(&s("b")), Some(s("b1")));
}
