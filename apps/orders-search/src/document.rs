//! The indexed form of an order event: [`OrderDocument`], its id (order id + state, so a
//! replayed record overwrites its own document instead of adding one) and the index's
//! explicit [`mapping`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orders_platform::records::{Order, OrderState, Product};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One order event as a document: the order's six fields, when the record was written
/// and where it sits in Kafka.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderDocument {
    /// The order id.
    pub id: String,
    /// The customer.
    #[serde(rename = "customerId")]
    pub customer_id: i64,
    /// The order's state in this event.
    pub state: OrderState,
    /// What is ordered.
    pub product: Product,
    /// How many.
    pub quantity: i32,
    /// Price of one.
    pub price: f64,
    /// The record timestamp, RFC 3339 in UTC with milliseconds.
    #[serde(rename = "@timestamp")]
    pub at_timestamp: String,
    /// The record timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Kafka partition of the record.
    pub partition: i32,
    /// Kafka offset of the record.
    pub offset: i64,
}

impl OrderDocument {
    /// The document of `order`, read at `partition`/`offset` with record timestamp
    /// `timestamp_ms` (ms since the epoch).
    pub fn new(order: &Order, timestamp_ms: i64, partition: i32, offset: i64) -> Self {
        OrderDocument {
            id: order.id.clone(),
            customer_id: order.customer_id,
            state: order.state,
            product: order.product,
            quantity: order.quantity,
            price: order.price,
            at_timestamp: rfc3339_millis(timestamp_ms),
            timestamp: timestamp_ms,
            partition,
            offset,
        }
    }

    /// The document id: order id, `-`, state (`17-VALIDATED`).
    pub fn document_id(&self) -> String {
        document_id(&self.id, self.state)
    }
}

/// The document id of order `id` in `state`: `<id>-<STATE>`.
pub fn document_id(id: &str, state: OrderState) -> String {
    let state = serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!("{id}-{state}")
}

/// `timestamp_ms` as RFC 3339 in UTC with milliseconds (`2026-11-27T21:58:00.123Z`);
/// negative times are clamped to the epoch.
pub fn rfc3339_millis(timestamp_ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(timestamp_ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Now, in ms since the epoch: the timestamp of a record that carries none.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The field every searchable field is copied to: what free-text search reads.
pub const TEXT_FIELD: &str = "text";

/// The index's settings and explicit mapping. Exact fields are `keyword`s, numbers
/// keep their types, both timestamps are dates (sorting "newest first" reads
/// `timestamp`), and the order's six fields are also copied into one analysed
/// [`TEXT_FIELD`] for free-text search. `dynamic: strict`: a document with another
/// field is rejected, not silently mapped.
pub fn mapping() -> Value {
    json!({
        "settings": {
            "number_of_shards": 1,
            "refresh_interval": "1s"
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "id": { "type": "keyword", "copy_to": TEXT_FIELD },
                "customerId": { "type": "long", "copy_to": TEXT_FIELD },
                "state": { "type": "keyword", "copy_to": TEXT_FIELD },
                "product": { "type": "keyword", "copy_to": TEXT_FIELD },
                "quantity": { "type": "integer", "copy_to": TEXT_FIELD },
                "price": { "type": "double", "copy_to": TEXT_FIELD },
                "@timestamp": { "type": "date" },
                "timestamp": { "type": "date", "format": "epoch_millis" },
                "partition": { "type": "integer" },
                "offset": { "type": "long" },
                TEXT_FIELD: { "type": "text" }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_carries_the_order_its_time_and_its_place() {
        let order = Order::created("17", 3, Product::Jumpers, 2, 9.5).in_state(OrderState::Failed);
        let document = OrderDocument::new(&order, 1_795_816_680_123, 2, 41);
        assert_eq!(document.document_id(), "17-FAILED");
        let json = serde_json::to_value(&document).unwrap();
        assert_eq!(
            json,
            json!({"id": "17", "customerId": 3, "state": "FAILED", "product": "JUMPERS",
                   "quantity": 2, "price": 9.5, "@timestamp": "2026-11-27T21:58:00.123Z",
                   "timestamp": 1_795_816_680_123_i64, "partition": 2, "offset": 41})
        );
        let back: OrderDocument = serde_json::from_value(json).unwrap();
        assert_eq!(back, document);
    }

    #[test]
    fn every_document_field_is_mapped() {
        let order = Order::created("1", 1, Product::Stockings, 1, 1.0);
        let json = serde_json::to_value(OrderDocument::new(&order, 0, 0, 0)).unwrap();
        let mapping = mapping();
        let properties = mapping["mappings"]["properties"].as_object().unwrap();
        for field in json.as_object().unwrap().keys() {
            assert!(properties.contains_key(field), "{field} is not mapped");
        }
        assert_eq!(rfc3339_millis(-5), "1970-01-01T00:00:00.000Z");
    }
}
