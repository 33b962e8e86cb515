//! Avro serdes in the schema-registry wire format, for generic values and for `serde` types.
//!
//! Records are written as Java's `KafkaAvroSerializer` writes them: the
//! [wire format](super::wire_format) header (magic byte `0`, schema id) followed by the
//! Avro binary encoding of the value. Schemas are registered or looked up under the
//! subject `<topic>-key` or `<topic>-value` (Confluent's `TopicNameStrategy`). Reading
//! fetches the writer's schema by the id in the record and resolves the value to the
//! serde's own (reader) schema, so readers and writers can evolve independently within
//! Avro's schema-resolution rules.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{AvroSchema, Schema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::schema_registry::CachedSchemaRegistry;
use super::wire_format::{frame, unframe};
use super::{Serde, SerdeError};

/// Avro [`Value`]s with a given schema, in the schema-registry wire format.
///
/// Serializing registers (or, with auto-registration off, looks up) the serde's schema
/// under `<topic>-value` (or `<topic>-key` after [`for_keys`](Self::for_keys)), resolves
/// the value to the schema (so e.g. an `Int` fills a `long` field and missing fields with
/// defaults are filled in), and writes the framed Avro binary. Deserializing reads the
/// schema id, fetches the writer's schema, decodes, and resolves to the serde's schema.
///
/// Errors: [`SerdeError::MagicByte`] and [`SerdeError::Invalid`] for bytes that are not a
/// framed Avro record of the writer's schema (trailing bytes included);
/// [`SerdeError::UnknownSchemaId`] and [`SerdeError::Registry`] from the registry;
/// [`SerdeError::Avro`] for a value that does not fit the schema or a writer's schema
/// that cannot be resolved to the reader's. Null records are refused with
/// [`SerdeError::Null`]; wrap in [`Nullable`](super::Nullable) for tombstones.
///
/// Pitfalls:
/// - The schema is registered exactly as [`Schema`] prints it (full JSON with defaults
///   and docs). Schemas that reference types of other registered schemas (schema
///   references) are not supported.
/// - Corrupt bytes can claim a string or array length up to `apache-avro`'s allocation
///   limit (512 MiB by default) before the decoder notices the data is short; an
///   application can lower it once at start-up with `apache_avro::util::max_allocation_bytes`.
///
/// ```no_run
/// use apache_avro::{types::Value, Schema};
/// use streams_core::serde::{CachedSchemaRegistry, GenericAvroSerde, SchemaRegistryConfig, Serde};
///
/// let registry = CachedSchemaRegistry::new(&SchemaRegistryConfig::new("http://127.0.0.1:8081"))?;
/// let schema = Schema::parse_str(
///     r#"{"type":"record","name":"Click","fields":[{"name":"page","type":"string"}]}"#,
/// ).unwrap();
/// let serde = GenericAvroSerde::new(registry, schema);
/// let click = Value::Record(vec![("page".into(), Value::String("/home".into()))]);
/// let bytes = serde.serialize("clicks", &click)?.unwrap();
/// assert_eq!(bytes[0], 0); // magic byte, then the schema id of subject clicks-value
/// assert_eq!(serde.deserialize("clicks", Some(&bytes))?, click);
/// # Ok::<(), streams_core::serde::SerdeError>(())
/// ```
#[derive(Clone)]
pub struct GenericAvroSerde {
    registry: CachedSchemaRegistry,
    schema: Arc<Schema>,
    /// The text registered for `schema`, computed once.
    schema_text: Arc<str>,
    is_key: bool,
}

impl GenericAvroSerde {
    /// A serde for values of `schema`, writing and reading with it. Serves record values;
    /// call [`for_keys`](Self::for_keys) for record keys.
    pub fn new(registry: CachedSchemaRegistry, schema: Schema) -> Self {
        // Full JSON (defaults and docs included: the registry's compatibility checks need
        // the defaults); the canonical form is only a fallback, it drops them.
        let schema_text =
            serde_json::to_string(&schema).unwrap_or_else(|_| schema.canonical_form());
        GenericAvroSerde {
            registry,
            schema: Arc::new(schema),
            schema_text: schema_text.into(),
            is_key: false,
        }
    }

