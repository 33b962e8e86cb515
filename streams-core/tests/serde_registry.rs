//! The Avro serdes against the real schema registry (`dev/registry start`): registration, id caching, reads by id, schema evolution and errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use apache_avro::types::Value;
use apache_avro::{AvroSchema, Schema};
use serde::{Deserialize, Serialize};
use streams_core::serde::{
    AvroSerde, CachedSchemaRegistry, GenericAvroSerde, HttpSchemaRegistry, SchemaRegistry,
    SchemaRegistryConfig, Serde, SerdeError,
};
use streams_test_support::{registry_url, require_registry};

/// An `Order` as first published: no quantity.
#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[avro(namespace = "shop", name = "Order")]
struct OrderV1 {
    id: i64,
    item: String,
    note: Option<String>,
}

/// The next version of `Order`: adds `quantity` with a default, a backward-compatible change.
#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[avro(namespace = "shop", name = "Order")]
struct OrderV2 {
    id: i64,
    item: String,
    note: Option<String>,
    #[avro(default = "1")]
    quantity: i32,
}

const CLICK_SCHEMA: &str = r#"{"type":"record","name":"Click","namespace":"web","fields":[
    {"name":"page","type":"string"},
    {"name":"millis","type":"long"}]}"#;

/// A topic name no earlier run used (the registry may keep subjects between runs).
fn unique_topic(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "serde-registry-{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(auto_register: bool) -> SchemaRegistryConfig {
    require_registry();
    SchemaRegistryConfig {
        auto_register,
        ..SchemaRegistryConfig::new(registry_url())
    }
}

/// A fresh caching client, sharing nothing with any other.
fn registry(auto_register: bool) -> CachedSchemaRegistry {
    CachedSchemaRegistry::new(&config(auto_register)).expect("registry client")
}

fn http() -> HttpSchemaRegistry {
    HttpSchemaRegistry::new(&config(true)).expect("registry client")
}

/// The schema id in bytes 1..5 of a framed record, after checking the magic byte.
fn schema_id(bytes: &[u8]) -> u32 {
    assert_eq!(bytes[0], 0, "magic byte");
    u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"))
}

fn click(page: &str, millis: i64) -> Value {
    Value::Record(vec![
        ("page".into(), Value::String(page.into())),
        ("millis".into(), Value::Long(millis)),
    ])
}

/// The real HTTP registry with call counters in front, to see what the cache lets through.
struct Counting {
    inner: HttpSchemaRegistry,
    fetches: Arc<AtomicUsize>,
    registrations: Arc<AtomicUsize>,
}

impl SchemaRegistry for Counting {
    fn schema_by_id(&self, id: u32) -> Result<String, SerdeError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.schema_by_id(id)
    }
    fn register(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
        self.registrations.fetch_add(1, Ordering::SeqCst);
        self.inner.register(subject, schema)
    }
    fn lookup(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
        self.registrations.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(subject, schema)
    }
}

