//! Reading the JSON body of `POST /v1/orders` into an [`Order`], with errors that name
//! the field at fault.

use orders_platform::records::{Order, OrderState, Product};
use serde::Deserialize;

/// Why a body is not an order: the field (a path like `customerId`, empty for the
/// body as a whole) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BodyError {
    /// The field at fault, `""` for the body itself.
    pub field: String,
    /// What is wrong.
    pub error: String,
}

/// The body as posted: the state may be left out (it is then CREATED).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderBody {
    id: String,
    customer_id: i64,
    #[serde(default)]
    state: Option<OrderState>,
    product: Product,
    quantity: i32,
    price: f64,
}

/// The order `body` describes.
pub fn parse(body: &[u8]) -> Result<Order, BodyError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let order: OrderBody = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        BodyError {
            field: if field == "." { String::new() } else { field },
            error: e.inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|e| BodyError {
        field: String::new(),
        error: e.to_string(),
    })?;
    let invalid = |field: &str, error: &str| BodyError {
        field: field.to_string(),
        error: error.to_string(),
    };
    if order.id.trim().is_empty() {
        return Err(invalid("id", "must not be empty"));
    }
    if order.id.parse::<i64>().is_ok_and(|n| n < 0) {
        return Err(invalid("id", "must not be negative"));
    }
    if order.id.len() > 256 {
        return Err(invalid("id", "must be at most 256 bytes"));
    }
    Ok(Order {
        id: order.id,
        customer_id: order.customer_id,
        state: order.state.unwrap_or(OrderState::Created),
        product: order.product,
        quantity: order.quantity,
        price: order.price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn a_valid_body_is_an_order_created_by_default() {
        let order =
            parse(br#"{"id":"1","customerId":2,"product":"JUMPERS","quantity":10,"price":100.0}"#)
                .unwrap();
        assert_eq!(order, Order::created("1", 2, Product::Jumpers, 10, 100.0));
        let order = parse(br#"{"id":"1","customerId":2,"state":"FAILED","product":"JUMPERS","quantity":1,"price":1}"#).unwrap();
        assert_eq!(order.state, OrderState::Failed);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(
                r#"{"id":"1","customerId":"two","product":"JUMPERS","quantity":1,"price":1.0}"#
            ),
            "customerId"
        );
        assert_eq!(
            field_of(r#"{"id":"1","customerId":2,"product":"SOCKS","quantity":1,"price":1.0}"#),
            "product"
        );
        assert_eq!(
            field_of(
                r#"{"id":"1","customerId":2,"state":"LOST","product":"JUMPERS","quantity":1,"price":1.0}"#
            ),
            "state"
        );
        assert_eq!(
            field_of(r#"{"id":"-3","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0}"#),
            "id"
        );
        assert_eq!(
            field_of(r#"{"id":"","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0}"#),
            "id"
        );
        let missing =
            parse(br#"{"customerId":2,"product":"JUMPERS","quantity":1,"price":1.0}"#).unwrap_err();
        assert!(missing.error.contains("missing field `id`"), "{missing:?}");
        let malformed = parse(b"{\"id\":").unwrap_err();
        assert_eq!(malformed.field, "id");
        assert!(parse(
            br#"{"id":"1","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0} trailing"#
        )
        .is_err());
        assert_eq!(
            field_of(
                r#"{"id":"1","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0,"colour":"red"}"#
            ),
            "colour"
        );
    }
}