    /// Like [`new`](Self::new) with a schema in Avro's JSON form; fails with
    /// [`SerdeError::Avro`] if it does not parse.
    pub fn from_schema_str(
        registry: CachedSchemaRegistry,
        schema: &str,
    ) -> Result<Self, SerdeError> {
        let schema = Schema::parse_str(schema).map_err(|e| SerdeError::Avro {
            reason: format!("invalid Avro schema: {e}"),
        })?;
        Ok(Self::new(registry, schema))
    }

    /// The same serde for record keys: uses the subject `<topic>-key`.
    pub fn for_keys(mut self) -> Self {
        self.is_key = true;
        self
    }

    /// The schema values are written with and resolved to.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The registry subject for `topic`: `<topic>-key` or `<topic>-value`.
    pub fn subject(&self, topic: &str) -> String {
        format!("{topic}-{}", if self.is_key { "key" } else { "value" })
    }

    fn encode(&self, topic: &str, value: Value) -> Result<Vec<u8>, SerdeError> {
        // Encode first: a value that does not fit never reaches the registry.
        let value = value.resolve(&self.schema).map_err(|e| SerdeError::Avro {
            reason: format!("value does not fit the schema: {e}"),
        })?;
        let payload =
            apache_avro::to_avro_datum(&self.schema, value).map_err(|e| SerdeError::Avro {
                reason: format!("value does not fit the schema: {e}"),
            })?;
        let id = self
            .registry
            .id_for(&self.subject(topic), &self.schema_text)?;
        Ok(frame(id, &payload))
    }

    fn decode(&self, topic: &str, data: Option<&[u8]>) -> Result<Value, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::Null {
            topic: topic.to_owned(),
        })?;
        let (id, payload) = unframe(topic, data)?;
        let writer = self.registry.schema(id)?;
        let mut reader = Payload(payload);
        let value = apache_avro::from_avro_datum(&writer, &mut reader, None).map_err(|e| {
            SerdeError::Invalid {
                format: "avro",
                reason: format!("not a datum of writer schema id {id}: {e}"),
            }
        })?;
        if !reader.0.is_empty() {
            return Err(SerdeError::Invalid {
                format: "avro",
                reason: format!(
                    "{} trailing bytes after a datum of writer schema id {id}",
                    reader.0.len()
                ),
            });
        }
        value.resolve(&self.schema).map_err(|e| SerdeError::Avro {
            reason: format!("cannot resolve writer schema id {id} to the reader schema: {e}"),
        })
    }
}

/// The unread rest of a record's Avro payload.
///
/// `apache-avro` decodes a string, boolean or union cut short by
/// [`io::ErrorKind::UnexpectedEof`] as a null value instead of failing (it treats the end of
/// a stream as the end of the data). A truncated record would then read as a record with
/// nulls in it. This reader reports running out of bytes as
/// [`io::ErrorKind::InvalidData`], which the decoder does turn into an error.
struct Payload<'a>(&'a [u8]);

impl io::Read for Payload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let Some((head, rest)) = self.0.split_at_checked(buf.len()) else {
            let missing = buf.len() - self.0.len();
            self.0 = &[];
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the record ends {missing} bytes early"),
            ));
        };
        buf.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }
}

impl Serde<Value> for GenericAvroSerde {
    fn serialize(&self, topic: &str, value: &Value) -> Result<Option<Vec<u8>>, SerdeError> {
        self.encode(topic, value.clone()).map(Some)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Value, SerdeError> {
        self.decode(topic, data)
    }
}

impl fmt::Debug for GenericAvroSerde {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericAvroSerde")
            .field("schema", &self.schema_text)
            .field("is_key", &self.is_key)
            .finish_non_exhaustive()
    }
}

