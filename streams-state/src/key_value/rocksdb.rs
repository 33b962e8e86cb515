//! [`RocksDbKeyValueStore`]: a persistent key-value store, one RocksDB database per store.

use std::path::Path;

use ::rocksdb::WriteBatch;

use super::{inverted, KeyValue, KeyValueStore};
use crate::error::Result;
use crate::key_layout::{key_successor, prefix_successor};
use crate::restore::ChangelogRecord;
use crate::rocks::{Db, RocksDbConfig};
use crate::store::StateStore;

/// A key-value store in its own RocksDB database at `<task dir>/rocksdb/<name>`, with raw
/// keys as RocksDB keys (RocksDB's default bytewise order is the store's order).
pub struct RocksDbKeyValueStore {
    db: Db,
}

impl RocksDbKeyValueStore {
    /// Opens or creates the store `name` inside the task directory `task_dir`.
    pub fn open(name: &str, task_dir: &Path, config: &RocksDbConfig) -> Result<Self> {
        Ok(RocksDbKeyValueStore {
            db: Db::open(name, task_dir, config)?,
        })
    }

    fn collect(
        &self,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        reverse: bool,
    ) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        self.db.scan(lower, upper, reverse, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    fn bounded(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        reverse: bool,
    ) -> Result<Vec<KeyValue>> {
        if inverted(from, to) {
            self.db.check_open()?;
            return Ok(Vec::new());
        }
        let upper = to.map(key_successor);
        self.collect(from, upper.as_deref(), reverse)
    }
}

impl StateStore for RocksDbKeyValueStore {
    fn name(&self) -> &str {
        self.db.name()
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&mut self) -> Result<()> {
        self.db.flush()
    }

    fn close(&mut self) -> Result<()> {
        self.db.close()
    }

    fn is_open(&self) -> bool {
        self.db.is_open()
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.put_all(records)
    }
}

impl KeyValueStore for RocksDbKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put(key, value)
    }

    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(existing) = self.db.get(key)? {
            return Ok(Some(existing));
        }
        self.db.put(key, value)?;
        Ok(None)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let old = self.db.get(key)?;
        if old.is_some() {
            self.db.delete(key)?;
        }
        Ok(old)
    }

    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (key, value) in entries {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        self.db.write(batch)
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.bounded(from, to, false)
    }

    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.bounded(from, to, true)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        let upper = prefix_successor(prefix);
        self.collect(Some(prefix), upper.as_deref(), false)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.db.estimate_num_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_value::conformance;

    #[test]
    fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        conformance::run_all(&mut || {
            n += 1;
            RocksDbKeyValueStore::open(&format!("kv{n}"), dir.path(), &RocksDbConfig::default())
                .unwrap()
        });
    }

    #[test]
    fn data_survives_reopen_and_lives_under_task_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = RocksDbConfig::default();
        let mut store = RocksDbKeyValueStore::open("counts", dir.path(), &config).unwrap();
        assert!(store.persistent());
        store.put(b"k", b"v").unwrap();
        store.close().unwrap();
        assert!(dir.path().join("rocksdb").join("counts").is_dir());
        let store = RocksDbKeyValueStore::open("counts", dir.path(), &config).unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(store.approximate_num_entries().unwrap() >= 1);
    }

    #[test]
    fn rejects_names_that_escape_the_task_dir() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "..", "a/b"] {
            assert!(
                RocksDbKeyValueStore::open(name, dir.path(), &RocksDbConfig::default()).is_err()
            );
        }
    }

    #[test]
    fn uncompressed_config_also_works() {
        let dir = tempfile::tempdir().unwrap();
        let config = RocksDbConfig {
            compression: crate::RocksDbCompression::None,
            bloom_filter_bits_per_key: None,
            disable_wal: false,
            ..RocksDbConfig::default()
        };
        let mut store = RocksDbKeyValueStore::open("plain", dir.path(), &config).unwrap();
        store.put(b"k", b"v").unwrap();
        store.flush().unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    }
}
