//! A global table under the runtime, against the real broker: it is filled from every
//! partition before processing starts on each instance, and follows updates. Start the
//! broker with `dev/kafka start` (or run `dev/test`).

use std::time::{Duration, Instant};

use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, require_broker, within, Isolation, TestTopic,
};

#[test]
fn global_tables_are_complete_before_processing_and_follow_updates() {
    within(Duration::from_secs(120), || {
        require_broker();
        let customers = TestTopic::new("global-customers", 3);
        let orders = TestTopic::new("global-orders", 2);
        let output = TestTopic::new("global-out", 2);
        let keys: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
        produce_keyed(
            customers.name(),
            keys.iter().map(|k| (k.clone(), format!("name-of-{k}"))),
        );
        // Orders exist before the application starts: every one must find its customer,
        // whichever partition the customer is on.
        produce_keyed(
            orders.name(),
            keys.iter().map(|k| (format!("order-{k}"), k.clone())),
        );

        let builder = StreamsBuilder::new();
        let table = builder.global_table(
            customers.name(),
            Consumed::with(StringSerde, StringSerde),
            Materialized::new(),
        );
        builder
            .stream(orders.name(), Consumed::with(StringSerde, StringSerde))
            .join_global(
                &table,
                |_, customer| customer.clone(),
                |_, name| name.clone(),
            )
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let app = format!("it-global-{}", uuid::Uuid::new_v4().simple());
        let streams = KafkaStreams::new(
            builder.build().unwrap(),
            StreamsConfig::new(&app, bootstrap()).with_commit_interval(Duration::from_millis(200)),
        )
        .unwrap();
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));

        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let out = consume_to_end(
                    output.name(),
                    Isolation::ReadUncommitted,
                    Duration::from_secs(10),
                );
                if out.len() >= n || Instant::now() > deadline {
                    return out;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        let out = wait_for(30);
        assert_eq!(out.len(), 30, "every order joined");
        assert!(out
            .iter()
            .all(|r| r.value_str()
                == format!("name-of-{}", r.key_str().trim_start_matches("order-"))));

        // An update of the global topic reaches later joins (the global thread applies it
        // asynchronously, so keep ordering until one sees it).
        produce_keyed(customers.name(), [("c7", "renamed")]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sent = 0;
        loop {
            sent += 1;
            produce_keyed(orders.name(), [(format!("order-late-{sent}"), "c7")]);
            let out = wait_for(30 + sent);
            if out
                .iter()
                .any(|r| r.key_str().starts_with("order-late") && r.value_str() == "renamed")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the update never reached the global store"
            );
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}
