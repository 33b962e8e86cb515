//! Type-erased keys, values and records.

use std::any::Any;

use crate::record::Record;

/// What a key or value type must be to flow through a topology: cloneable (a record
/// forwarded to several children is cloned), sendable between threads, and owned.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// A slot that holds one [`Record`] of some key and value types (an
/// `Option<Record<K, V>>`), the types erased. Records move between the nodes of a task's
/// graph through a borrowed slot ([`ErasedRecord`]): forwarding allocates nothing; only a
/// record that waits (decoded ahead of processing) or is copied for a second child is
/// boxed, once for key and value together.
pub(crate) trait RecordSlot: Send {
    /// The slot as `Any`, to be downcast to `Option<Record<K, V>>`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// A boxed copy of the record in the slot.
    fn clone_boxed(&self) -> Box<dyn RecordSlot>;
    /// The key and value type names, for type mismatch errors.
    fn type_names(&self) -> (&'static str, &'static str);
}

impl<K: Data, V: Data> RecordSlot for Option<Record<K, V>> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_boxed(&self) -> Box<dyn RecordSlot> {
        Box::new(self.clone())
    }
    fn type_names(&self) -> (&'static str, &'static str) {
        (std::any::type_name::<K>(), std::any::type_name::<V>())
    }
}

/// A boxed record of erased types, for records that wait before they are processed.
pub(crate) type BoxedRecord = Box<dyn RecordSlot>;

/// Boxes `record`, erasing its types.
pub(crate) fn boxed<K: Data, V: Data>(record: Record<K, V>) -> BoxedRecord {
    Box::new(Some(record))
}

/// A record whose key and value types are erased, borrowed from its slot: the receiving
/// node takes it out with [`ErasedRecord::into_typed`].
pub(crate) struct ErasedRecord<'a> {
    slot: &'a mut dyn RecordSlot,
}

impl<'a> ErasedRecord<'a> {
    /// The record in `slot` (which must hold one).
    pub fn new<K: Data, V: Data>(slot: &'a mut Option<Record<K, V>>) -> Self {
        ErasedRecord { slot }
    }

    /// The record in a boxed slot.
    pub fn from_boxed(slot: &'a mut BoxedRecord) -> Self {
        ErasedRecord { slot: &mut **slot }
    }

    /// A boxed copy, for all but the last of several receivers.
    pub fn clone_boxed(&self) -> BoxedRecord {
        self.slot.clone_boxed()
    }

    /// Takes the record out with its types restored; `Err` names the types that were
    /// found instead.
    pub fn into_typed<K: Data, V: Data>(
        self,
    ) -> Result<Record<K, V>, (&'static str, &'static str)> {
        let names = self.slot.type_names();
        self.slot
            .as_any_mut()
            .downcast_mut::<Option<Record<K, V>>>()
            .and_then(Option::take)
            .ok_or(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erased_records_round_trip_and_report_wrong_types() {
        let mut slot = Some(Record::new("k".to_string(), 5i64, 3));
        let mut copy = ErasedRecord::new(&mut slot).clone_boxed();
        let back: Record<String, i64> = ErasedRecord::new(&mut slot).into_typed().unwrap();
        assert_eq!(back, Record::new("k".to_string(), 5, 3));
        assert_eq!(slot, None, "the receiver takes the record out of its slot");
        let wrong = ErasedRecord::from_boxed(&mut copy)
            .into_typed::<String, i32>()
            .unwrap_err();
        assert_eq!(wrong, ("alloc::string::String", "i64"));
        let again: Record<String, i64> = ErasedRecord::from_boxed(&mut copy).into_typed().unwrap();
        assert_eq!(again.value, 5, "a mismatch leaves the record in its slot");
    }
}