/// Rust types (via `serde`) as Avro in the schema-registry wire format.
///
/// Works like [`GenericAvroSerde`], converting with [`apache_avro::to_value`] and
/// [`apache_avro::from_value`]: the value is serialized to an Avro [`Value`], resolved to
/// the schema and written; read records are resolved to the schema and then deserialized
/// into `T`. The schema usually comes from `#[derive(AvroSchema)]` (apache-avro's
/// `derive` feature) through [`derived`](Self::derived), or from a schema string. Field
/// names of `T` must match the schema's (mind `#[serde(rename)]`).
///
/// Errors as for [`GenericAvroSerde`], plus [`SerdeError::Avro`] when `T` and the schema
/// do not match.
///
/// ```no_run
/// use apache_avro::AvroSchema;
/// use serde::{Deserialize, Serialize};
/// use streams_core::serde::{AvroSerde, CachedSchemaRegistry, SchemaRegistryConfig, Serde};
///
/// #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
/// struct Order { id: i64, item: String }
///
/// let registry = CachedSchemaRegistry::new(&SchemaRegistryConfig::new("http://127.0.0.1:8081"))?;
/// let serde = AvroSerde::<Order>::derived(registry);
/// let order = Order { id: 1, item: "tea".into() };
/// let bytes = serde.serialize("orders", &order)?;
/// assert_eq!(serde.deserialize("orders", bytes.as_deref())?, order);
/// # Ok::<(), streams_core::serde::SerdeError>(())
/// ```
pub struct AvroSerde<T> {
    inner: GenericAvroSerde,
    _type: PhantomData<fn() -> T>,
}

impl<T> AvroSerde<T> {
    /// A serde for `T` with `schema` as writer and reader schema, for record values.
    pub fn new(registry: CachedSchemaRegistry, schema: Schema) -> Self {
        AvroSerde {
            inner: GenericAvroSerde::new(registry, schema),
            _type: PhantomData,
        }
    }

    /// Like [`new`](Self::new) with a schema in Avro's JSON form; fails with
    /// [`SerdeError::Avro`] if it does not parse.
    pub fn from_schema_str(
        registry: CachedSchemaRegistry,
        schema: &str,
    ) -> Result<Self, SerdeError> {
        Ok(AvroSerde {
            inner: GenericAvroSerde::from_schema_str(registry, schema)?,
            _type: PhantomData,
        })
    }

    /// The same serde for record keys: uses the subject `<topic>-key`.
    pub fn for_keys(self) -> Self {
        AvroSerde {
            inner: self.inner.for_keys(),
            _type: PhantomData,
        }
    }

    /// The schema values are written with and resolved to.
    pub fn schema(&self) -> &Schema {
        self.inner.schema()
    }
}

impl<T: AvroSchema> AvroSerde<T> {
    /// A serde for `T` with the schema `T` declares (usually `#[derive(AvroSchema)]`).
    pub fn derived(registry: CachedSchemaRegistry) -> Self {
        Self::new(registry, T::get_schema())
    }
}

impl<T> Clone for AvroSerde<T> {
    fn clone(&self) -> Self {
        AvroSerde {
            inner: self.inner.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for AvroSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvroSerde")
            .field("type", &std::any::type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T> Serde<T> for AvroSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        let value = apache_avro::to_value(value).map_err(|e| SerdeError::Avro {
            reason: format!("cannot convert the value to Avro: {e}"),
        })?;
        self.inner.encode(topic, value).map(Some)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let value = self.inner.decode(topic, data)?;
        apache_avro::from_value(&value).map_err(|e| SerdeError::Avro {
            reason: format!(
                "cannot convert the Avro value to {}: {e}",
                std::any::type_name::<T>()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use apache_avro::AvroSchema;
    use serde::Deserialize;

    use super::*;
    use crate::serde::schema_registry::memory::MemoryRegistry;
    use crate::serde::schema_registry::SchemaRegistry;

    const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"item","type":"string"},
        {"name":"note","type":["null","string"],"default":null}]}"#;
    const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"item","type":"string"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"quantity","type":"int","default":1}]}"#;

    // Derives exactly V1, default included, so both register as one schema. (A doc
    // comment here would become the schema's `doc` and make it another schema.)
    #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
    #[avro(namespace = "shop")]
    struct Order {
        id: i64,
        item: String,
        #[avro(default = "null")]
        note: Option<String>,
    }

    #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
    #[avro(namespace = "shop")]
    #[serde(rename = "Order")]
    #[avro(name = "Order")]
    struct OrderV2 {
        id: i64,
        item: String,
        note: Option<String>,
        #[avro(default = "1")]
        quantity: i32,
    }

