//! A small blocking client for Confluent-compatible schema registries, with the caches serdes need.
//!
//! [`SchemaRegistry`] is the registry's API as the serdes use it (register, look up, fetch by
//! id); [`HttpSchemaRegistry`] speaks it over HTTP to any Confluent-compatible registry
//! (Confluent Schema Registry, Apicurio's `ccompat` API, Redpanda, Karapace). The
//! serdes talk to a [`CachedSchemaRegistry`], which remembers every schema id it has
//! seen so that only the first record of each schema reaches the network.
//!
//! Calls block the calling thread (stream threads are plain threads). The HTTP client runs
//! on a thread of its own, so calling from inside a tokio runtime blocks but never panics.

use std::collections::HashMap;
use std::fmt;
use std::sync::{mpsc, Arc, PoisonError, RwLock};
use std::thread;
use std::time::Duration;

use apache_avro::Schema;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::SerdeError;

/// Where the schema registry is and how serializers use it.
///
/// ```
/// use std::time::Duration;
/// use streams_core::serde::SchemaRegistryConfig;
///
/// let config = SchemaRegistryConfig {
///     auto_register: false,
///     timeout: Duration::from_secs(3),
///     ..SchemaRegistryConfig::new("http://127.0.0.1:8081")
/// };
/// assert_eq!(config.url, "http://127.0.0.1:8081");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081` for
    /// Confluent or `http://127.0.0.1:8080/apis/ccompat/v7` for Apicurio. `http` and
    /// `https` are supported.
    pub url: String,
    /// Whether serializers register their schema under the subject (`true`, the default,
    /// as Java's `auto.register.schemas`) or only look up its id and fail with
    /// [`SerdeError::SchemaNotRegistered`] when it is missing (`false`, usual in
    /// production where schemas are registered by CI).
    pub auto_register: bool,
    /// Timeout for each HTTP request, connecting included. Default: 10 s. A stream thread
    /// waits this long on an unreachable registry, but only for schemas not yet cached.
    pub timeout: Duration,
    /// User name and password for HTTP basic authentication, if the registry needs it.
    pub basic_auth: Option<(String, String)>,
}

impl SchemaRegistryConfig {
    /// A config for the registry at `url`, with auto-registration on, a 10 s timeout and
    /// no authentication.
    pub fn new(url: impl Into<String>) -> Self {
        SchemaRegistryConfig {
            url: url.into(),
            auto_register: true,
            timeout: Duration::from_secs(10),
            basic_auth: None,
        }
    }
}

impl fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryConfig")
            .field("url", &self.url)
            .field("auto_register", &self.auto_register)
            .field("timeout", &self.timeout)
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

/// The schema-registry operations the serdes need, returning [`SerdeError`]s.
///
/// Implemented by [`HttpSchemaRegistry`]; implement it yourself to put something else
/// behind the serdes (a registry with another API, or fixed schemas in tests). Calls
/// block; implementations are shared between stream threads.
pub trait SchemaRegistry: Send + Sync + 'static {
    /// The schema text registered with global id `id`. Fails with
    /// [`SerdeError::UnknownSchemaId`] if there is none.
    fn schema_by_id(&self, id: u32) -> Result<String, SerdeError>;

    /// Registers `schema` under `subject` and returns its id. Registering a schema that
    /// is already there returns its existing id. The registry may refuse a schema that is
    /// incompatible with the subject's earlier versions ([`SerdeError::Registry`]).
    fn register(&self, subject: &str, schema: &str) -> Result<u32, SerdeError>;

    /// The id of `schema` under `subject`, without registering it. Fails with
    /// [`SerdeError::SchemaNotRegistered`] if the subject or the schema is missing.
    fn lookup(&self, subject: &str, schema: &str) -> Result<u32, SerdeError>;
}

/// A schema version registered under a subject, as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredSchema {
    /// The subject, e.g. `orders-value`.
    pub subject: String,
    /// The global schema id written in bytes 1..5 of each record.
    pub id: u32,
    /// The version of the schema within the subject, from 1.
    pub version: u32,
    /// The schema text.
    pub schema: String,
}

