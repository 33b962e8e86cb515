//! Table-table foreign-key joins on the test driver: orders (keyed by order id, valued
//! `customer|item`) join customers (keyed by customer id) by the customer id in the
//! order, with the two topics partitioned differently.

use std::collections::HashMap;

use streams_core::serde::{BytesSerde, Nullable, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder, Topology, TopologyError};

const ORDER_PARTITIONS: i32 = 3;
const CUSTOMER_PARTITIONS: i32 = 2;

fn s(v: &str) -> String {
    v.to_string()
}

/// The customer id of an order value `customer|item` (a foreign-key extractor, so it
/// takes the value type).
#[allow(clippy::ptr_arg)]
fn customer_of(order: &String) -> String {
    order.split('|').next().unwrap_or_default().to_string()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Inner,
    Left,
}

/// Orders joined with customers into `joined` (`<order>@<customer name>`, or
/// `<order>@?` for a left join without a customer).
fn topology(kind: Kind) -> Topology {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(StringSerde, StringSerde);
    let orders = builder.table("orders", strings(), Materialized::new());
    let customers = builder.table("customers", strings(), Materialized::new());
    let joined = match kind {
        // No partition counts given: the internal topics are co-partitioned with the
        // tables they are read with (asserted in the first test).
        Kind::Inner => orders.join_on_foreign_key(&customers, customer_of, |order, name| {
            format!("{order}@{name}")
        }),
        Kind::Left => orders.left_join_on_foreign_key(&customers, customer_of, |order, name| {
            format!("{order}@{}", name.map_or("?", String::as_str))
        }),
    };
    joined
        .to_stream()
        .to("joined", Produced::with(StringSerde, Nullable(StringSerde)));
    builder.build().unwrap()
}

fn driver(kind: Kind) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        topology(kind),
        TestDriverConfig::default()
            .with_application_id("fk")
            .with_partitions("orders", ORDER_PARTITIONS)
            .with_partitions("customers", CUSTOMER_PARTITIONS),
    )
}

struct Topics<'d> {
    driver: &'d TopologyTestDriver,
}

impl Topics<'_> {
    fn order(&self, id: &str, value: Option<&str>) {
        self.driver
            .input_topic("orders", StringSerde, Nullable(StringSerde))
            .pipe_input(s(id), value.map(s));
    }

    fn customer(&self, id: &str, name: Option<&str>) {
        self.driver
            .input_topic("customers", StringSerde, Nullable(StringSerde))
            .pipe_input(s(id), name.map(s));
    }

    fn joined(&self) -> Vec<(String, Option<String>)> {
        self.driver
            .output_topic("joined", StringSerde, Nullable(StringSerde))
            .read_key_values()
    }

    /// The broker name of the internal topic whose name contains `part`.
    fn internal(&self, part: &str) -> String {
        self.driver
            .written_topics()
            .into_iter()
            .find(|t| t.contains(part))
            .unwrap_or_else(|| panic!("no topic containing {part} was written"))
    }
}

fn some(key: &str, value: &str) -> (String, Option<String>) {
    (s(key), Some(s(value)))
}

fn none(key: &str) -> (String, Option<String>) {
    (s(key), None)
}

#[test]
fn inner_join_matches_rows_across_differently_partitioned_tables() {
    let driver = driver(Kind::Inner);
    let t = Topics { driver: &driver };
    // Orders first: nothing to join yet.
    t.order("o1", Some("c1|book"));
    t.order("o2", Some("c2|pen"));
    t.order("o3", Some("c3|ink"));
    assert_eq!(t.joined(), []);
    for (id, name) in [("c1", "Ann"), ("c2", "Bob"), ("c3", "Cid"), ("c4", "Dan")] {
        t.customer(id, Some(name));
    }
    let mut joined = t.joined();
    joined.sort();
    assert_eq!(
        joined,
        [
            some("o1", "c1|book@Ann"),
            some("o2", "c2|pen@Bob"),
            some("o3", "c3|ink@Cid")
        ]
    );
    // Customers first: an order joins at once.
    for (order, customer) in [("o4", "c4"), ("o5", "c1"), ("o6", "c2"), ("o7", "c3")] {
        t.order(order, Some(&format!("{customer}|x")));
    }
    assert_eq!(
        t.joined(),
        [
            some("o4", "c4|x@Dan"),
            some("o5", "c1|x@Ann"),
            some("o6", "c2|x@Bob"),
            some("o7", "c3|x@Cid")
        ]
    );
    // The internal topics exist with the partition counts of the table they are read with.
    let registration = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-");
    let response = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-");
    assert!(registration.starts_with("fk-") && registration.ends_with("-topic"));
    assert!(response.starts_with("fk-") && response.ends_with("-topic"));
    let partitions = |topic: &str| {
        driver
            .output_topic(topic, BytesSerde, BytesSerde)
            .read_records_with_partition()
            .into_iter()
            .map(|(p, _)| p)
            .max()
            .unwrap()
    };
    assert!(partitions(&registration) < CUSTOMER_PARTITIONS);
    assert!(partitions(&response) < ORDER_PARTITIONS);
}

