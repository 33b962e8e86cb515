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

mod core;
mod key_value;
mod session;
mod window;

pub use self::core::{CacheBudget, FlushListener, CACHE_ENTRY_OVERHEAD_BYTES};
pub use self::key_value::CachingKeyValueStore;
pub use self::session::CachingSessionStore;
pub use self::window::CachingWindowStore;