/// Blocking HTTP client for the Confluent schema-registry REST API (`reqwest`).
///
/// Uses `POST /subjects/{subject}/versions` to register, `POST /subjects/{subject}` to
/// look up, `GET /schemas/ids/{id}` to fetch by id and
/// `GET /subjects/{subject}/versions/latest` for [`latest_version`](Self::latest_version);
/// nothing is cached here (wrap it in [`CachedSchemaRegistry`]). Only Avro schemas are
/// fetched: a schema of another type (Protobuf, JSON Schema) is refused with
/// [`SerdeError::Registry`]. Schema references are not followed. Every error names the
/// URL that was requested.
///
/// # Threads and async code
///
/// `reqwest`'s blocking client panics when it is built, used or dropped on a thread that
/// runs async code (inside a tokio runtime). So that the serdes can be called from
/// anywhere, the HTTP client lives on a thread of its own (named `schema-registry-http`)
/// owned by this value: each call hands its request to that thread and blocks the
/// calling thread until the answer arrives or the timeout expires. Called from an async
/// task this does not panic, but it does block that runtime worker while the registry
/// answers; use `tokio::task::spawn_blocking` there. Requests are sent one at a time,
/// which costs little because [`CachedSchemaRegistry`] only sends the first request for
/// each schema. The thread stops when this value is dropped.
pub struct HttpSchemaRegistry {
    base: Url,
    calls: mpsc::Sender<Call>,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/json";
/// Confluent error codes: subject not found, schema not found.
const SUBJECT_NOT_FOUND: i64 = 40401;
const SCHEMA_NOT_FOUND: i64 = 40403;
/// At most this much of an unparsable answer is quoted in an error.
const QUOTED_BODY_CHARS: usize = 500;

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaResponse {
    schema: String,
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error_code: Option<i64>,
    message: Option<String>,
}

/// A request for the HTTP thread, with the channel its outcome goes back on.
struct Call {
    method: Method,
    url: Url,
    body: Option<String>,
    reply: mpsc::SyncSender<Result<Answer, reqwest::Error>>,
}

/// Any HTTP answer, success or not.
struct Answer {
    status: StatusCode,
    body: String,
}

/// Why a registry call failed: an error answer, or no usable answer at all.
enum CallError {
    /// The registry answered with a non-success status (boxed: it is large).
    Answer(Box<HttpFailure>),
    /// The request could not be made or the answer not read.
    Transport(SerdeError),
}

impl CallError {
    /// The error for callers that treat every error answer alike.
    fn into_error(self, what: &str) -> SerdeError {
        match self {
            CallError::Answer(failure) => (*failure).into_error(what),
            CallError::Transport(error) => error,
        }
    }
}

/// A non-success answer from the registry.
struct HttpFailure {
    method: Method,
    url: Url,
    status: StatusCode,
    error_code: Option<i64>,
    message: String,
}

impl HttpFailure {
    fn into_error(self, what: &str) -> SerdeError {
        SerdeError::Registry {
            url: self.url.to_string(),
            status: Some(self.status.as_u16()),
            reason: format!(
                "{what}: {} answered HTTP {}{}: {}",
                self.method,
                self.status,
                self.error_code
                    .map(|c| format!(" (error code {c})"))
                    .unwrap_or_default(),
                self.message
            ),
        }
    }
}

/// The message of `error` followed by those of its sources, which is where `reqwest`
/// puts the actual cause ("connection refused", "timed out").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Runs on the HTTP thread: sends one request and reads the whole answer.
fn perform(
    client: &Client,
    basic_auth: Option<&(String, String)>,
    method: Method,
    url: Url,
    body: Option<String>,
) -> Result<Answer, reqwest::Error> {
    let mut request = client
        .request(method, url)
        .header(reqwest::header::ACCEPT, ACCEPT);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
    }
    if let Some((user, password)) = basic_auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send()?;
    let status = response.status();
    let body = response.text()?;
    Ok(Answer { status, body })
}