#[test]
fn left_join_emits_rows_without_a_match_and_completes_them_later() {
    let driver = driver(Kind::Left);
    let t = Topics { driver: &driver };
    t.order("o1", Some("c1|book"));
    t.order("o2", Some("c1|pen"));
    assert_eq!(
        t.joined(),
        [some("o1", "c1|book@?"), some("o2", "c1|pen@?")]
    );
    t.customer("c1", Some("Ann"));
    let mut joined = t.joined();
    joined.sort();
    assert_eq!(
        joined,
        [some("o1", "c1|book@Ann"), some("o2", "c1|pen@Ann")]
    );
    // An order update (same customer) rejoins with the current customer.
    t.order("o1", Some("c1|books"));
    assert_eq!(t.joined(), [some("o1", "c1|books@Ann")]);
}

#[test]
fn changing_the_foreign_key_replaces_the_result_and_leaves_the_old_customer() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let t = Topics { driver: &driver };
        t.customer("c1", Some("Ann"));
        t.customer("c2", Some("Bob"));
        t.order("o1", Some("c1|book"));
        assert_eq!(t.joined(), [some("o1", "c1|book@Ann")]);
        t.order("o1", Some("c2|book"));
        // One update, no delete in between and no result for the old customer.
        assert_eq!(t.joined(), [some("o1", "c2|book@Bob")]);
        // The old customer no longer reaches the order; the new one does.
        t.customer("c1", Some("Ann B."));
        assert_eq!(t.joined(), []);
        t.customer("c2", Some("Bob B."));
        assert_eq!(t.joined(), [some("o1", "c2|book@Bob B.")]);
        // Moving to a customer that does not exist.
        t.order("o1", Some("c9|book"));
        let expected = match kind {
            Kind::Inner => none("o1"),
            Kind::Left => some("o1", "c9|book@?"),
        };
        assert_eq!(t.joined(), [expected]);
    }
}

#[test]
fn a_customer_update_reaches_every_order_of_that_customer() {
    let driver = driver(Kind::Inner);
    let t = Topics { driver: &driver };
    t.customer("c1", Some("Ann"));
    t.customer("c2", Some("Bob"));
    let orders: Vec<String> = (0..8).map(|i| format!("o{i}")).collect();
    for (i, order) in orders.iter().enumerate() {
        let customer = if i % 2 == 0 { "c1" } else { "c2" };
        t.order(order, Some(&format!("{customer}|{i}")));
    }
    assert_eq!(t.joined().len(), 8);
    t.customer("c1", Some("Ann B."));
    let updated: HashMap<String, Option<String>> = t.joined().into_iter().collect();
    let expected: HashMap<String, Option<String>> = orders
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, o)| (o.clone(), Some(format!("c1|{i}@Ann B."))))
        .collect();
    assert_eq!(updated, expected);
    // The orders live in several tasks of the orders side.
    let response = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-");
    let partitions: std::collections::BTreeSet<i32> = driver
        .output_topic(&response, BytesSerde, BytesSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(partitions.len() > 1, "{partitions:?}");
}

