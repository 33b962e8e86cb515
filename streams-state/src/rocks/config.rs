//! [`RocksDbConfig`]: the tuning every RocksDB store is opened with.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options};

/// Block compression of RocksDB files. Only LZ4 is compiled into the bundled RocksDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RocksDbCompression {
    /// No compression.
    None,
    /// LZ4: cheap to compress and decompress, the default.
    #[default]
    Lz4,
}

/// Typed RocksDB options applied to every store opened with it; the defaults follow Kafka
/// Streams' `RocksDBStore` (50 MiB block cache, 4 KiB blocks, 16 MiB write buffers, three
/// of them, bloom filters, write-ahead log off since the changelog topic is the source of
/// truth) except that LZ4 compression is on.
///
/// ```
/// use streams_state::RocksDbConfig;
/// let config = RocksDbConfig { block_cache_bytes: 8 << 20, ..RocksDbConfig::default() };
/// assert_eq!(config.write_buffer_bytes, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RocksDbConfig {
    /// Capacity of the LRU block cache of each store, in bytes.
    pub block_cache_bytes: usize,
    /// Size of a data block, in bytes.
    pub block_size_bytes: usize,
    /// Size of one memtable, in bytes.
    pub write_buffer_bytes: usize,
    /// Number of memtables kept in memory before writes stall.
    pub max_write_buffers: i32,
    /// Compression of data blocks.
    pub compression: RocksDbCompression,
    /// Bits per key of the bloom filter, `None` for no filter.
    pub bloom_filter_bits_per_key: Option<f64>,
    /// Threads for flushes and compactions of each store.
    pub max_background_jobs: i32,
    /// Skip RocksDB's write-ahead log. Safe because a store is rebuilt from its changelog
    /// after a crash; [`StateStore::flush`](crate::StateStore::flush) flushes memtables.
    pub disable_wal: bool,
    /// Maximum open files per store, `-1` for no limit.
    pub max_open_files: i32,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        RocksDbConfig {
            block_cache_bytes: 50 << 20,
            block_size_bytes: 4 << 10,
            write_buffer_bytes: 16 << 20,
            max_write_buffers: 3,
            compression: RocksDbCompression::Lz4,
            bloom_filter_bits_per_key: Some(10.0),
            max_background_jobs: 2,
            disable_wal: true,
            max_open_files: -1,
        }
    }
}

impl RocksDbConfig {
    /// Builds the RocksDB options for one store, with its own block cache.
    pub(crate) fn options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        let cache = Cache::new_lru_cache(self.block_cache_bytes);
        table.set_block_cache(&cache);
        table.set_block_size(self.block_size_bytes);
        table.set_cache_index_and_filter_blocks(true);
        if let Some(bits) = self.bloom_filter_bits_per_key {
            table.set_bloom_filter(bits, false);
        }

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(self.write_buffer_bytes);
        opts.set_max_write_buffer_number(self.max_write_buffers);
        opts.set_max_background_jobs(self.max_background_jobs);
        opts.set_max_open_files(self.max_open_files);
        opts.set_compression_type(match self.compression {
            RocksDbCompression::None => DBCompressionType::None,
            RocksDbCompression::Lz4 => DBCompressionType::Lz4,
        });
        opts
    }
}
