//! Global tables on the test driver: every task reads the whole table, joins pick the
//! row by a key computed from the record, and updates are visible at once.

use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder};

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn streams_join_a_global_table_by_a_selected_key_in_every_partition() {
    let builder = StreamsBuilder::new();
    let customers = builder.global_table(
        "customers",
        Consumed::with(I64Serde, StringSerde),
        Materialized::as_store("customers"),
    );
    assert_eq!(customers.store_name(), "customers");
    // Orders keyed by order id carry "customer-id:item".
    let orders = builder.stream("orders", Consumed::with(StringSerde, StringSerde));
    let customer_of = |_: &String, v: &String| {
        v.split(':')
            .next()
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(-1)
    };
    orders
        .join_global(&customers, customer_of, |order, name| {
            format!("{order} by {name}")
        })
        .to("enriched", Produced::with(StringSerde, StringSerde));
    orders
        .left_join_global(&customers, customer_of, |order, name| {
            format!("{order} by {}", name.map_or("nobody", String::as_str))
        })
        .to("enriched-all", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_partitions("orders", 4),
    );
    let customers_in = driver.input_topic("customers", I64Serde, Nullable(StringSerde));
    let orders_in = driver.input_topic("orders", StringSerde, StringSerde);
    customers_in.pipe_input(1, Some(s("ann")));
    customers_in.pipe_input(2, Some(s("bob")));
    for (id, v) in [
        ("o1", "1:tea"),
        ("o2", "2:jam"),
        ("o3", "3:pie"),
        ("o4", "1:cup"),
    ] {
        orders_in.pipe_input(s(id), s(v));
    }
    customers_in.pipe_input(1, Some(s("ann b.")));
    customers_in.pipe_input(2, None); // bob leaves
    orders_in.pipe_input(s("o5"), s("1:pot"));
    orders_in.pipe_input(s("o6"), s("2:mug"));

    let mut enriched = driver
        .output_topic("enriched", StringSerde, StringSerde)
        .read_key_values();
    enriched.sort();
    assert_eq!(
        enriched,
        [
            (s("o1"), s("1:tea by ann")),
            (s("o2"), s("2:jam by bob")),
            (s("o4"), s("1:cup by ann")),
            (s("o5"), s("1:pot by ann b.")),
        ]
    );
    let mut all = driver
        .output_topic("enriched-all", StringSerde, StringSerde)
        .read_values();
    all.sort();
    assert!(
        all.contains(&s("3:pie by nobody")) && all.contains(&s("2:mug by nobody")),
        "{all:?}"
    );
    assert_eq!(all.len(), 6);
}
