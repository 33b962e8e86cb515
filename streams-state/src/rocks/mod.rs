//! RocksDB plumbing shared by the RocksDB key-value, window and session stores: the typed
//! configuration, the per-store database handle and the time-segmented key space.

mod config;
mod db;
mod segments;

pub use config::{RocksDbCompression, RocksDbConfig};
pub(crate) use db::Db;
#[cfg(test)]
pub(crate) use segments::SEGMENTS_END;
pub(crate) use segments::{prefixed, segment_prefix, SegmentedDb};
