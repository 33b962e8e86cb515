//! The Avro schemas of the platform's records, read from `schemas/avro/` at compile
//! time: the files are the contract; the record types follow them (the tests below
//! prove each type writes and reads under its schema, field for field).

/// The writer schema of each record type, in Avro's JSON form.
pub mod avsc {
    /// `io.streams.orders.Order`.
    pub const ORDER: &str = include_str!("../../../schemas/avro/Order.avsc");
    /// `io.streams.orders.OrderValidation`.
    pub const ORDER_VALIDATION: &str = include_str!("../../../schemas/avro/OrderValidation.avsc");
    /// `io.streams.orders.OrderValue`.
    pub const ORDER_VALUE: &str = include_str!("../../../schemas/avro/OrderValue.avsc");
    /// `io.streams.orders.Payment`.
    pub const PAYMENT: &str = include_str!("../../../schemas/avro/Payment.avsc");
    /// `io.streams.orders.Customer`.
    pub const CUSTOMER: &str = include_str!("../../../schemas/avro/Customer.avsc");
    /// `io.streams.orders.OrderEnriched`.
    pub const ORDER_ENRICHED: &str = include_str!("../../../schemas/avro/OrderEnriched.avsc");
    /// `io.streams.orders.EnrichedOrder`.
    pub const ENRICHED_ORDER: &str = include_str!("../../../schemas/avro/EnrichedOrder.avsc");
}

#[cfg(test)]
mod tests {
    use apache_avro::{from_avro_datum, from_value, to_avro_datum, to_value, Schema};
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::avsc;
    use crate::records::*;

    /// `value` is valid under `schema`, and reads back equal from its Avro bytes.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        schema: &str,
        value: T,
    ) {
        let schema = Schema::parse_str(schema).expect("the schema parses");
        let avro = to_value(&value)
            .expect("the value converts")
            .resolve(&schema);
        let avro = avro
            .unwrap_or_else(|e| panic!("{value:?} does not match {}: {e}", schema.name().unwrap()));
        let bytes = to_avro_datum(&schema, avro).expect("the value writes");
        let read = from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("the bytes read");
        assert_eq!(
            from_value::<T>(&read).expect("the value converts back"),
            value
        );
    }

    fn order(state: OrderState, product: Product) -> Order {
        Order {
            state,
            ..Order::created("7", 3, product, 2, 12.5)
        }
    }

    #[test]
    fn every_record_type_agrees_with_its_schema() {
        for state in [
            OrderState::Created,
            OrderState::Validated,
            OrderState::Failed,
            OrderState::Shipped,
        ] {
            for product in Product::ALL {
                round_trip(avsc::ORDER, order(state, product));
            }
        }
        use OrderValidationResult::*;
        use OrderValidationType::*;
        for check in [InventoryCheck, FraudCheck, OrderDetailsCheck] {
            for result in [Pass, Fail, Error] {
                round_trip(
                    avsc::ORDER_VALIDATION,
                    OrderValidation::new("7", check, result),
                );
            }
        }
        round_trip(
            avsc::ORDER_VALUE,
            OrderValue {
                order: order(OrderState::Created, Product::Jumpers),
                value: 25.0,
            },
        );
        round_trip(
            avsc::PAYMENT,
            Payment {
                id: "Payment:1234".into(),
                order_id: "7".into(),
                ccy: "CZK".into(),
                amount: 1000.0,
            },
        );
        round_trip(
            avsc::CUSTOMER,
            Customer {
                id: 1,
                first_name: "Jana".into(),
                last_name: "Nováková".into(),
                email: "jana@example.com".into(),
                address: "Praha".into(),
                level: "platinum".into(),
            },
        );
        round_trip(
            avsc::ORDER_ENRICHED,
            OrderEnriched {
                id: "7".into(),
                customer_id: 1,
                customer_level: "gold".into(),
            },
        );
        let customer = Customer {
            id: 5,
            first_name: "Ema".into(),
            last_name: "Svobodová".into(),
            email: "ema@example.com".into(),
            address: "Brno".into(),
            level: "gold".into(),
        };
        for state in [OrderState::Created, OrderState::Validated] {
            let order = order(state, Product::Underpants);
            round_trip(
                avsc::ENRICHED_ORDER,
                EnrichedOrder::new(&order, Some(&customer)),
            );
            round_trip(avsc::ENRICHED_ORDER, EnrichedOrder::new(&order, None));
        }
    }

    #[test]
    fn the_schemas_name_every_field_of_the_types_and_no_other() {
        // A field added to a type but not to its schema (or the reverse) would be
        // dropped silently by resolution; compare the names.
        let fields = |schema: &str| -> Vec<String> {
            let json: serde_json::Value = serde_json::from_str(schema).unwrap();
            let mut names: Vec<String> = json["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        };
        let keys = |value: serde_json::Value| -> Vec<String> {
            let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            names.sort();
            names
        };
        let order = order(OrderState::Created, Product::Jumpers);
        assert_eq!(
            fields(avsc::ORDER),
            keys(serde_json::to_value(&order).unwrap())
        );
        assert_eq!(
            fields(avsc::ORDER_VALIDATION),
            keys(
                serde_json::to_value(OrderValidation::new(
                    "1",
                    OrderValidationType::FraudCheck,
                    OrderValidationResult::Pass
                ))
                .unwrap()
            )
        );
        assert_eq!(
            fields(avsc::PAYMENT),
            keys(
                serde_json::to_value(Payment {
                    id: "p".into(),
                    order_id: "1".into(),
                    ccy: "CZK".into(),
                    amount: 1.0
                })
                .unwrap()
            )
        );
        assert_eq!(
            fields(avsc::CUSTOMER),
            keys(
                serde_json::json!({"id":1,"firstName":"","lastName":"","email":"","address":"","level":""})
            )
        );
        let customer: Customer = serde_json::from_value(
            serde_json::json!({"id":1,"firstName":"","lastName":"","email":"","address":""}),
        )
        .unwrap();
        assert_eq!(customer.level, "bronze", "the schema's default level");
        assert_eq!(
            fields(avsc::ORDER_ENRICHED),
            keys(
                serde_json::to_value(OrderEnriched {
                    id: "1".into(),
                    customer_id: 1,
                    customer_level: "gold".into()
                })
                .unwrap()
            )
        );
        assert_eq!(
            fields(avsc::ENRICHED_ORDER),
            keys(serde_json::to_value(EnrichedOrder::new(&order, None)).unwrap())
        );
    }
}
