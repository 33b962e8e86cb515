//! Serializers and deserializers between typed keys/values and Kafka record bytes.
//!
//! A [`Serde<T>`] turns a `T` into the bytes of a record key or value and back. Kafka
//! records may carry a *null* key or value (no bytes at all, as opposed to zero bytes):
//! serializers return `Ok(None)` to write null, deserializers receive `None` for null.
//! Most serdes refuse null with [`SerdeError::Null`]; wrap one in [`Nullable`] to read
//! and write `Option<T>`, or use the unit serde for keys that are always null.
//!
//! Bad bytes never panic: every failure is a [`SerdeError`], which the runtime hands to
//! the configured deserialization or production error handler.

use std::sync::Arc;

pub mod avro;
pub mod bincode;
pub mod json;
pub mod nullable;
pub mod primitives;
pub mod schema_registry;
pub mod serdes;
pub mod wire_format;

pub use self::avro::{AvroSerde, GenericAvroSerde};
pub use self::bincode::BincodeSerde;
pub use self::json::JsonSerde;
pub use self::nullable::Nullable;
pub use self::primitives::{BytesSerde, F64Serde, I32Serde, I64Serde, StringSerde, UnitSerde};
pub use self::schema_registry::{
    CachedSchemaRegistry, HttpSchemaRegistry, RegisteredSchema, SchemaRegistry,
    SchemaRegistryConfig,
};
pub use self::serdes::{DefaultSerde, Serdes};

/// Converts values of type `T` to and from the bytes of a Kafka record key or value.
///
/// Implementations must be cheap to share between threads: the runtime holds one
/// instance per topology and calls it from every stream thread.
pub trait Serde<T>: Send + Sync + 'static {
    /// Serializes `value` for `topic`. `Ok(None)` writes a null key or value.
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError>;

    /// Deserializes the bytes read from `topic`; `data` is `None` for a null key or value.
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError>;

    /// The bytes a sink hashes to pick the partition of a record with key `value`, when
    /// they are not the serialized key: windowed serdes return the base key's bytes, as
    /// Kafka Streams' `WindowedStreamPartitioner` hashes. `None` (the default) partitions
    /// by the serialized key.
    fn partition_bytes(
        &self,
        _topic: &str,
        _value: &T,
    ) -> Option<Result<Option<Vec<u8>>, SerdeError>> {
        None
    }
}

impl<T, S: Serde<T> + ?Sized> Serde<T> for Arc<S> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        (**self).serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError> {
        (**self).deserialize(topic, data)
    }
    fn partition_bytes(
        &self,
        topic: &str,
        value: &T,
    ) -> Option<Result<Option<Vec<u8>>, SerdeError>> {
        (**self).partition_bytes(topic, value)
    }
}

/// Why a key or value could not be serialized or deserialized.
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    /// The record carried a null key or value where the serde needs bytes.
    #[error("null data on topic {topic} where a value is required")]
    Null {
        /// Topic the record came from.
        topic: String,
    },
    /// The bytes had the wrong length for a fixed-size type.
    #[error("expected {expected} bytes, got {actual}")]
    Length {
        /// Bytes the type takes.
        expected: usize,
        /// Bytes the record had.
        actual: usize,
    },
    /// The bytes were not valid for the format (UTF-8, JSON, bincode, Avro...).
    #[error("invalid {format} data: {reason}")]
    Invalid {
        /// Name of the format, e.g. `"json"`.
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Schema-registry framed data did not start with the magic byte `0`: the record was
    /// not written by a schema-registry serializer (or not by one of this wire format).
    #[error("unknown magic byte {found:#04x} on topic {topic}; expected 0x00 (schema-registry wire format)")]
    MagicByte {
        /// Topic the record came from.
        topic: String,
        /// The first byte of the record.
        found: u8,
    },
    /// The schema id in a record is not known to the schema registry.
    #[error("schema id {id} is not known to the schema registry")]
    UnknownSchemaId {
        /// The id read from bytes 1..5 of the record.
        id: u32,
    },
    /// Auto-registration is off and the schema is not registered under the subject.
    #[error("schema is not registered under subject {subject} and auto-registration is off")]
    SchemaNotRegistered {
        /// The subject looked up, e.g. `orders-value`.
        subject: String,
    },
    /// The schema registry could not be reached, answered with an error or with
    /// something unexpected, or its client could not be configured.
    #[error("schema registry error at {url}: {reason}")]
    Registry {
        /// The URL requested (or, for configuration errors, the configured URL).
        url: String,
        /// HTTP status, when the registry answered at all.
        status: Option<u16>,
        /// What went wrong, including the registry's own message when it gave one.
        reason: String,
    },
    /// An Avro value did not fit its schema, a schema could not be parsed, or the writer's
    /// schema could not be resolved to the reader's.
    #[error("avro error: {reason}")]
    Avro {
        /// What was wrong.
        reason: String,
    },
}
