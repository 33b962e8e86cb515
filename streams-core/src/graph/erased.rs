//! Type-erased keys, values and records.

use std::any::Any;

use crate::record::{Headers, Record};

/// What a key or value type must be to flow through a topology: cloneable (a record
/// forwarded to several children is cloned), sendable between threads, and owned.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// A boxed key or value of any [`Data`] type.
pub(crate) trait AnyData: Send {
    fn clone_box(&self) -> Box<dyn AnyData>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn type_name(&self) -> &'static str;
}

impl<T: Data> AnyData for T {
    fn clone_box(&self) -> Box<dyn AnyData> {
        Box::new(self.clone())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

impl Clone for Box<dyn AnyData> {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}

/// A record whose key and value types are erased.
#[derive(Clone)]
pub(crate) struct ErasedRecord {
    pub key: Box<dyn AnyData>,
    pub value: Box<dyn AnyData>,
    pub timestamp: i64,
    pub headers: Headers,
}

impl ErasedRecord {
    pub fn from_typed<K: Data, V: Data>(record: Record<K, V>) -> Self {
        ErasedRecord {
            key: Box::new(record.key),
            value: Box::new(record.value),
            timestamp: record.timestamp,
            headers: record.headers,
        }
    }

    /// Restores the types; `Err` names the types that were found instead.
    pub fn into_typed<K: Data, V: Data>(
        self,
    ) -> Result<Record<K, V>, (&'static str, &'static str)> {
        // Through the trait object: `Box<dyn AnyData>` is itself `AnyData`.
        let names = ((*self.key).type_name(), (*self.value).type_name());
        match (
            self.key.into_any().downcast::<K>(),
            self.value.into_any().downcast::<V>(),
        ) {
            (Ok(key), Ok(value)) => Ok(Record {
                key: *key,
                value: *value,
                timestamp: self.timestamp,
                headers: self.headers,
            }),
            _ => Err(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erased_records_round_trip_and_report_wrong_types() {
        let r = ErasedRecord::from_typed(Record::new("k".to_string(), 5i64, 3));
        let back: Record<String, i64> = r.clone().into_typed().unwrap();
        assert_eq!(back, Record::new("k".to_string(), 5, 3));
        let wrong = r.into_typed::<String, i32>().unwrap_err();
        assert_eq!(wrong.1, "i64");
    }
}