    fn setup() -> (Arc<MemoryRegistry>, CachedSchemaRegistry) {
        let memory = Arc::new(MemoryRegistry::default());
        let cached = CachedSchemaRegistry::with_registry(Arc::clone(&memory), true);
        (memory, cached)
    }

    fn generic_order(id: i64) -> Value {
        Value::Record(vec![
            ("id".into(), Value::Long(id)),
            ("item".into(), Value::String("tea".into())),
            ("note".into(), Value::Union(0, Box::new(Value::Null))),
        ])
    }

    #[test]
    fn generic_round_trip_with_wire_format() {
        let (memory, registry) = setup();
        let serde = GenericAvroSerde::from_schema_str(registry, V1).unwrap();
        let bytes = serde
            .serialize("orders", &generic_order(3))
            .unwrap()
            .unwrap();
        let id = memory.lookup("orders-value", &serde.schema_text).unwrap();
        assert_eq!(bytes[0], 0);
        assert_eq!(bytes[1..5], id.to_be_bytes());
        // Avro binary: zigzag long 3 = 6, string "tea" = len 3 (zigzag 6) + bytes, union branch 0.
        assert_eq!(bytes[5..], [6, 6, b't', b'e', b'a', 0]);
        assert_eq!(
            serde.deserialize("orders", Some(&bytes)).unwrap(),
            generic_order(3)
        );
    }

    #[test]
    fn keys_use_the_key_subject() {
        let (memory, registry) = setup();
        let serde = GenericAvroSerde::from_schema_str(registry, r#""string""#)
            .unwrap()
            .for_keys();
        assert_eq!(serde.subject("t"), "t-key");
        serde
            .serialize("t", &Value::String("k".into()))
            .unwrap()
            .unwrap();
        assert!(memory.lookup("t-key", &serde.schema_text).is_ok());
        assert!(memory.lookup("t-value", &serde.schema_text).is_err());
    }

    #[test]
    fn registry_is_asked_once_per_schema() {
        let (memory, registry) = setup();
        let serde = GenericAvroSerde::from_schema_str(registry, V1).unwrap();
        for i in 0..10 {
            let bytes = serde.serialize("orders", &generic_order(i)).unwrap();
            serde.deserialize("orders", bytes.as_deref()).unwrap();
        }
        // One registration, one fetch by id.
        assert_eq!(memory.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn derived_round_trip_and_same_bytes_as_generic() {
        let (_, registry) = setup();
        let typed = AvroSerde::<Order>::derived(registry.clone());
        let order = Order {
            id: 3,
            item: "tea".into(),
            note: None,
        };
        let bytes = typed.serialize("orders", &order).unwrap().unwrap();
        assert_eq!(typed.deserialize("orders", Some(&bytes)).unwrap(), order);
        let with_note = Order {
            note: Some("hot".into()),
            ..order
        };
        let bytes = typed.serialize("orders", &with_note).unwrap();
        assert_eq!(
            typed.deserialize("orders", bytes.as_deref()).unwrap(),
            with_note
        );
        // The derived schema reads what the generic serde wrote with V1.
        let generic = GenericAvroSerde::from_schema_str(registry, V1).unwrap();
        let bytes = generic.serialize("orders", &generic_order(5)).unwrap();
        assert_eq!(
            typed.deserialize("orders", bytes.as_deref()).unwrap(),
            Order {
                id: 5,
                item: "tea".into(),
                note: None
            }
        );
        // Both write the same bytes for the same order: the derived schema is V1, so it
        // is registered under V1's id, and the Avro body matches field for field.
        assert_eq!(typed.schema(), generic.schema());
        let typed_bytes = typed
            .serialize(
                "orders",
                &Order {
                    id: 5,
                    item: "tea".into(),
                    note: None,
                },
            )
            .unwrap();
        assert_eq!(typed_bytes, bytes);
        let generic_with_note = Value::Record(vec![
            ("id".into(), Value::Long(3)),
            ("item".into(), Value::String("tea".into())),
            (
                "note".into(),
                Value::Union(1, Box::new(Value::String("hot".into()))),
            ),
        ]);
        assert_eq!(
            typed.serialize("orders", &with_note).unwrap(),
            generic.serialize("orders", &generic_with_note).unwrap()
        );
    }

    #[test]
    fn evolution_fills_new_fields_with_defaults() {
        let (_, registry) = setup();
        let old = GenericAvroSerde::from_schema_str(registry.clone(), V1).unwrap();
        let bytes = old.serialize("orders", &generic_order(7)).unwrap();
        let new = AvroSerde::<OrderV2>::from_schema_str(registry.clone(), V2).unwrap();
        let read = new.deserialize("orders", bytes.as_deref()).unwrap();
        assert_eq!(read.quantity, 1);
        assert_eq!(read.id, 7);
        // And the derived V2 schema agrees.
        let derived = AvroSerde::<OrderV2>::derived(registry);
        assert_eq!(
            derived.deserialize("orders", bytes.as_deref()).unwrap(),
            read
        );
    }

    #[test]
    fn incompatible_reader_schema_is_an_avro_error() {
        let (_, registry) = setup();
        let old = GenericAvroSerde::from_schema_str(registry.clone(), V1).unwrap();
        let bytes = old.serialize("orders", &generic_order(7)).unwrap();
        let reader = GenericAvroSerde::from_schema_str(
            registry,
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"id","type":"long"},{"name":"required","type":"string"}]}"#,
        )
        .unwrap();
        let err = reader.deserialize("orders", bytes.as_deref()).unwrap_err();
        assert!(matches!(err, SerdeError::Avro { .. }), "{err}");
    }

