//! The record cache: write caches in front of key-value, window and session stores that
//! hold back updates between flushes, sharing one byte budget per stream thread.
//!
//! As in Kafka Streams, writes land in a cache as *dirty* entries and repeated writes of a
//! key between two flushes collapse into one. On flush (the runtime flushes at every
//! commit) or when the shared budget forces an eviction, dirty entries are written to the
//! wrapped store, in the order of their latest write, and handed to the layer's flush
//! listener as `(key, new value, old value)`, the old value being what the wrapped store
//! held before. The runtime forwards those downstream, so an operator behind a cache sends
//! one update per key and commit instead of one per record.
//!
//! * [`CacheBudget`]: the byte budget shared by every cache of a stream thread
//!   (Kafka's `ThreadCache`); a budget of 0 turns caching off.
//! * [`CachingKeyValueStore`], [`CachingWindowStore`], [`CachingSessionStore`]: the
//!   layers (Kafka's `NamedCache` with the caching store around it).

/// Implements [`StateStore`](crate::StateStore) for a caching layer: a struct with an
/// `inner` store, a `cache` ([`core::RecordCache`]) and a `flush_batch` method writing
/// dirty entries through. Flushing empties the cache into the store first; closing
/// flushes, drops the cache and closes the store; restored keys leave the cache, and
/// `$after_restore` (given the layer) runs once the store has taken the batch.
macro_rules! caching_state_store {
    ($layer:ident<$s:ident: $bound:ident>, $after_restore:expr) => {
        impl<$s: $bound> $crate::StateStore for $layer<$s> {
            fn name(&self) -> &str {
                self.inner.name()
            }

            fn persistent(&self) -> bool {
                self.inner.persistent()
            }

            fn flush(&mut self) -> $crate::Result<()> {
                self.flush_cache()?;
                self.inner.flush()
            }

            fn flush_cache(&mut self) -> $crate::Result<()> {
                let batch = self.cache.take_dirty();
                self.flush_batch(batch)
            }

            fn close(&mut self) -> $crate::Result<()> {
                if !self.inner.is_open() {
                    return Ok(());
                }
                let flushed = self.flush_cache();
                self.cache.clear();
                self.inner.close()?;
                flushed
            }

            fn is_open(&self) -> bool {
                self.inner.is_open()
            }

            fn restore_batch(
                &mut self,
                records: &[$crate::restore::ChangelogRecord],
            ) -> $crate::Result<()> {
                for (key, _) in records {
                    self.cache.remove(key);
                }
                self.inner.restore_batch(records)?;
                let after: fn(&mut Self) = $after_restore;
                after(self);
                Ok(())
            }
        }
    };
}

mod core;
mod key_value;
mod session;
mod window;

pub use self::core::{CacheBudget, FlushListener, CACHE_ENTRY_OVERHEAD_BYTES};
pub use self::key_value::CachingKeyValueStore;
pub use self::session::CachingSessionStore;
pub use self::window::CachingWindowStore;
