//! [`Serdes`], shorthand constructors for every serde, and [`DefaultSerde`], the serde a type gets when none is given.

use std::sync::Arc;

use apache_avro::{AvroSchema, Schema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AvroSerde, BincodeSerde, BytesSerde, CachedSchemaRegistry, F64Serde, GenericAvroSerde,
    I32Serde, I64Serde, JsonSerde, Nullable, Serde, StringSerde, UnitSerde,
};

/// Shorthand constructors for the serdes, named as in Java's `Serdes` class.
///
/// Each returns an `Arc` of the concrete serde, which converts to the
/// `Arc<dyn Serde<T>>` the DSL takes.
///
/// ```
/// use std::sync::Arc;
/// use streams_core::serde::{Serde, Serdes};
///
/// let values: Arc<dyn Serde<i64>> = Serdes::i64();
/// assert_eq!(values.serialize("t", &1).unwrap(), Some(vec![0, 0, 0, 0, 0, 0, 0, 1]));
/// let tombstones = Serdes::nullable(Serdes::string());
/// assert_eq!(tombstones.serialize("t", &None).unwrap(), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Serdes;

impl Serdes {
    /// UTF-8 strings ([`StringSerde`]).
    pub fn string() -> Arc<StringSerde> {
        Arc::new(StringSerde)
    }

    /// Raw bytes ([`BytesSerde`]).
    pub fn bytes() -> Arc<BytesSerde> {
        Arc::new(BytesSerde)
    }

    /// Big-endian `i32` ([`I32Serde`]), Java's `Serdes.Integer()`.
    pub fn i32() -> Arc<I32Serde> {
        Arc::new(I32Serde)
    }

    /// Big-endian `i64` ([`I64Serde`]), Java's `Serdes.Long()`.
    pub fn i64() -> Arc<I64Serde> {
        Arc::new(I64Serde)
    }

    /// Big-endian IEEE 754 `f64` ([`F64Serde`]), Java's `Serdes.Double()`.
    pub fn f64() -> Arc<F64Serde> {
        Arc::new(F64Serde)
    }

    /// `()` as an always-null record ([`UnitSerde`]), Java's `Serdes.Void()`.
    pub fn unit() -> Arc<UnitSerde> {
        Arc::new(UnitSerde)
    }

    /// `Option<T>` with `None` as a null record, around any serde ([`Nullable`]).
    pub fn nullable<S>(inner: S) -> Arc<Nullable<S>> {
        Arc::new(Nullable(inner))
    }

    /// JSON via `serde_json` ([`JsonSerde`]).
    pub fn json<T: Serialize + DeserializeOwned + 'static>() -> Arc<JsonSerde<T>> {
        Arc::new(JsonSerde::new())
    }

    /// bincode 2 via `serde` ([`BincodeSerde`]).
    pub fn bincode<T: Serialize + DeserializeOwned + 'static>() -> Arc<BincodeSerde<T>> {
        Arc::new(BincodeSerde::new())
    }

    /// Avro with the schema-registry wire format for a type with a derived schema
    /// ([`AvroSerde::derived`]), for record values; call `for_keys` on an
    /// [`AvroSerde`] built directly for keys.
    pub fn avro<T>(registry: CachedSchemaRegistry) -> Arc<AvroSerde<T>>
    where
        T: AvroSchema + Serialize + DeserializeOwned + 'static,
    {
        Arc::new(AvroSerde::derived(registry))
    }

    /// Avro [`Value`](apache_avro::types::Value)s of `schema` with the schema-registry
    /// wire format ([`GenericAvroSerde`]), for record values.
    pub fn generic_avro(registry: CachedSchemaRegistry, schema: Schema) -> Arc<GenericAvroSerde> {
        Arc::new(GenericAvroSerde::new(registry, schema))
    }
}

/// Types with a serde the DSL uses when none is given: the Java-compatible primitive
/// serdes.
///
/// Implemented for `String`, `Vec<u8>`, `i32`, `i64`, `f64` and `()`. Structured types
/// have no default on purpose: choose JSON, bincode or Avro explicitly.
///
/// ```
/// use streams_core::serde::DefaultSerde;
///
/// let serde = String::default_serde();
/// assert_eq!(serde.serialize("t", &"a".to_owned()).unwrap(), Some(b"a".to_vec()));
/// ```
pub trait DefaultSerde: Sized + 'static {
    /// The serde for `Self`; cheap, may be called once per topology node.
    fn default_serde() -> Arc<dyn Serde<Self>>;
}

macro_rules! default_serde {
    ($($ty:ty => $serde:expr),* $(,)?) => {
        $(
            impl DefaultSerde for $ty {
                fn default_serde() -> Arc<dyn Serde<Self>> {
                    Arc::new($serde)
                }
            }
        )*
    };
}

default_serde! {
    String => StringSerde,
    Vec<u8> => BytesSerde,
    i32 => I32Serde,
    i64 => I64Serde,
    f64 => F64Serde,
    () => UnitSerde,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: DefaultSerde + PartialEq + std::fmt::Debug>(value: T) -> Option<Vec<u8>> {
        let serde = T::default_serde();
        let bytes = serde.serialize("t", &value).unwrap();
        assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), value);
        bytes
    }

    #[test]
    fn defaults_are_the_java_layouts() {
        assert_eq!(round_trip("héllo".to_owned()), Some("héllo".into()));
        assert_eq!(round_trip(vec![1u8, 2]), Some(vec![1, 2]));
        assert_eq!(round_trip(1i32), Some(vec![0, 0, 0, 1]));
        assert_eq!(round_trip(-1i64), Some(vec![0xff; 8]));
        assert_eq!(round_trip(1.5f64), Some(vec![0x3f, 0xf8, 0, 0, 0, 0, 0, 0]));
        assert_eq!(round_trip(()), None);
    }

    #[test]
    fn factory_serdes_coerce_to_trait_objects() {
        let serdes: Vec<Arc<dyn Serde<String>>> = vec![Serdes::string(), Serdes::json::<String>()];
        let bytes: Vec<_> = serdes
            .iter()
            .map(|s| s.serialize("t", &"a".to_owned()).unwrap().unwrap())
            .collect();
        assert_eq!(bytes, [b"a".to_vec(), b"\"a\"".to_vec()]);
        let b: Arc<dyn Serde<(u8, String)>> = Serdes::bincode();
        let bytes = b.serialize("t", &(1, "x".into())).unwrap();
        assert_eq!(
            b.deserialize("t", bytes.as_deref()).unwrap(),
            (1, "x".into())
        );
        let n: Arc<dyn Serde<Option<i32>>> = Serdes::nullable(Serdes::i32());
        assert_eq!(n.serialize("t", &Some(2)).unwrap(), Some(vec![0, 0, 0, 2]));
        let _: Arc<dyn Serde<Vec<u8>>> = Serdes::bytes();
        let _: Arc<dyn Serde<i64>> = Serdes::i64();
        let _: Arc<dyn Serde<f64>> = Serdes::f64();
        let _: Arc<dyn Serde<()>> = Serdes::unit();
    }
}
