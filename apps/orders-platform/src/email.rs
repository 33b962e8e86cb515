//! The email service: payments re-keyed by their order, joined with the order's events
//! within one minute of event time, then with the order's customer (a global table over
//! `customers`, inner: no customer, no email); each match is one email, "sent" through
//! an [`Emailer`]. Separately, every order event whose customer exists becomes an
//! [`OrderEnriched`] record on the topic of the customer's level (`platinum`, `gold`,
//! `silver` or `bronze`).
//!
//! As in the original service, every order event (CREATED, then VALIDATED or FAILED)
//! joins the payment: an order validated within the minute gives two emails. Payments
//! may arrive a minute late at most (the join's grace): the populator sends each
//! payment right after its order, so a late one means a stalled producer.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use streams_core::dsl::JoinWindows;
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder, Topology};

use crate::records::{Customer, Order, OrderEnriched, Payment};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

/// How far apart in event time an order and its payment may be.
pub const PAYMENT_WINDOW: Duration = Duration::from_secs(60);
/// The email service's copy of the `customers` table.
pub const CUSTOMERS_STORE: &str = "email-customers";

/// One email: an order event, its payment and its customer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Email {
    /// The order event.
    pub order: Order,
    /// Its payment.
    pub payment: Payment,
    /// Its customer.
    pub customer: Customer,
}

/// Sends emails. The service logs them ([`LoggingEmailer`]); tests capture them.
pub trait Emailer: Send + Sync + 'static {
    /// Sends `email`.
    fn send(&self, email: &Email);
}

/// Writes each email as one structured log line (target `email`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoggingEmailer;

impl Emailer for LoggingEmailer {
    fn send(&self, email: &Email) {
        let Email {
            order,
            payment,
            customer,
        } = email;
        tracing::info!(
            target: "email",
            to = %customer.email,
            customer_id = customer.id,
            customer_name = format!("{} {}", customer.first_name, customer.last_name),
            customer_level = %customer.level,
            order_id = %order.id,
            order_state = ?order.state,
            product = ?order.product,
            quantity = order.quantity,
            price = order.price,
            payment_id = %payment.id,
            amount = payment.amount,
            ccy = %payment.ccy,
            "email sent"
        );
    }
}

/// The service core: orders, payments and customers in; emails through `emailer`, and
/// `OrderEnriched` records to the customer-level topics.
pub fn topology(
    serdes: &PlatformSerdes,
    topics: &PlatformTopics,
    emailer: Arc<dyn Emailer>,
) -> Topology {
    let builder = StreamsBuilder::new();
    let orders = builder.stream(
        &topics.orders,
        Consumed::with(StringSerde, serdes.order.clone()),
    );
    let payments = builder
        .stream(
            &topics.payments,
            Consumed::with(StringSerde, serdes.payment.clone()),
        )
        .select_key(|_, payment| payment.order_id.clone());
    let customers = builder.global_table(
        &topics.customers,
        Consumed::with(I64Serde, serdes.customer.clone()),
        Materialized::as_store(CUSTOMERS_STORE),
    );

    orders
        .join_stream(
            &payments,
            |order: &Order, payment: &Payment| (order.clone(), payment.clone()),
            JoinWindows::of_time_difference_and_grace(PAYMENT_WINDOW, PAYMENT_WINDOW),
        )
        .join_global(
            &customers,
            |_, (order, _): &(Order, Payment)| order.customer_id,
            |(order, payment): &(Order, Payment), customer: &Customer| Email {
                order: order.clone(),
                payment: payment.clone(),
                customer: customer.clone(),
            },
        )
        .foreach(move |_, email| emailer.send(email));

    let levels = topics.clone();
    orders
        .join_global(
            &customers,
            |_, order: &Order| order.customer_id,
            |order: &Order, customer: &Customer| OrderEnriched {
                id: order.id.clone(),
                customer_id: order.customer_id,
                customer_level: customer.level.clone(),
            },
        )
        .to_dynamic(
            move |_, enriched: &OrderEnriched| {
                levels.customer_level(&enriched.customer_level).to_string()
            },
            Produced::with(StringSerde, serdes.order_enriched.clone()),
        );
    builder.build().expect("email topology")
}
