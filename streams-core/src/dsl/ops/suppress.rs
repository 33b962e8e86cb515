//! Suppression: holding back table updates until a window closes or a time limit
//! passes, emitting only each key's latest update. Time is the stream time the
//! suppression has observed itself (the largest timestamp of the updates reaching it).
//! The buffer is a change-logged store, so it survives restarts; an in-memory index
//! orders it by emission time.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::windowed::ObservedStreamTime;
use crate::dsl::change::{Change, ChangeSerde};
use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{Serde, SerdeError};

/// A held-back update: when to emit it, the record time, and the change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Buffered<V> {
    pub emit_at: i64,
    pub timestamp: i64,
    pub change: Change<V>,
}

/// `[8-byte emit time][8-byte record time][change]`, all big-endian.
pub(crate) struct BufferedSerde<V> {
    change: ChangeSerde<V>,
}

impl<V> BufferedSerde<V> {
    pub fn new(value: Arc<dyn Serde<V>>) -> Self {
        BufferedSerde {
            change: ChangeSerde::new(value),
        }
    }
}

impl<V: 'static> Serde<Buffered<V>> for BufferedSerde<V> {
    fn serialize(&self, topic: &str, b: &Buffered<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let change = self.change.serialize(topic, &b.change)?.unwrap_or_default();
        let mut out = Vec::with_capacity(16 + change.len());
        out.extend_from_slice(&b.emit_at.to_be_bytes());
        out.extend_from_slice(&b.timestamp.to_be_bytes());
        out.extend_from_slice(&change);
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Buffered<V>, SerdeError> {
        let bytes = bytes.ok_or_else(|| SerdeError::Null {
            topic: topic.to_string(),
        })?;
        if bytes.len() < 16 {
            return Err(SerdeError::Length {
                expected: 16,
                actual: bytes.len(),
            });
        }
        let emit_at = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let timestamp = i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
        Ok(Buffered {
            emit_at,
            timestamp,
            change: self.change.deserialize(topic, Some(&bytes[16..]))?,
        })
    }
}

/// When a buffered key's update is emitted: `(key, record time, earlier emit time)`.
pub(crate) type EmitTime<K> = Arc<dyn Fn(&K, i64, Option<i64>) -> i64 + Send + Sync>;

/// Buffers updates per key and emits them once the observed stream time reaches their
/// emit time.
pub(crate) struct Suppress<K> {
    pub store: String,
    pub emit_time: EmitTime<K>,
    /// Whether deletions are dropped instead of emitted: final results of windows, where
    /// a deleted window (a session merged into another) was never emitted.
    drop_tombstones: bool,
    observed: ObservedStreamTime,
    /// (emit time, serialized key) of every buffered key.
    index: BTreeSet<(i64, Vec<u8>)>,
}

impl<K> Suppress<K> {
    pub fn new(store: String, emit_time: EmitTime<K>) -> Self {
        Suppress {
            store,
            emit_time,
            drop_tombstones: false,
            observed: ObservedStreamTime::default(),
            index: BTreeSet::new(),
        }
    }

    /// Emits final results only: buffered deletions are dropped, as Kafka Streams'
    /// `untilWindowCloses` does.
    pub fn final_results(mut self) -> Self {
        self.drop_tombstones = true;
        self
    }
}

impl<K: Data, V: Data> Processor<K, Change<V>, K, Change<V>> for Suppress<K> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<(), ProcessError> {
        // The buffer may have been restored from its changelog: rebuild the index.
        let buffer = ctx.key_value_store::<K, Buffered<V>>(&self.store)?;
        self.index.clear();
        for (key, buffered) in buffer.all()? {
            self.index
                .insert((buffered.emit_at, buffer.key_bytes(&key)?));
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let buffer = ctx.key_value_store::<K, Buffered<V>>(&self.store)?;
        let key_bytes = buffer.key_bytes(&record.key)?;
        let previous = buffer.get(&record.key)?;
        let emit_at = (self.emit_time)(
            &record.key,
            record.timestamp,
            previous.as_ref().map(|p| p.emit_at),
        );
        if let Some(p) = &previous {
            self.index.remove(&(p.emit_at, key_bytes.clone()));
        }
        // The emitted change spans from the value before the first held-back update.
        let old = match previous {
            Some(p) => p.change.old,
            None => record.value.old.clone(),
        };
        let buffered = Buffered {
            emit_at,
            timestamp: record.timestamp,
            change: Change::new(record.value.new.clone(), old),
        };
        buffer.put(&record.key, &buffered)?;
        self.index.insert((emit_at, key_bytes));

        let now = self.observed.observe(record.timestamp);
        while let Some((at, bytes)) = self.index.first().cloned() {
            if at > now {
                break;
            }
            self.index.pop_first();
            let key = buffer.key_from_bytes(&bytes)?;
            let Some(held) = buffer.delete(&key)? else {
                continue;
            };
            if held.change.new.is_none() && self.drop_tombstones {
                continue;
            }
            ctx.forward(Record::new(key, held.change, held.timestamp))?;
        }
        Ok(())
    }
}