/// Sets the compatibility level of `subject` through the Confluent API.
fn set_compatibility(subject: &str, level: &str) {
    let url = format!("{}/config/{subject}", registry_url());
    let response = reqwest::blocking::Client::new()
        .put(&url)
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(format!(r#"{{"compatibility":"{level}"}}"#))
        .send()
        .expect("PUT config");
    assert!(
        response.status().is_success(),
        "PUT {url}: {}",
        response.status()
    );
}

#[test]
fn serializing_registers_the_schema_under_the_value_subject() {
    let topic = unique_topic("register");
    let serde = GenericAvroSerde::from_schema_str(registry(true), CLICK_SCHEMA).unwrap();
    let bytes = serde
        .serialize(&topic, &click("/home", 7))
        .unwrap()
        .unwrap();
    let id = schema_id(&bytes);
    // Avro binary after the header: string "/home" (zigzag length 10), long 7 (zigzag 14).
    assert_eq!(bytes[5..], [10, b'/', b'h', b'o', b'm', b'e', 14]);

    let registered = http().latest_version(&format!("{topic}-value")).unwrap();
    assert_eq!(registered.id, id);
    assert_eq!(registered.version, 1);
    assert_eq!(
        Schema::parse_str(&registered.schema).unwrap(),
        *serde.schema()
    );
    assert!(matches!(
        http().latest_version(&format!("{topic}-key")),
        Err(SerdeError::SchemaNotRegistered { .. })
    ));

    // Serializing again with another client reuses the registered id.
    let again = GenericAvroSerde::from_schema_str(registry(true), CLICK_SCHEMA).unwrap();
    let bytes = again.serialize(&topic, &click("/b", 1)).unwrap().unwrap();
    assert_eq!(schema_id(&bytes), id);
}

#[test]
fn keys_register_under_the_key_subject() {
    let topic = unique_topic("keys");
    let serde = GenericAvroSerde::from_schema_str(registry(true), r#""string""#)
        .unwrap()
        .for_keys();
    let bytes = serde
        .serialize(&topic, &Value::String("user-1".into()))
        .unwrap()
        .unwrap();
    let registered = http().latest_version(&format!("{topic}-key")).unwrap();
    assert_eq!(registered.id, schema_id(&bytes));
    assert!(matches!(
        http().latest_version(&format!("{topic}-value")),
        Err(SerdeError::SchemaNotRegistered { ref subject }) if *subject == format!("{topic}-value")
    ));
}

#[test]
fn a_fresh_serde_reads_by_schema_id() {
    let topic = unique_topic("fresh");
    let writer = AvroSerde::<OrderV1>::derived(registry(true));
    let order = OrderV1 {
        id: 42,
        item: "tea".into(),
        note: Some("green".into()),
    };
    let bytes = writer.serialize(&topic, &order).unwrap();

    // New client, empty caches: the schema is fetched by the id in the record.
    let reader = AvroSerde::<OrderV1>::derived(registry(false));
    assert_eq!(reader.deserialize(&topic, bytes.as_deref()).unwrap(), order);
    // The generic reader sees the same record.
    let generic = GenericAvroSerde::new(registry(false), OrderV1::get_schema());
    assert_eq!(
        generic.deserialize(&topic, bytes.as_deref()).unwrap(),
        Value::Record(vec![
            ("id".into(), Value::Long(42)),
            ("item".into(), Value::String("tea".into())),
            (
                "note".into(),
                Value::Union(1, Box::new(Value::String("green".into())))
            ),
        ])
    );
}

#[test]
fn ids_and_schemas_are_cached() {
    let topic = unique_topic("cache");
    let fetches = Arc::new(AtomicUsize::new(0));
    let registrations = Arc::new(AtomicUsize::new(0));
    let registry = CachedSchemaRegistry::with_registry(
        Counting {
            inner: http(),
            fetches: Arc::clone(&fetches),
            registrations: Arc::clone(&registrations),
        },
        true,
    );
    let serde = GenericAvroSerde::from_schema_str(registry.clone(), CLICK_SCHEMA).unwrap();
    // A clone of the registry shares the caches.
    let other = GenericAvroSerde::from_schema_str(registry.clone(), CLICK_SCHEMA).unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        let bytes = serde.serialize(&topic, &click("/p", i)).unwrap().unwrap();
        ids.push(schema_id(&bytes));
        assert_eq!(
            other.deserialize(&topic, Some(&bytes)).unwrap(),
            click("/p", i)
        );
    }
    assert!(ids.iter().all(|&id| id == ids[0]));
    assert_eq!(registrations.load(Ordering::SeqCst), 1);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // The same schema under another subject is a new registration (same id in this
    // registry, as the content is the same), but no new fetch.
    let second = unique_topic("cache-other");
    let bytes = serde.serialize(&second, &click("/q", 1)).unwrap().unwrap();
    other.deserialize(&second, Some(&bytes)).unwrap();
    assert_eq!(registrations.load(Ordering::SeqCst), 2);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        if schema_id(&bytes) == ids[0] { 1 } else { 2 }
    );
}

#[test]
fn without_auto_registration_the_schema_must_exist() {
    let topic = unique_topic("lookup");
    let lookup_only = AvroSerde::<OrderV1>::derived(registry(false));
    let order = OrderV1 {
        id: 1,
        item: "cake".into(),
        note: None,
    };
    let err = lookup_only.serialize(&topic, &order).unwrap_err();
    assert!(
        matches!(err, SerdeError::SchemaNotRegistered { ref subject } if *subject == format!("{topic}-value")),
        "{err}"
    );

    let registered = AvroSerde::<OrderV1>::derived(registry(true))
        .serialize(&topic, &order)
        .unwrap()
        .unwrap();
    let looked_up = lookup_only.serialize(&topic, &order).unwrap().unwrap();
    assert_eq!(looked_up, registered);
    assert_eq!(
        http()
            .latest_version(&format!("{topic}-value"))
            .unwrap()
            .version,
        1
    );
}

#[test]
fn readers_and_writers_evolve_independently() {
    let topic = unique_topic("evolution");
    let subject = format!("{topic}-value");
    let old = OrderV1 {
        id: 7,
        item: "tea".into(),
        note: None,
    };
    let v1_bytes = AvroSerde::<OrderV1>::derived(registry(true))
        .serialize(&topic, &old)
        .unwrap();
    // The registry itself now checks that each new version can read the previous one.
    set_compatibility(&subject, "BACKWARD");

    // A V2 reader fills the added field with its default.
    let v2 = AvroSerde::<OrderV2>::derived(registry(true));
    assert_eq!(
        v2.deserialize(&topic, v1_bytes.as_deref()).unwrap(),
        OrderV2 {
            id: 7,
            item: "tea".into(),
            note: None,
            quantity: 1,
        }
    );

    // Writing V2 registers version 2 under a new id; a V1 reader skips the new field.
    let new = OrderV2 {
        id: 8,
        item: "cake".into(),
        note: Some("x".into()),
        quantity: 3,
    };
    let v2_bytes = v2.serialize(&topic, &new).unwrap().unwrap();
    assert_ne!(
        schema_id(&v2_bytes),
        schema_id(v1_bytes.as_deref().unwrap())
    );
    let latest = http().latest_version(&subject).unwrap();
    assert_eq!((latest.version, latest.id), (2, schema_id(&v2_bytes)));
    let v1_reader = AvroSerde::<OrderV1>::derived(registry(false));
    assert_eq!(
        v1_reader.deserialize(&topic, Some(&v2_bytes)).unwrap(),
        OrderV1 {
            id: 8,
            item: "cake".into(),
            note: Some("x".into()),
        }
    );

    // A field added without a default breaks backward compatibility: the registry refuses it.
    let breaking = GenericAvroSerde::from_schema_str(
        registry(true),
        r#"{"type":"record","name":"Order","namespace":"shop","fields":[
            {"name":"id","type":"long"},{"name":"item","type":"string"},
            {"name":"note","type":["null","string"]},{"name":"quantity","type":"int"},
            {"name":"currency","type":"string"}]}"#,
    )
    .unwrap();
    let value = Value::Record(vec![
        ("id".into(), Value::Long(9)),
        ("item".into(), Value::String("pie".into())),
        ("note".into(), Value::Union(0, Box::new(Value::Null))),
        ("quantity".into(), Value::Int(1)),
        ("currency".into(), Value::String("EUR".into())),
    ]);
    let err = breaking.serialize(&topic, &value).unwrap_err();
    match &err {
        SerdeError::Registry { url, status, .. } => {
            assert_eq!(*status, Some(409), "{err}");
            assert!(
                url.contains(&format!("/subjects/{subject}/versions")),
                "{err}"
            );
        }
        other => panic!("expected a registry error, got {other}"),
    }

    // A reader whose schema cannot read the writer's: a typed Avro error, no panic.
    let incompatible_reader = GenericAvroSerde::from_schema_str(
        registry(false),
        r#"{"type":"record","name":"Order","namespace":"shop","fields":[
            {"name":"id","type":"long"},{"name":"required","type":"string"}]}"#,
    )
    .unwrap();
    let err = incompatible_reader
        .deserialize(&topic, v1_bytes.as_deref())
        .unwrap_err();
    assert!(matches!(err, SerdeError::Avro { .. }), "{err}");
}