    #[test]
    fn values_that_do_not_fit_the_schema_are_refused() {
        let (_, registry) = setup();
        let serde = GenericAvroSerde::from_schema_str(registry, V1).unwrap();
        let err = serde
            .serialize("orders", &Value::String("x".into()))
            .unwrap_err();
        assert!(matches!(err, SerdeError::Avro { .. }), "{err}");
        assert!(GenericAvroSerde::from_schema_str(serde.registry.clone(), "{").is_err());
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        let (_, registry) = setup();
        let serde = AvroSerde::<Order>::derived(registry);
        let good = serde
            .serialize(
                "orders",
                &Order {
                    id: 1,
                    item: "tea".into(),
                    note: Some("n".into()),
                },
            )
            .unwrap()
            .unwrap();
        assert!(matches!(
            serde.deserialize("orders", None),
            Err(SerdeError::Null { .. })
        ));
        assert!(matches!(
            serde.deserialize("orders", Some(&[1, 0, 0, 0, 1, 2])),
            Err(SerdeError::MagicByte { found: 1, .. })
        ));
        assert!(matches!(
            serde.deserialize("orders", Some(&[0, 0, 0])),
            Err(SerdeError::Invalid { .. })
        ));
        assert!(matches!(
            serde.deserialize("orders", Some(&[0, 0, 0, 0x30, 0x39, 2])),
            Err(SerdeError::UnknownSchemaId { id: 12345 })
        ));
        for cut in 5..good.len() {
            let err = serde.deserialize("orders", Some(&good[..cut])).unwrap_err();
            assert!(
                matches!(err, SerdeError::Invalid { format: "avro", .. }),
                "{cut}: {err}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        let err = serde.deserialize("orders", Some(&trailing)).unwrap_err();
        assert!(
            matches!(err, SerdeError::Invalid { format: "avro", ref reason } if reason.contains("trailing")),
            "{err}"
        );
        // A string length far beyond the data.
        let mut huge = good[..5].to_vec();
        huge.extend_from_slice(&[2, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert!(serde.deserialize("orders", Some(&huge)).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let (_, registry) = setup();
        let serde = GenericAvroSerde::from_schema_str(registry, V1).unwrap();
        let good = serde.serialize("t", &generic_order(1)).unwrap().unwrap();
        // Deterministic xorshift garbage after a valid header.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..400 {
            let mut bytes = good[..5].to_vec();
            for _ in 0..len % 40 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            let _ = serde.deserialize("t", Some(&bytes));
        }
    }
}
