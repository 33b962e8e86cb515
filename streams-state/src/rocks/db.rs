//! [`Db`]: one RocksDB database per store under `<task dir>/rocksdb/<store name>`, with
//! error mapping, the closed state and bounded scans.

use std::path::Path;

use rocksdb::{DBRawIterator, ReadOptions, WriteBatch, WriteOptions, DB};

use super::RocksDbConfig;
use crate::error::{Result, StoreError};

/// An open (or closed) RocksDB database owned by one store.
pub(crate) struct Db {
    name: String,
    db: Option<DB>,
    write_opts: WriteOptions,
}

/// Rejects store names that would escape the task directory or name no directory.
pub(crate) fn validate_store_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(StoreError::InvalidArgument(format!(
            "store name `{name}` cannot be used as a directory name"
        )));
    }
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database of store `name` in `task_dir`.
    pub(crate) fn open(name: &str, task_dir: &Path, config: &RocksDbConfig) -> Result<Self> {
        validate_store_name(name)?;
        let path = task_dir.join("rocksdb").join(name);
        std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
        let db = DB::open(&config.options(), &path).map_err(|e| StoreError::rocksdb(name, e))?;
        let mut write_opts = WriteOptions::default();
        write_opts.disable_wal(config.disable_wal);
        tracing::debug!(store = name, path = %path.display(), "opened RocksDB store");
        Ok(Db {
            name: name.to_owned(),
            db: Some(db),
            write_opts,
        })
    }

    /// The store name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Fails with [`StoreError::Closed`] after [`close`](Self::close).
    pub(crate) fn check_open(&self) -> Result<()> {
        self.db().map(|_| ())
    }

    fn db(&self) -> Result<&DB> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::Closed(self.name.clone()))
    }

    fn err(&self, e: rocksdb::Error) -> StoreError {
        StoreError::rocksdb(&self.name, e)
    }

    /// Point lookup.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let db = self.db()?;
        db.get_pinned(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.err(e))
    }

    /// Writes one entry.
    pub(crate) fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let db = self.db()?;
        db.put_opt(key, value, &self.write_opts)
            .map_err(|e| self.err(e))
    }

    /// Deletes one entry.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<()> {
        let db = self.db()?;
        db.delete_opt(key, &self.write_opts)
            .map_err(|e| self.err(e))
    }

    /// Applies a batch atomically.
    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        let db = self.db()?;
        db.write_opt(batch, &self.write_opts)
            .map_err(|e| self.err(e))
    }

    /// Visits entries with `lower <= key < upper` in ascending (or, with `reverse`,
    /// descending) key order until `visit` returns `false`.
    pub(crate) fn scan(
        &self,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        reverse: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let db = self.db()?;
        if let (Some(lo), Some(hi)) = (lower, upper) {
            if lo >= hi {
                return Ok(());
            }
        }
        let mut read_opts = ReadOptions::default();
        if let Some(lo) = lower {
            read_opts.set_iterate_lower_bound(lo);
        }
        if let Some(hi) = upper {
            read_opts.set_iterate_upper_bound(hi);
        }
        let mut iter = db.raw_iterator_opt(read_opts);
        if reverse {
            iter.seek_to_last();
        } else {
            iter.seek_to_first();
        }
        while iter.valid() {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            if !visit(key, value)? {
                return Ok(());
            }
            if reverse {
                iter.prev();
            } else {
                iter.next();
            }
        }
        iter.status().map_err(|e| self.err(e))
    }

    /// A raw iterator over `[lower, upper)`, unpositioned, for scans that seek more than
    /// once (one iterator instead of one per range: creating one costs more than a seek).
    pub(crate) fn raw_iterator(&self, lower: &[u8], upper: &[u8]) -> Result<DBRawIterator<'_>> {
        let mut read_opts = ReadOptions::default();
        read_opts.set_iterate_lower_bound(lower);
        read_opts.set_iterate_upper_bound(upper);
        Ok(self.db()?.raw_iterator_opt(read_opts))
    }

    /// The error that ended an iteration, if any.
    pub(crate) fn iterator_status(&self, iter: &DBRawIterator<'_>) -> Result<()> {
        iter.status().map_err(|e| self.err(e))
    }

    /// RocksDB's estimate of the number of keys (`rocksdb.estimate-num-keys`).
    pub(crate) fn estimate_num_keys(&self) -> Result<u64> {
        let db = self.db()?;
        Ok(db
            .property_int_value("rocksdb.estimate-num-keys")
            .map_err(|e| self.err(e))?
            .unwrap_or(0))
    }

    /// Flushes memtables to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        let db = self.db()?;
        db.flush().map_err(|e| self.err(e))
    }

    /// Flushes and closes; a second call does nothing.
    pub(crate) fn close(&mut self) -> Result<()> {
        if self.db.is_some() {
            let flushed = self.flush();
            self.db = None;
            tracing::debug!(store = %self.name, "closed RocksDB store");
            flushed?;
        }
        Ok(())
    }

    /// Whether the database is open.
    pub(crate) fn is_open(&self) -> bool {
        self.db.is_some()
    }
}