#[test]
fn unknown_schema_id_is_a_typed_error() {
    let topic = unique_topic("unknown");
    let serde = AvroSerde::<OrderV1>::derived(registry(true));
    let unknown = 0x7fff_fff0_u32;
    let mut bytes = vec![0];
    bytes.extend_from_slice(&unknown.to_be_bytes());
    bytes.extend_from_slice(&[2, 6, b't', b'e', b'a', 0]);
    let err = serde.deserialize(&topic, Some(&bytes)).unwrap_err();
    assert!(
        matches!(err, SerdeError::UnknownSchemaId { id } if id == unknown),
        "{err}"
    );
    assert!(matches!(
        http().schema_by_id(unknown),
        Err(SerdeError::UnknownSchemaId { id }) if id == unknown
    ));
    // Not framed at all: refused before asking the registry.
    let err = serde.deserialize(&topic, Some(b"{\"id\":1}")).unwrap_err();
    assert!(
        matches!(err, SerdeError::MagicByte { found: b'{', .. }),
        "{err}"
    );
}

#[test]
fn registry_errors_name_the_url() {
    require_registry();
    let wrong_path = format!("{}/no-such-api", registry_url());
    let registry = HttpSchemaRegistry::new(&SchemaRegistryConfig::new(&wrong_path)).unwrap();
    let err = registry.register("t-value", r#""string""#).unwrap_err();
    match &err {
        SerdeError::Registry { url, status, .. } => {
            assert!(status.is_some_and(|s| s >= 400), "{err}");
            assert_eq!(*url, format!("{wrong_path}/subjects/t-value/versions"));
        }
        other => panic!("expected a registry error, got {other}"),
    }
    assert!(err.to_string().contains(&wrong_path), "{err}");
}

/// Serdes are called from stream threads, but must not panic if used from async code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_inside_a_tokio_runtime() {
    let topic = unique_topic("tokio");
    let serde = GenericAvroSerde::from_schema_str(registry(true), CLICK_SCHEMA).unwrap();
    let bytes = serde.serialize(&topic, &click("/async", 3)).unwrap();
    let fresh = GenericAvroSerde::from_schema_str(registry(true), CLICK_SCHEMA).unwrap();
    assert_eq!(
        fresh.deserialize(&topic, bytes.as_deref()).unwrap(),
        click("/async", 3)
    );
    drop((serde, fresh));
}
