//! [`InMemoryKeyValueStore`]: a key-value store in a `BTreeMap`.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{inverted, KeyValue, KeyValueStore};
use crate::error::{Result, StoreError};
use crate::restore::ChangelogRecord;
use crate::store::StateStore;

/// A non-persistent key-value store; it is rebuilt from the changelog on every start.
#[derive(Debug)]
pub struct InMemoryKeyValueStore {
    name: String,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    open: bool,
}

impl InMemoryKeyValueStore {
    /// An empty, open store.
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryKeyValueStore {
            name: name.into(),
            map: BTreeMap::new(),
            open: true,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(StoreError::Closed(self.name.clone()))
        }
    }

    fn collect_range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        reverse: bool,
    ) -> Result<Vec<KeyValue>> {
        self.check_open()?;
        if inverted(from, to) {
            return Ok(Vec::new());
        }
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Included);
        let range = self
            .map
            .range::<[u8], _>((lower, upper))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(if reverse {
            range.rev().collect()
        } else {
            range.collect()
        })
    }
}

impl StateStore for InMemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn flush(&mut self) -> Result<()> {
        self.check_open()
    }

    fn close(&mut self) -> Result<()> {
        self.open = false;
        self.map.clear();
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.check_open()?;
        for (key, value) in records {
            match value {
                Some(v) => self.map.insert(key.clone(), v.clone()),
                None => self.map.remove(key),
            };
        }
        Ok(())
    }
}

impl KeyValueStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_open()?;
        self.map.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if let Some(existing) = self.map.get(key) {
            return Ok(Some(existing.clone()));
        }
        self.map.insert(key.to_vec(), value.to_vec());
        Ok(None)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        Ok(self.map.remove(key))
    }

    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.restore_batch(entries)
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.collect_range(from, to, false)
    }

    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.collect_range(from, to, true)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        self.check_open()?;
        Ok(self
            .map
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.check_open()?;
        Ok(self.map.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_value::conformance;

    #[test]
    fn conforms() {
        conformance::run_all(&mut || InMemoryKeyValueStore::new("kv"));
    }

    #[test]
    fn is_not_persistent_and_counts_exactly() {
        let mut store = InMemoryKeyValueStore::new("kv");
        assert!(!store.persistent());
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        assert_eq!(store.approximate_num_entries().unwrap(), 2);
    }
}
