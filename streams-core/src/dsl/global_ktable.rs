//! `GlobalKTable`: a table fully replicated on every instance, joinable by any key.

use std::marker::PhantomData;

/// A table read in full (every partition) by every instance into a global store, and
/// kept up to date as its topic changes. Streams join it through a key selector, so no
/// co-partitioning is needed. Made by
/// [`StreamsBuilder::global_table`](crate::StreamsBuilder::global_table).
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    pub(crate) types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            store: self.store.clone(),
            types: PhantomData,
        }
    }
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of the global store holding the table, readable from processors with
    /// [`global_store`](crate::processor::TaskContext::global_store).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}
