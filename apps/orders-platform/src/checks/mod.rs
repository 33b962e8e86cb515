//! The three checks every CREATED order goes through, each writing one
//! `OrderValidation` per order to `order-validations.v1`.

pub mod fraud;
pub mod inventory;
pub mod order_details;