/// Starts the thread that owns the blocking HTTP client and serves [`Call`]s until every
/// sender is dropped. Waits until the client is built.
fn spawn_http_thread(config: &SchemaRegistryConfig) -> Result<mpsc::Sender<Call>, SerdeError> {
    let error = |reason: String| SerdeError::Registry {
        url: config.url.clone(),
        status: None,
        reason,
    };
    let (calls, incoming) = mpsc::channel::<Call>();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
    let timeout = config.timeout;
    let basic_auth = config.basic_auth.clone();
    thread::Builder::new()
        .name("schema-registry-http".to_owned())
        .spawn(move || {
            let client = match Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
            {
                Ok(client) => client,
                Err(e) => {
                    let _ = ready_tx.send(Err(error_chain(&e)));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            for call in incoming {
                let outcome = perform(
                    &client,
                    basic_auth.as_ref(),
                    call.method,
                    call.url,
                    call.body,
                );
                // A caller that stopped waiting needs no answer.
                let _ = call.reply.send(outcome);
            }
        })
        .map_err(|e| error(format!("cannot start the schema-registry HTTP thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(calls),
        Ok(Err(reason)) => Err(error(format!("cannot build the HTTP client: {reason}"))),
        Err(_) => Err(error(
            "the schema-registry HTTP thread stopped while starting".to_owned(),
        )),
    }
}

impl HttpSchemaRegistry {
    /// A client for the registry in `config`. Fails with [`SerdeError::Registry`] if the
    /// URL is not an `http(s)` URL or the HTTP client cannot be built; does not contact
    /// the registry. Starts the HTTP thread described above.
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, SerdeError> {
        let config_error = |reason: String| SerdeError::Registry {
            url: config.url.clone(),
            status: None,
            reason,
        };
        let base = Url::parse(&config.url)
            .map_err(|e| config_error(format!("invalid registry URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(config_error(
                "the registry URL must be an http or https URL".to_owned(),
            ));
        }
        let calls = spawn_http_thread(config)?;
        Ok(HttpSchemaRegistry { base, calls })
    }

    /// The base URL requests are made under.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// The latest version registered under `subject`. Fails with
    /// [`SerdeError::SchemaNotRegistered`] if the subject does not exist.
    pub fn latest_version(&self, subject: &str) -> Result<RegisteredSchema, SerdeError> {
        let url = self.endpoint(&["subjects", subject, "versions", "latest"]);
        let what = format!("fetching the latest version of subject {subject}");
        let (url, body) = self.call(Method::GET, url, None).map_err(|e| match e {
            CallError::Answer(f)
                if f.status == StatusCode::NOT_FOUND
                    && matches!(f.error_code, None | Some(SUBJECT_NOT_FOUND)) =>
            {
                SerdeError::SchemaNotRegistered {
                    subject: subject.to_owned(),
                }
            }
            other => other.into_error(&what),
        })?;
        parse(&url, &body, &what)
    }

    /// `segments` appended to the base URL, each percent-encoded (a `/` in a subject
    /// name stays inside its segment).
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Makes one request on the HTTP thread; returns the URL and the body of a
    /// successful answer.
    fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<String>,
    ) -> Result<(Url, String), CallError> {
        let stopped = |url: &Url| {
            CallError::Transport(SerdeError::Registry {
                url: url.to_string(),
                status: None,
                reason: "the schema-registry HTTP thread has stopped".to_owned(),
            })
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        let call = Call {
            method: method.clone(),
            url: url.clone(),
            body,
            reply,
        };
        if self.calls.send(call).is_err() {
            return Err(stopped(&url));
        }
        let answer = match outcome.recv() {
            Err(_) => return Err(stopped(&url)),
            Ok(Err(e)) => {
                return Err(CallError::Transport(SerdeError::Registry {
                    url: url.to_string(),
                    status: None,
                    reason: format!(
                        "cannot reach the schema registry ({method}): {}",
                        error_chain(&e.without_url())
                    ),
                }))
            }
            Ok(Ok(answer)) => answer,
        };
        if answer.status.is_success() {
            return Ok((url, answer.body));
        }
        let (error_code, message) = match serde_json::from_str::<ErrorResponse>(&answer.body) {
            Ok(ErrorResponse {
                error_code,
                message,
            }) => (error_code, message.unwrap_or_default()),
            Err(_) => (None, answer.body.chars().take(QUOTED_BODY_CHARS).collect()),
        };
        Err(CallError::Answer(Box::new(HttpFailure {
            method,
            url,
            status: answer.status,
            error_code,
            message,
        })))
    }

    fn post_schema(&self, segments: &[&str], schema: &str) -> Result<(Url, String), CallError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        self.call(Method::POST, self.endpoint(segments), Some(body))
    }
}

/// Parses a successful answer from `url`, or fails with [`SerdeError::Registry`].
fn parse<T: for<'de> Deserialize<'de>>(url: &Url, body: &str, what: &str) -> Result<T, SerdeError> {
    serde_json::from_str(body).map_err(|e| SerdeError::Registry {
        url: url.to_string(),
        status: None,
        reason: format!(
            "{what}: unexpected answer ({e}): {}",
            body.chars().take(QUOTED_BODY_CHARS).collect::<String>()
        ),
    })
}

impl SchemaRegistry for HttpSchemaRegistry {
    fn schema_by_id(&self, id: u32) -> Result<String, SerdeError> {
        let what = format!("fetching schema id {id}");
        let url = self.endpoint(&["schemas", "ids", &id.to_string()]);
        let (url, body) = self.call(Method::GET, url, None).map_err(|e| match e {
            CallError::Answer(f) if f.status == StatusCode::NOT_FOUND => {
                SerdeError::UnknownSchemaId { id }
            }
            other => other.into_error(&what),
        })?;
        let response: SchemaResponse = parse(&url, &body, &what)?;
        match response.schema_type.as_deref() {
            None | Some("AVRO") => Ok(response.schema),
            Some(other) => Err(SerdeError::Registry {
                url: url.to_string(),
                status: None,
                reason: format!("schema id {id} is a {other} schema, not an Avro schema"),
            }),
        }
    }

    fn register(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
        let what = format!("registering a schema under subject {subject}");
        let (url, body) = self
            .post_schema(&["subjects", subject, "versions"], schema)
            .map_err(|e| e.into_error(&what))?;
        parse::<IdResponse>(&url, &body, &what).map(|r| r.id)
    }

    fn lookup(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
        let what = format!("looking up a schema under subject {subject}");
        let (url, body) =
            self.post_schema(&["subjects", subject], schema)
                .map_err(|e| match e {
                    CallError::Answer(f)
                        if f.status == StatusCode::NOT_FOUND
                            && matches!(
                                f.error_code,
                                None | Some(SUBJECT_NOT_FOUND | SCHEMA_NOT_FOUND)
                            ) =>
                    {
                        SerdeError::SchemaNotRegistered {
                            subject: subject.to_owned(),
                        }
                    }
                    other => other.into_error(&what),
                })?;
        parse::<IdResponse>(&url, &body, &what).map(|r| r.id)
    }
}

impl fmt::Debug for HttpSchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSchemaRegistry")
            .field("url", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A shared, caching front for a [`SchemaRegistry`], used by the Avro serdes.
///
/// Caches schema id → parsed schema and (subject, schema text) → id, like Java's
/// `CachedSchemaRegistryClient`, so the registry is asked once per schema and not once per
/// record. Cloning is cheap and clones share the caches: build one per application and
/// hand clones to the key and value serdes of every topic.
///
/// Caches only grow (by one entry per distinct schema seen); errors are not cached, so
/// a failed call is retried by the next record.
///
/// ```no_run
/// use streams_core::serde::{CachedSchemaRegistry, SchemaRegistryConfig};
///
/// let registry = CachedSchemaRegistry::new(&SchemaRegistryConfig::new("http://127.0.0.1:8081"))?;
/// let schema = registry.schema(1)?; // fetched once, then served from the cache
/// # Ok::<(), streams_core::serde::SerdeError>(())
/// ```
#[derive(Clone)]
pub struct CachedSchemaRegistry {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    registry: Box<dyn SchemaRegistry>,
    auto_register: bool,
    schemas: RwLock<HashMap<u32, Arc<Schema>>>,
    /// Subject → schema text → id; nested so that a hit needs no allocation.
    ids: RwLock<HashMap<String, HashMap<String, u32>>>,
}

impl CachedSchemaRegistry {
    /// A caching client for the HTTP registry in `config` (see [`HttpSchemaRegistry::new`]
    /// for errors and the async-context pitfall).
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, SerdeError> {
        Ok(Self::with_registry(
            HttpSchemaRegistry::new(config)?,
            config.auto_register,
        ))
    }

    /// A caching front for any registry; `auto_register` as in [`SchemaRegistryConfig`].
    pub fn with_registry(registry: impl SchemaRegistry, auto_register: bool) -> Self {
        CachedSchemaRegistry {
            inner: Arc::new(CacheInner {
                registry: Box::new(registry),
                auto_register,
                schemas: RwLock::default(),
                ids: RwLock::default(),
            }),
        }
    }

    /// Whether [`id_for`](Self::id_for) registers missing schemas.
    pub fn auto_register(&self) -> bool {
        self.inner.auto_register
    }

    /// The Avro schema with id `id`, fetched and parsed on first use.
    ///
    /// Fails with [`SerdeError::UnknownSchemaId`], [`SerdeError::Registry`], or
    /// [`SerdeError::Avro`] if the registry's text is not a valid Avro schema.
    pub fn schema(&self, id: u32) -> Result<Arc<Schema>, SerdeError> {
        let hit = self
            .inner
            .schemas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        if let Some(schema) = hit {
            return Ok(schema);
        }
        let text = self.inner.registry.schema_by_id(id)?;
        let schema = Arc::new(Schema::parse_str(&text).map_err(|e| SerdeError::Avro {
            reason: format!("schema id {id} from the registry is not a valid Avro schema: {e}"),
        })?);
        self.inner
            .schemas
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    /// The id of `schema` (schema text) under `subject`: registered if auto-registration
    /// is on, otherwise looked up. Cached per (subject, text), so pass the same text for
    /// the same schema.
    pub fn id_for(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
        let hit = self
            .inner
            .ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(subject)
            .and_then(|schemas| schemas.get(schema))
            .copied();
        if let Some(id) = hit {
            return Ok(id);
        }
        let id = if self.inner.auto_register {
            self.inner.registry.register(subject, schema)?
        } else {
            self.inner.registry.lookup(subject, schema)?
        };
        self.inner
            .ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(subject.to_owned())
            .or_default()
            .insert(schema.to_owned(), id);
        Ok(id)
    }
}

impl fmt::Debug for CachedSchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSchemaRegistry")
            .field("auto_register", &self.inner.auto_register)
            .finish_non_exhaustive()
    }
}

/// An in-memory registry for unit tests of the serdes: no HTTP, counts calls.
#[cfg(test)]
pub(crate) mod memory {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// Ids start at 1 and are global, as in Confluent's registry.
    #[derive(Default)]
    pub(crate) struct MemoryRegistry {
        state: Mutex<State>,
        pub(crate) calls: AtomicUsize,
    }

    #[derive(Default)]
    struct State {
        schemas: Vec<String>,
        subjects: HashMap<String, Vec<u32>>,
    }

    impl MemoryRegistry {
        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.state.lock().unwrap()
        }
    }

    impl SchemaRegistry for Arc<MemoryRegistry> {
        fn schema_by_id(&self, id: u32) -> Result<String, SerdeError> {
            let state = self.state();
            id.checked_sub(1)
                .and_then(|i| state.schemas.get(i as usize))
                .cloned()
                .ok_or(SerdeError::UnknownSchemaId { id })
        }

        fn register(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
            let mut state = self.state();
            let id = match state.schemas.iter().position(|s| s == schema) {
                Some(i) => i as u32 + 1,
                None => {
                    state.schemas.push(schema.to_owned());
                    state.schemas.len() as u32
                }
            };
            let versions = state.subjects.entry(subject.to_owned()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            Ok(id)
        }

        fn lookup(&self, subject: &str, schema: &str) -> Result<u32, SerdeError> {
            let state = self.state();
            state
                .subjects
                .get(subject)
                .into_iter()
                .flatten()
                .copied()
                .find(|&id| state.schemas[id as usize - 1] == schema)
                .ok_or_else(|| SerdeError::SchemaNotRegistered {
                    subject: subject.to_owned(),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::memory::MemoryRegistry;
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;

    #[test]
    fn caches_ids_and_schemas() {
        let memory = Arc::new(MemoryRegistry::default());
        let registry = CachedSchemaRegistry::with_registry(Arc::clone(&memory), true);
        let id = registry.id_for("t-value", SCHEMA).unwrap();
        assert_eq!(registry.clone().id_for("t-value", SCHEMA).unwrap(), id);
        assert_eq!(memory.calls.load(Ordering::SeqCst), 1);
        let schema = registry.schema(id).unwrap();
        assert_eq!(*registry.schema(id).unwrap(), *schema);
        assert_eq!(memory.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn without_auto_register_only_looks_up() {
        let memory = Arc::new(MemoryRegistry::default());
        let registry = CachedSchemaRegistry::with_registry(Arc::clone(&memory), false);
        assert!(!registry.auto_register());
        let err = registry.id_for("t-value", SCHEMA).unwrap_err();
        assert!(
            matches!(err, SerdeError::SchemaNotRegistered { ref subject } if subject == "t-value")
        );
        let id = memory.register("t-value", SCHEMA).unwrap();
        assert_eq!(registry.id_for("t-value", SCHEMA).unwrap(), id);
    }

    #[test]
    fn unknown_ids_and_invalid_schemas_are_errors_not_cached() {
        let memory = Arc::new(MemoryRegistry::default());
        let registry = CachedSchemaRegistry::with_registry(Arc::clone(&memory), true);
        assert!(matches!(
            registry.schema(9),
            Err(SerdeError::UnknownSchemaId { id: 9 })
        ));
        let id = registry.id_for("t-value", "not a schema").unwrap();
        assert!(matches!(registry.schema(id), Err(SerdeError::Avro { .. })));
        let calls = memory.calls.load(Ordering::SeqCst);
        assert!(registry.schema(id).is_err());
        assert_eq!(memory.calls.load(Ordering::SeqCst), calls + 1);
    }

    #[test]
    fn http_client_refuses_bad_urls() {
        for url in ["not a url", "ftp://host/", "mailto:someone@example.com"] {
            let err = HttpSchemaRegistry::new(&SchemaRegistryConfig::new(url)).unwrap_err();
            assert!(
                matches!(err, SerdeError::Registry { status: None, .. }),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn http_urls_keep_the_base_path_and_escape_subjects() {
        let http = HttpSchemaRegistry::new(&SchemaRegistryConfig::new(
            "http://127.0.0.1:1/apis/ccompat/v7/",
        ))
        .unwrap();
        assert_eq!(
            http.endpoint(&["subjects", "a b/c-value", "versions"])
                .as_str(),
            "http://127.0.0.1:1/apis/ccompat/v7/subjects/a%20b%2Fc-value/versions"
        );
    }

    #[test]
    fn unreachable_registry_is_a_registry_error() {
        let config = SchemaRegistryConfig {
            timeout: Duration::from_secs(2),
            ..SchemaRegistryConfig::new("http://127.0.0.1:1")
        };
        let http = HttpSchemaRegistry::new(&config).unwrap();
        let err = http.schema_by_id(1).unwrap_err();
        assert!(
            matches!(err, SerdeError::Registry { status: None, ref reason, ref url }
                if reason.contains("cannot reach") && url == "http://127.0.0.1:1/schemas/ids/1"),
            "{err}"
        );
    }

    /// `reqwest`'s blocking client panics in async contexts; ours keeps it on its own thread.
    #[tokio::test(flavor = "current_thread")]
    async fn usable_and_droppable_inside_a_tokio_runtime() {
        let config = SchemaRegistryConfig {
            timeout: Duration::from_secs(2),
            ..SchemaRegistryConfig::new("http://127.0.0.1:1")
        };
        let registry = CachedSchemaRegistry::new(&config).unwrap();
        let err = registry.schema(1).unwrap_err();
        assert!(matches!(err, SerdeError::Registry { .. }), "{err}");
        drop(registry);
    }

    #[test]
    fn debug_hides_the_password() {
        let config = SchemaRegistryConfig {
            basic_auth: Some(("user".into(), "secret".into())),
            ..SchemaRegistryConfig::new("http://localhost")
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("user") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
