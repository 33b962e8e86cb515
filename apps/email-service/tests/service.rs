//! The email service binary on the broker and registry, with Avro records as the
//! platform writes them: a customer, an order and its payment within a minute give one
//! email (scenario 9), logged as one line; customer 5's order lands in `gold`; an order
//! of customer 0 (no row) is neither mailed nor routed. Start the services with
//! `dev/test`.

use std::time::{Duration, Instant};

use orders_platform::records::{Customer, Order, OrderEnriched, Payment, Product};
use orders_platform::serdes::PlatformSerdes;
use service_kit::service::registry;
use service_kit::ServiceConfig;
use streams_core::serde::Serde;
use streams_test_support::{
    bootstrap, consume_to_end, free_port, produce_keyed, registry_url, require_broker,
    require_registry, within, ChaosProcess, Isolation, TestTopic,
};

fn customer(id: i64, level: &str) -> Customer {
    Customer {
        id,
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        email: format!("customer{id}@example.com"),
        address: format!("{id} Main Street"),
        level: level.into(),
    }
}

/// The service's output so far (its logs go to stderr).
fn log(service: &ChaosProcess) -> String {
    std::fs::read_to_string(service.log_path()).unwrap_or_default()
}

/// Waits (at most a minute) until the service's log holds `needle`.
fn wait_for_log(service: &ChaosProcess, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log(service).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            service.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mails_orders_with_payment_and_customer_and_routes_them_by_level() {
    within(Duration::from_secs(180), || {
        require_broker();
        require_registry();
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let config = ServiceConfig::on_cluster(bootstrap(), registry_url(), &prefix);
        let topics = config.topics();
        let _cleanup: Vec<TestTopic> = [
            topics.orders.clone(),
            topics.payments.clone(),
            topics.customers.clone(),
            format!("{prefix}email-service-dead-letters"),
        ]
        .into_iter()
        .chain(topics.customer_levels.iter().cloned())
        .map(|t| TestTopic::adopt(&t))
        .collect();
        let state = tempfile::tempdir().unwrap();
        let mut service = ChaosProcess::platform_service(
            "email",
            env!("CARGO_BIN_EXE_email-service"),
            &prefix,
            free_port(),
            state.path(),
        );
        service.start();
        wait_for_log(&service, "state Rebalancing -> Running");

        let serdes = PlatformSerdes::avro(registry(&config, &[]).unwrap()).unwrap();
        let customers = [customer(2, "platinum"), customer(5, "gold")];
        produce_keyed(
            &topics.customers,
            customers.iter().map(|c| {
                let value = serdes.customer.serialize(&topics.customers, c).unwrap();
                (c.id.to_be_bytes().to_vec(), value.unwrap())
            }),
        );
        // The global table is read before processing starts; give it the rows first.
        std::thread::sleep(Duration::from_secs(2));
        let orders = [
            Order::created("1", 2, Product::Jumpers, 1, 1.0),
            Order::created("2", 5, Product::Underpants, 1, 1.0),
            Order::created("3", 0, Product::Stockings, 1, 1.0),
        ];
        produce_keyed(
            &topics.orders,
            orders.iter().map(|o| {
                let value = serdes.order.serialize(&topics.orders, o).unwrap();
                (o.id.clone().into_bytes(), value.unwrap())
            }),
        );
        produce_keyed(
            &topics.payments,
            ["1", "3"].map(|order_id| {
                let payment = Payment {
                    id: "Payment:1234".into(),
                    order_id: order_id.into(),
                    ccy: "CZK".into(),
                    amount: 1000.0,
                };
                let value = serdes
                    .payment
                    .serialize(&topics.payments, &payment)
                    .unwrap();
                (payment.id.into_bytes(), value.unwrap())
            }),
        );

        wait_for_log(&service, "email sent");
        let gold = consume_to_end(
            topics.customer_level("gold"),
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        );
        let routed: Vec<OrderEnriched> = gold
            .iter()
            .map(|r| {
                serdes
                    .order_enriched
                    .deserialize(topics.customer_level("gold"), r.value.as_deref())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            routed,
            vec![OrderEnriched {
                id: "2".into(),
                customer_id: 5,
                customer_level: "gold".into()
            }]
        );
        let platinum = consume_to_end(
            topics.customer_level("platinum"),
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        );
        assert_eq!(platinum.len(), 1, "order 1 of customer 2");
        for level in ["silver", "bronze"] {
            let records = consume_to_end(
                topics.customer_level(level),
                Isolation::ReadCommitted,
                Duration::from_secs(10),
            );
            assert!(
                records.is_empty(),
                "order 3 (customer 0) is not routed to {level}"
            );
        }
        let emails: Vec<String> = log(&service)
            .lines()
            .filter(|l| l.contains("email sent"))
            .map(String::from)
            .collect();
        assert_eq!(emails.len(), 1, "one email: {emails:#?}");
        for part in [
            "customer2@example.com",
            "order_id=1",
            "payment_id=Payment:1234",
            "amount=1000",
        ] {
            assert!(emails[0].contains(part), "{part} in {}", emails[0]);
        }
        let status = service.terminate(Duration::from_secs(30));
        assert!(status.success(), "{}", service.log_tail(20));
    });
}