#[test]
fn deleting_the_customer_deletes_inner_results_and_empties_left_results() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let t = Topics { driver: &driver };
        t.customer("c1", Some("Ann"));
        t.customer("c2", Some("Bob"));
        t.order("o1", Some("c1|book"));
        t.order("o2", Some("c1|pen"));
        t.order("o3", Some("c2|ink"));
        t.joined();
        t.customer("c1", None);
        let mut joined = t.joined();
        joined.sort();
        let expected = match kind {
            Kind::Inner => vec![none("o1"), none("o2")],
            Kind::Left => vec![some("o1", "c1|book@?"), some("o2", "c1|pen@?")],
        };
        assert_eq!(joined, expected);
        // The customer coming back rejoins its orders.
        t.customer("c1", Some("Ann"));
        let mut joined = t.joined();
        joined.sort();
        assert_eq!(
            joined,
            [some("o1", "c1|book@Ann"), some("o2", "c1|pen@Ann")]
        );
    }
}

#[test]
fn deleting_the_order_deletes_the_result() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let t = Topics { driver: &driver };
        t.customer("c1", Some("Ann"));
        t.order("o1", Some("c1|book"));
        t.joined();
        t.order("o1", None);
        assert_eq!(t.joined(), [none("o1")]);
        // The order no longer subscribes: customer updates do not bring it back.
        t.customer("c1", Some("Ann B."));
        assert_eq!(t.joined(), []);
    }
}

#[test]
fn deleting_an_order_without_a_result_emits_a_tombstone() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let t = Topics { driver: &driver };
        t.order("o1", Some("c1|book"));
        let expected = match kind {
            Kind::Inner => vec![],
            Kind::Left => vec![some("o1", "c1|book@?")],
        };
        assert_eq!(t.joined(), expected);
        // The inner join cannot know whether a result was emitted before: it deletes it.
        t.order("o1", None);
        assert_eq!(t.joined(), [none("o1")]);
        // Deleting a row that no longer exists changes nothing.
        t.order("o1", None);
        assert_eq!(t.joined(), []);
        // Nor does deleting a row that never existed.
        t.order("o2", None);
        assert_eq!(t.joined(), []);
    }
}

#[test]
fn moving_between_missing_customers_emits_a_tombstone_each_time() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let t = Topics { driver: &driver };
        let unmatched = |key: &str, value: &str| match kind {
            Kind::Inner => none(key),
            Kind::Left => some(key, value),
        };
        t.order("o1", Some("c1|book"));
        // No result for a new inner-join row without a customer.
        let expected = match kind {
            Kind::Inner => vec![],
            Kind::Left => vec![some("o1", "c1|book@?")],
        };
        assert_eq!(t.joined(), expected);
        t.order("o1", Some("c2|book"));
        assert_eq!(t.joined(), [unmatched("o1", "c2|book@?")]);
        t.order("o1", Some("c3|book"));
        assert_eq!(t.joined(), [unmatched("o1", "c3|book@?")]);
        // c1 is no longer referenced: its arrival changes nothing.
        t.customer("c1", Some("Ann"));
        assert_eq!(t.joined(), []);
        t.order("o1", Some("c1|book"));
        assert_eq!(t.joined(), [some("o1", "c1|book@Ann")]);
        t.order("o1", Some("c2|book"));
        assert_eq!(t.joined(), [unmatched("o1", "c2|book@?")]);
        // An update keeping a missing customer answers again, as Kafka Streams does.
        t.order("o1", Some("c2|books"));
        assert_eq!(t.joined(), [unmatched("o1", "c2|books@?")]);
    }
}

