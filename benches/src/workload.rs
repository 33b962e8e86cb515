//! The comparison's input data, the same for streams-core and Java Kafka Streams: topic
//! names, key and value layouts, timestamps, and the loader that writes them once.
//!
//! Keys are 4-byte big-endian integers (Java's `IntegerSerializer`), uniform over
//! [`KEYS`]; values are random bytes. Record `i` of an input topic carries the timestamp
//! `base + i / RECORDS_PER_MS`, so event time advances evenly and windows close as the
//! input is read.

use std::time::Duration;

use anyhow::Result;
use rdkafka::producer::{BaseRecord, Producer};

use crate::{create_topic, producer, send_blocking};

/// Distinct keys of the input topics and of the table topic.
pub const KEYS: u32 = 10_000;
/// Input records per millisecond of event time.
pub const RECORDS_PER_MS: u64 = 10;
/// Records of the right side of the stream-stream join per record of the left side.
pub const RIGHT_SHARE: u64 = 10;
/// Ads of the ad-campaign pipeline, and the campaigns they belong to.
pub const ADS: u32 = 1_000;
/// Campaigns of the ad-campaign pipeline.
pub const CAMPAIGNS: u32 = 100;
/// Value size of the table and ad-event topics.
pub const SMALL_VALUE: usize = 100;

/// The topics of one loaded data set.
#[derive(Clone, Debug)]
pub struct Topics {
    /// Prefix of every topic of the data set.
    pub prefix: String,
    /// Partitions of every topic.
    pub partitions: i32,
}

impl Topics {
    /// The input topic with values of `value_size` bytes.
    pub fn input(&self, value_size: usize) -> String {
        format!("{}-input-{value_size}", self.prefix)
    }

    /// The table topic: one 100-byte value per key.
    pub fn table(&self) -> String {
        format!("{}-table", self.prefix)
    }

    /// The right side of the stream-stream join for inputs of `value_size` bytes.
    pub fn right(&self, value_size: usize) -> String {
        format!("{}-right-{value_size}", self.prefix)
    }

    /// Ad events: keyed by ad id; value `[event type][8-byte event time][padding]`.
    pub fn ad_events(&self) -> String {
        format!("{}-ad-events", self.prefix)
    }

    /// Ads: ad id to its 4-byte campaign id.
    pub fn ads(&self) -> String {
        format!("{}-ads", self.prefix)
    }
}

/// A small, fast, seeded generator (xorshift64*), so runs load the same bytes.
pub struct Random(u64);

impl Random {
    /// A generator seeded with `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Random(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Writes records with timestamps from `base` on, reporting progress.
pub struct Loader<'a> {
    /// Kafka bootstrap servers.
    pub bootstrap: &'a str,
    /// Timestamp of record 0.
    pub base: i64,
    /// Called with `(topic, records written, records in all)` every 100,000 records.
    pub progress: &'a dyn Fn(&str, u64, u64),
}

impl Loader<'_> {
    /// Creates `topic` with `partitions` partitions and writes `count` records to it: the
    /// key of record `i` from `key_of`, its value filled by `value_of`, timestamp
    /// `base + i / per_ms`.
    pub fn load(
        &self,
        topic: &str,
        partitions: i32,
        count: u64,
        per_ms: u64,
        mut key_of: impl FnMut(u64) -> u32,
        mut value_of: impl FnMut(u64, &mut Vec<u8>),
    ) -> Result<()> {
        create_topic(self.bootstrap, topic, partitions)?;
        let p = producer(self.bootstrap)?;
        let mut value = Vec::new();
        for i in 0..count {
            let key = key_of(i).to_be_bytes();
            value.clear();
            value_of(i, &mut value);
            send_blocking(
                &p,
                BaseRecord::to(topic)
                    .key(&key[..])
                    .payload(&value[..])
                    .timestamp(self.base + (i / per_ms) as i64),
            );
            if i % 100_000 == 0 {
                (self.progress)(topic, i, count);
            }
        }
        p.flush(Duration::from_secs(600))?;
        (self.progress)(topic, count, count);
        Ok(())
    }
}

/// Creates and fills every topic of a data set: one input topic per value size with
/// `records` records (fewer for larger values: `records * 100 / value_size`, at least
/// `records / 10`), the right join side with a tenth of each, the table, the ads and
/// `records` ad events.
pub fn load_all(
    loader: &Loader<'_>,
    topics: &Topics,
    records: u64,
    value_sizes: &[usize],
) -> Result<()> {
    // Keys and values from generators of their own (each closure borrows one).
    let (mut keys, mut values) = (Random::new(42), Random::new(43));
    let parts = topics.partitions;
    loader.load(
        &topics.table(),
        parts,
        KEYS as u64,
        RECORDS_PER_MS,
        |i| i as u32,
        |_, v| random_value(&mut values, v, SMALL_VALUE),
    )?;
    for &size in value_sizes {
        let count = input_records(records, size);
        loader.load(
            &topics.input(size),
            parts,
            count,
            RECORDS_PER_MS,
            |_| rng_key(&mut keys),
            |_, v| random_value(&mut values, v, size),
        )?;
        // A tenth of the records over the same span of event time.
        let right_per_ms = (RECORDS_PER_MS / RIGHT_SHARE).max(1);
        loader.load(
            &topics.right(size),
            parts,
            count / RIGHT_SHARE,
            right_per_ms,
            |_| rng_key(&mut keys),
            |_, v| random_value(&mut values, v, size),
        )?;
    }
    loader.load(
        &topics.ads(),
        parts,
        ADS as u64,
        RECORDS_PER_MS,
        |i| i as u32,
        |i, v| v.extend_from_slice(&((i as u32) % CAMPAIGNS).to_be_bytes()),
    )?;
    let base = loader.base;
    loader.load(
        &topics.ad_events(),
        parts,
        records,
        RECORDS_PER_MS,
        |_| (keys.next_u64() % ADS as u64) as u32,
        |i, v| {
            v.resize(SMALL_VALUE, 0);
            v[0] = (i % 3) as u8; // 0 view, 1 click, 2 purchase
            let time = base + (i / RECORDS_PER_MS) as i64;
            v[1..9].copy_from_slice(&time.to_be_bytes());
        },
    )?;
    Ok(())
}

/// Records of the input topic with values of `value_size` bytes, for a data set of
/// `records` (the 100-byte size).
pub fn input_records(records: u64, value_size: usize) -> u64 {
    let scaled = records.saturating_mul(SMALL_VALUE as u64) / value_size.max(1) as u64;
    scaled.clamp(records / 10, records)
}

fn rng_key(rng: &mut Random) -> u32 {
    (rng.next_u64() % KEYS as u64) as u32
}

fn random_value(rng: &mut Random, v: &mut Vec<u8>, size: usize) {
    v.resize(size, 0);
    rng.fill(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_values_get_proportionally_fewer_records_within_bounds() {
        assert_eq!(input_records(1_000_000, 100), 1_000_000);
        assert_eq!(input_records(1_000_000, 500), 200_000);
        // A tenth at the least.
        assert_eq!(input_records(1_000_000, 1024), 100_000);
        assert_eq!(input_records(1_000_000, 100_000), 100_000);
        assert_eq!(input_records(1_000_000, 10), 1_000_000);
    }

    #[test]
    fn the_generator_is_seeded_and_fills_odd_lengths() {
        let (mut a, mut b) = (Random::new(7), Random::new(7));
        let (mut x, mut y) = (vec![0u8; 13], vec![0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x.iter().any(|&b| b != 0));
        assert_ne!(Random::new(8).next_u64(), Random::new(7).next_u64());
    }
}
