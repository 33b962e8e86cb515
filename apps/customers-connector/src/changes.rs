//! Change detection: what differs between the table and what was published.
//!
//! The connector's [`Position`] remembers, for every customer id it published, a
//! [`Fingerprint`] of the values it published. Comparing a snapshot of the table with it
//! gives the changes, in id order:
//!
//! * a row whose id was never published is new (Kafka Connect's incrementing mode on
//!   `id`, except that a row inserted with an id below the highest published one is
//!   not skipped);
//! * a row whose fingerprint differs was updated;
//! * a published id no longer in the table was deleted: it becomes a tombstone.
//!
//! Why fingerprints rather than a version column kept by triggers: the connector stays a
//! pure reader of a database it does not own (no schema change, no trigger to install
//! and to lose when someone recreates the table), it sees every kind of change
//! (inserts with low ids, updates, deletes, and changes made before the connector first
//! ran) and it needs no clock. The price is a full scan of the table per poll and 16
//! bytes of position per customer, which suits a table of customers (thousands, not
//! billions, of rows).

use std::fmt;

use orders_platform::records::Customer;

use crate::position::Position;

/// A 128-bit FNV-1a hash of a customer's published values, stable across builds and
/// platforms (it is stored in the position). Each field is length-prefixed, so values
/// that concatenate alike (`"ab","c"` and `"a","bc"`) differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

const FNV_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

impl Fingerprint {
    /// The fingerprint of `customer` (all six fields).
    pub fn of(customer: &Customer) -> Self {
        let mut hash = FNV_OFFSET;
        let mut feed = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u128::from(*byte);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        feed(&customer.id.to_be_bytes());
        for field in [
            &customer.first_name,
            &customer.last_name,
            &customer.email,
            &customer.address,
            &customer.level,
        ] {
            feed(&(field.len() as u64).to_be_bytes());
            feed(field.as_bytes());
        }
        Fingerprint(hash)
    }

    /// Reads the 32 hex digits [`Display`](fmt::Display) writes.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// One change to publish.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new or updated row: its current values.
    Upsert(Customer),
    /// A deleted row: a tombstone for its id.
    Delete(i64),
}

impl Change {
    /// The customer id the change is about (the record key).
    pub fn id(&self) -> i64 {
        match self {
            Change::Upsert(customer) => customer.id,
            Change::Delete(id) => *id,
        }
    }

    /// The fingerprint the position holds for the id after this change (`None`: the id
    /// leaves the position).
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        match self {
            Change::Upsert(customer) => Some(Fingerprint::of(customer)),
            Change::Delete(_) => None,
        }
    }
}

/// The changes that bring `position` to `rows` (a snapshot of the table in id order),
/// in id order.
pub fn detect(position: &Position, rows: &[Customer]) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut published = position.iter().peekable();
    for row in rows {
        // Published ids below this row's that the table no longer holds.
        while let Some(&(id, _)) = published.peek() {
            if id >= row.id {
                break;
            }
            changes.push(Change::Delete(id));
            published.next();
        }
        let previous = match published.peek() {
            Some(&(id, fingerprint)) if id == row.id => {
                published.next();
                Some(fingerprint)
            }
            _ => None,
        };
        if previous != Some(Fingerprint::of(row)) {
            changes.push(Change::Upsert(row.clone()));
        }
    }
    changes.extend(published.map(|(id, _)| Change::Delete(id)));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: i64, level: &str) -> Customer {
        Customer {
            id,
            first_name: format!("First{id}"),
            last_name: format!("Last{id}"),
            email: format!("c{id}@example.com"),
            address: format!("{id} Main Street"),
            level: level.into(),
        }
    }

    fn published(rows: &[Customer]) -> Position {
        let mut position = Position::default();
        for row in rows {
            position.apply(&Change::Upsert(row.clone()));
        }
        position
    }

    #[test]
    fn new_rows_come_in_id_order_and_unchanged_rows_not_at_all() {
        let rows = vec![customer(1, "gold"), customer(2, "silver")];
        assert_eq!(
            detect(&Position::default(), &rows),
            vec![
                Change::Upsert(rows[0].clone()),
                Change::Upsert(rows[1].clone())
            ]
        );
        assert!(detect(&published(&rows), &rows).is_empty());
    }

    #[test]
    fn updates_inserts_below_the_highest_id_and_deletes_are_changes() {
        let before = vec![
            customer(1, "gold"),
            customer(5, "silver"),
            customer(9, "bronze"),
        ];
        let position = published(&before);
        let after = vec![
            customer(1, "gold"),
            customer(3, "bronze"),
            customer(5, "platinum"),
            customer(10, "gold"),
        ];
        assert_eq!(
            detect(&position, &after),
            vec![
                Change::Upsert(after[1].clone()),
                Change::Upsert(after[2].clone()),
                Change::Delete(9),
                Change::Upsert(after[3].clone()),
            ]
        );
        assert_eq!(
            detect(&position, &[]),
            vec![Change::Delete(1), Change::Delete(5), Change::Delete(9)]
        );
    }

    #[test]
    fn every_field_counts_and_fields_do_not_run_into_each_other() {
        let base = customer(1, "gold");
        let variants = [
            Customer {
                first_name: "x".into(),
                ..base.clone()
            },
            Customer {
                last_name: "x".into(),
                ..base.clone()
            },
            Customer {
                email: "x".into(),
                ..base.clone()
            },
            Customer {
                address: "x".into(),
                ..base.clone()
            },
            Customer {
                level: "silver".into(),
                ..base.clone()
            },
            Customer {
                id: 2,
                ..base.clone()
            },
        ];
        for variant in &variants {
            assert_ne!(
                Fingerprint::of(variant),
                Fingerprint::of(&base),
                "{variant:?}"
            );
        }
        let ab_c = Customer {
            first_name: "ab".into(),
            last_name: "c".into(),
            ..base.clone()
        };
        let a_bc = Customer {
            first_name: "a".into(),
            last_name: "bc".into(),
            ..base
        };
        assert_ne!(Fingerprint::of(&ab_c), Fingerprint::of(&a_bc));
    }

    #[test]
    fn fingerprints_are_stable_and_read_back_from_hex() {
        // Stored in the position topic: a change of the hash would re-send every row.
        // The value was computed independently (FNV-1a 128 in Python).
        let fingerprint = Fingerprint::of(&customer(1, "gold"));
        assert_eq!(fingerprint.to_string(), "5e7cd7cfcfc32b965b5fa7c17ac6a54e");
        assert_eq!(
            Fingerprint::from_hex(&fingerprint.to_string()),
            Some(fingerprint)
        );
        assert_eq!(Fingerprint::from_hex("xyz"), None);
    }
}
