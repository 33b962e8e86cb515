//! [`InMemoryWindowStore`]: a window store in nested `BTreeMap`s, window start first.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{live_time_bounds, SeqNum, WindowEntry, WindowStore, WindowStoreOptions};
use crate::error::{Result, StoreError};
use crate::key_layout::split_window_store_key;
use crate::restore::ChangelogRecord;
use crate::retention::{check_timestamp, Retention};
use crate::store::StateStore;

type Slot = BTreeMap<(Vec<u8>, u32), Vec<u8>>;

/// A non-persistent window store: window start → (key, seqnum) → value, like Kafka's
/// `InMemoryWindowStore`. Expired windows are removed on every write.
#[derive(Debug)]
pub struct InMemoryWindowStore {
    name: String,
    options: WindowStoreOptions,
    retention: Retention,
    seqnum: SeqNum,
    windows: BTreeMap<i64, Slot>,
    open: bool,
}

impl InMemoryWindowStore {
    /// An empty, open store.
    pub fn new(name: impl Into<String>, options: WindowStoreOptions) -> Result<Self> {
        options.validate()?;
        Ok(InMemoryWindowStore {
            name: name.into(),
            options,
            retention: Retention::new(options.retention_ms),
            seqnum: SeqNum::new(options.retain_duplicates),
            windows: BTreeMap::new(),
            open: true,
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(StoreError::Closed(self.name.clone()))
        }
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64, seq: u32) {
        self.retention.observe(window_start);
        if self.retention.is_expired(window_start) {
            tracing::debug!(store = %self.name, window_start, "skipping write to expired window");
            return;
        }
        match value {
            Some(v) => {
                self.windows
                    .entry(window_start)
                    .or_default()
                    .insert((key.to_vec(), seq), v.to_vec());
            }
            None => {
                if let Some(slot) = self.windows.get_mut(&window_start) {
                    slot.remove(&(key.to_vec(), seq));
                    if slot.is_empty() {
                        self.windows.remove(&window_start);
                    }
                }
            }
        }
    }

    fn expire(&mut self) {
        let min_live = self.retention.min_live();
        self.windows = self.windows.split_off(&min_live);
    }

    fn key_slot_range<'a>(
        slot: &'a Slot,
        key: &[u8],
    ) -> impl DoubleEndedIterator<Item = (&'a (Vec<u8>, u32), &'a Vec<u8>)> {
        slot.range((key.to_vec(), 0)..=(key.to_vec(), u32::MAX))
    }
}

impl StateStore for InMemoryWindowStore {
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
        self.windows.clear();
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.check_open()?;
        for (store_key, value) in records {
            let (key, window_start, seq) = split_window_store_key(store_key).ok_or_else(|| {
                StoreError::malformed(&self.name, "window changelog key shorter than 12 bytes")
            })?;
            self.write(key, value.as_deref(), window_start, seq);
        }
        self.expire();
        Ok(())
    }
}

impl WindowStore for InMemoryWindowStore {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        self.check_open()?;
        check_timestamp("window start", window_start)?;
        if value.is_none() && self.options.retain_duplicates {
            return Ok(());
        }
        let seq = if value.is_some() {
            self.seqnum.next()
        } else {
            0
        };
        self.write(key, value, window_start, seq);
        self.expire();
        Ok(())
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if self.retention.is_expired(window_start) {
            return Ok(None);
        }
        Ok(self
            .windows
            .get(&window_start)
            .and_then(|slot| Self::key_slot_range(slot, key).next())
            .map(|(_, v)| v.clone()))
    }

    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        self.check_open()?;
        let Some((from, to)) = live_time_bounds(&self.retention, time_from, time_to) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (start, slot) in self.windows.range(from..=to) {
            out.extend(Self::key_slot_range(slot, key).map(|(_, v)| (*start, v.clone())));
        }
        Ok(out)
    }

    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>> {
        self.check_open()?;
        if crate::key_value::inverted(key_from, key_to) {
            return Ok(Vec::new());
        }
        let Some((from, to)) = live_time_bounds(&self.retention, time_from, time_to) else {
            return Ok(Vec::new());
        };
        let lower = key_from.map_or(Bound::Unbounded, |k| Bound::Included((k.to_vec(), 0)));
        let upper = key_to.map_or(Bound::Unbounded, |k| {
            Bound::Included((k.to_vec(), u32::MAX))
        });
        let mut out = Vec::new();
        for (start, slot) in self.windows.range(from..=to) {
            out.extend(
                slot.range((lower.clone(), upper.clone()))
                    .map(|((k, _), v)| WindowEntry {
                        key: k.clone(),
                        window_start: *start,
                        value: v.clone(),
                    }),
            );
        }
        Ok(out)
    }

    fn retention_ms(&self) -> i64 {
        self.options.retention_ms
    }

    fn retain_duplicates(&self) -> bool {
        self.options.retain_duplicates
    }

    fn observed_stream_time(&self) -> i64 {
        self.retention.stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::conformance;

    #[test]
    fn conforms() {
        conformance::run_all(&mut |options| InMemoryWindowStore::new("win", options).unwrap());
    }

    #[test]
    fn expired_windows_are_freed() {
        let mut store = InMemoryWindowStore::new("win", WindowStoreOptions::new(100)).unwrap();
        store.put(b"k", Some(b"old"), 0).unwrap();
        store.put(b"k", Some(b"new"), 500).unwrap();
        assert_eq!(store.windows.len(), 1);
    }
}