#[test]
fn a_table_joined_after_the_foreign_key_join_deletes_its_row_with_the_order() {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(StringSerde, StringSerde);
    let orders = builder.table("orders", strings(), Materialized::new());
    let customers = builder.table("customers", strings(), Materialized::new());
    let named = orders
        .join_on_foreign_key(&customers, customer_of, |order, name| {
            format!("{order}@{name}")
        })
        .materialize(Materialized::with(StringSerde, StringSerde));
    orders
        .join(&named, |order, named| format!("{order}/{named}"))
        .to_stream()
        .to("joined", Produced::with(StringSerde, Nullable(StringSerde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let t = Topics { driver: &driver };
    t.customer("c1", Some("Ann"));
    t.order("o1", Some("c1|book"));
    assert_eq!(t.joined(), [some("o1", "c1|book/c1|book@Ann")]);
    t.order("o1", None);
    // The order's side sees the delete while the result still exists: one tombstone.
    assert_eq!(t.joined(), [none("o1")]);
    // Nothing is left that a customer update could bring back.
    t.customer("c1", Some("Ann B."));
    assert_eq!(t.joined(), []);
}

#[test]
fn answers_for_an_outdated_order_value_are_dropped() {
    let driver = driver(Kind::Inner);
    let t = Topics { driver: &driver };
    let names = ["Ann", "Bob", "Cid", "Dan", "Eve", "Fay"];
    for (i, name) in names.iter().enumerate() {
        t.customer(&format!("c{i}"), Some(name));
    }
    // Probe orders show which task of the customers side owns each customer.
    for i in 0..names.len() {
        t.order(&format!("probe{i}"), Some(&format!("c{i}|probe")));
    }
    let registration = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-");
    let owner: HashMap<String, i32> = driver
        .output_topic(&registration, StringSerde, BytesSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, r)| (r.key, p))
        .collect();
    let in_partition = |p: i32| {
        let mut found: Vec<&String> = owner
            .iter()
            .filter(|(_, &q)| q == p)
            .map(|(c, _)| c)
            .collect();
        found.sort();
        found.into_iter().cloned().collect::<Vec<_>>()
    };
    let (first, second) = (in_partition(0), in_partition(1));
    assert!(!first.is_empty() && second.len() >= 2, "{owner:?}");
    let name_of = |c: &str| names[c[1..].parse::<usize>().unwrap()];
    let last = first[0].clone();

    t.order("o1", Some(&format!("{last}|v0")));
    assert_eq!(
        t.joined().last(),
        Some(&some("o1", &format!("{last}|v0@{}", name_of(&last))))
    );
    let response = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-");
    let answers = driver.output_topic(&response, BytesSerde, BytesSerde);
    let (partition, stale) = answers.read_records_with_partition().pop().unwrap();

    // The order changes customer three times before any answer comes back. Customers of
    // the second task answer after those of the first, so the answer to the latest value
    // arrives before the answers to older ones.
    let orders = driver.input_topic("orders", StringSerde, Nullable(StringSerde));
    let values = [
        format!("{}|v1", second[0]),
        format!("{}|v2", second[1]),
        format!("{last}|v3"),
    ];
    for value in &values {
        orders.enqueue(partition, s("o1"), Some(value.clone()), 10);
    }
    driver.process_buffered();
    assert_eq!(
        t.joined(),
        [some("o1", &format!("{last}|v3@{}", name_of(&last)))]
    );
    let answered: Vec<i32> = answers
        .read_records_with_partition()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(answered.len(), 3);

    // An answer delivered late (the one for v0, replayed) is dropped too.
    let replay = driver.input_topic(&response, BytesSerde, BytesSerde);
    replay
        .pipe_raw(Some(stale.key.clone()), Some(stale.value.clone()), 20)
        .unwrap();
    assert_eq!(t.joined(), []);
    // The order returning to exactly the old value makes that answer current again.
    t.order("o1", Some(&format!("{last}|v0")));
    assert_eq!(
        t.joined(),
        [some("o1", &format!("{last}|v0@{}", name_of(&last)))]
    );
}

#[test]
fn the_join_without_partition_counts_runs_on_single_partition_topics() {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(StringSerde, StringSerde);
    let orders = builder.table("orders", strings(), Materialized::new());
    let customers = builder.table("customers", strings(), Materialized::new());
    orders
        .join_on_foreign_key(&customers, customer_of, |o, c| format!("{o}@{c}"))
        .to_stream()
        .to("joined", Produced::with(StringSerde, Nullable(StringSerde)));
    orders
        .left_join_on_foreign_key(&customers, customer_of, |o, c| {
            format!("{o}@{}", c.map_or("?", String::as_str))
        })
        .to_stream()
        .to(
            "left-joined",
            Produced::with(StringSerde, Nullable(StringSerde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let t = Topics { driver: &driver };
    t.order("o1", Some("c1|book"));
    t.customer("c1", Some("Ann"));
    t.customer("c1", None);
    assert_eq!(t.joined(), [some("o1", "c1|book@Ann"), none("o1")]);
    assert_eq!(
        driver
            .output_topic("left-joined", StringSerde, Nullable(StringSerde))
            .read_key_values(),
        [
            some("o1", "c1|book@?"),
            some("o1", "c1|book@Ann"),
            some("o1", "c1|book@?")
        ]
    );
}

#[test]
fn tables_without_serdes_are_reported() {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(StringSerde, StringSerde);
    let orders = builder.table("orders", strings(), Materialized::new());
    let customers = builder.table("customers", strings(), Materialized::new());
    // map_values loses the value serde.
    orders
        .map_values(|o| o.to_uppercase())
        .join_on_foreign_key(&customers, customer_of, |o, c| format!("{o}@{c}"));
    let err = builder.build().err().expect("missing serde");
    assert!(
        matches!(&err, TopologyError::MissingSerde { what: "value", node } if node.contains("left")),
        "{err}"
    );

    let builder = StreamsBuilder::new();
    let orders = builder.table("orders", strings(), Materialized::new());
    let customers = builder.table("customers", strings(), Materialized::new());
    orders.join_on_foreign_key(
        &customers.map_values(|c| c.len() as i64),
        customer_of,
        |o, n| format!("{o}@{n}"),
    );
    let err = builder.build().err().expect("missing serde");
    assert!(
        matches!(&err, TopologyError::MissingSerde { what: "value", node } if node.contains("right")),
        "{err}"
    );
}

#[test]
fn answers_go_to_the_partition_the_order_was_read_from() {
    let driver = driver(Kind::Inner);
    let t = Topics { driver: &driver };
    t.customer("c1", Some("Ann"));
    let orders = driver.input_topic("orders", StringSerde, Nullable(StringSerde));
    // Every order on the partition after the one murmur2 of its key picks.
    let ids: Vec<String> = (0..6).map(|i| format!("o{i}")).collect();
    let partition_of = |id: &str| {
        (streams_core::runtime::partitioner::partition_for_key(id.as_bytes(), ORDER_PARTITIONS) + 1)
            % ORDER_PARTITIONS
    };
    for id in &ids {
        orders.enqueue(partition_of(id), s(id), Some(s("c1|x")), 5);
    }
    driver.process_buffered();
    let mut joined = t.joined();
    joined.sort();
    let expected: Vec<_> = ids.iter().map(|id| some(id, "c1|x@Ann")).collect();
    assert_eq!(joined, expected);
    let response = t.internal("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-");
    let answered: Vec<(i32, String)> = driver
        .output_topic(&response, StringSerde, BytesSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, r)| (p, r.key))
        .collect();
    assert_eq!(answered.len(), ids.len());
    for (partition, id) in answered {
        assert_eq!(partition, partition_of(&id), "{id}");
    }
}

#[test]
fn results_carry_the_later_timestamp_of_the_order_and_the_customer() {
    for kind in [Kind::Inner, Kind::Left] {
        let driver = driver(kind);
        let orders = driver.input_topic("orders", StringSerde, Nullable(StringSerde));
        let customers = driver.input_topic("customers", StringSerde, Nullable(StringSerde));
        let read = || -> Vec<(String, Option<String>, i64)> {
            driver
                .output_topic("joined", StringSerde, Nullable(StringSerde))
                .read_records()
                .into_iter()
                .map(|r| (r.key, r.value, r.timestamp))
                .collect()
        };
        let row = |v: &str, ts: i64| (s("o1"), Some(s(v)), ts);
        customers.pipe_input_at(s("c1"), Some(s("Ann")), 50);
        orders.pipe_input_at(s("o1"), Some(s("c1|book")), 10);
        assert_eq!(read(), [row("c1|book@Ann", 50)]);
        customers.pipe_input_at(s("c1"), Some(s("Ann B.")), 60);
        assert_eq!(read(), [row("c1|book@Ann B.", 60)]);
        orders.pipe_input_at(s("o1"), Some(s("c1|books")), 70);
        assert_eq!(read(), [row("c1|books@Ann B.", 70)]);
        // Without a customer, the order's own timestamp.
        orders.pipe_input_at(s("o1"), Some(s("c9|books")), 65);
        let expected = match kind {
            Kind::Inner => (s("o1"), None, 65),
            Kind::Left => row("c9|books@?", 65),
        };
        assert_eq!(read(), [expected]);
    }
}
