//! `StreamsConfig`: typed settings of a streams application, with defaults and
//! environment overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error_handling::{
    DeserializationErrorHandler, ProcessingErrorHandler, ProductionErrorHandler,
};
use super::StreamsError;

/// How strongly the runtime guarantees that every input record affects the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// Offsets are committed only after everything produced before them is acknowledged:
    /// no record is lost, some may be processed twice after a failure.
    #[default]
    AtLeastOnce,
    /// Transactions spanning outputs and consumed offsets (Kafka's `exactly_once_v2`).
    ExactlyOnceV2,
}

impl std::str::FromStr for ProcessingGuarantee {
    type Err = StreamsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnceV2),
            other => Err(StreamsError::Config(format!(
                "processing guarantee `{other}`: expected at_least_once or exactly_once_v2"
            ))),
        }
    }
}

/// Settings of a streams application. Build one with [`StreamsConfig::new`], adjust it
/// with the `with_*` methods, and optionally let the environment override it with
/// [`StreamsConfig::with_env_overrides`].
///
/// ```
/// use std::time::Duration;
/// use streams_core::runtime::StreamsConfig;
///
/// let config = StreamsConfig::new("orders-service", "127.0.0.1:9092")
///     .with_stream_threads(2)
///     .with_commit_interval(Duration::from_secs(5));
/// assert_eq!(config.application_id, "orders-service");
/// assert_eq!(config.num_stream_threads, 2);
/// ```
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// Consumer group id, prefix of internal topics and of transactional ids.
    pub application_id: String,
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub bootstrap_servers: String,
    /// Stream threads of this instance; each is one consumer of the group. Default 1.
    pub num_stream_threads: usize,
    /// How often offsets are committed. Default 30 s (100 ms under exactly-once).
    pub commit_interval: Duration,
    /// At-least-once (default) or exactly-once.
    pub processing_guarantee: ProcessingGuarantee,
    /// Where persistent state stores keep their files. Default `<tmp>/streams-rs`.
    pub state_dir: PathBuf,
    /// `host:port` under which this instance serves interactive queries, if any: it is
    /// announced to the other instances (see [`KafkaStreams::metadata_for_all_instances`](super::KafkaStreams::metadata_for_all_instances))
    /// and, with the `grpc` feature, the query service listens there.
    pub application_server: Option<String>,
    /// Copies of each task's stores kept up to date on other instances from the
    /// changelogs, so that a failover does not restore from scratch. Default 0.
    pub num_standby_replicas: usize,
    /// How long a task with some empty input partitions waits for them before processing
    /// the records it has (out-of-order across partitions is then possible), once they
    /// are known to hold nothing more on the broker. While an empty partition still has
    /// records on the broker that were not fetched, the task waits for them whatever this
    /// says, as Kafka Streams does (KIP-695). Default 0: no wait beyond that.
    pub max_task_idle: Duration,
    /// Records buffered per partition before its fetching is paused. Default 1000.
    pub buffered_records_per_partition: usize,
    /// Longest a poll blocks when no task has buffered records. Default 100 ms.
    pub poll_timeout: Duration,
    /// Replication factor of internal topics. Default 1 (a single-broker cluster).
    pub replication_factor: i32,
    /// What to do with a record that cannot be deserialized. Default: fail.
    pub deserialization_error_handler: DeserializationErrorHandler,
    /// What to do when a processor returns an error. Default: fail.
    pub processing_error_handler: ProcessingErrorHandler,
    /// What to do when the broker rejects a produced record. Default: fail.
    pub production_error_handler: ProductionErrorHandler,
    /// How often librdkafka reports statistics (consumer lag metrics). Default 5 s;
    /// zero disables them.
    pub statistics_interval: Duration,
    /// The record cache of the instance, in bytes (Kafka's `statestore.cache.max.bytes`),
    /// divided evenly between the stream threads and shared by each thread's stores.
    /// Updates of a key between commits are merged in the cache: the store, its changelog
    /// and the operators downstream see the latest one, at commit or when the cache
    /// evicts the key. 0 disables it (every update is forwarded at once). Default 10 MiB.
    /// Stores opt out one by one with `Materialized::with_caching(false)`.
    pub store_cache_max_bytes: usize,
    /// How often records of repartition topics that every reader committed past are
    /// deleted. Default 30 s.
    pub repartition_purge_interval: Duration,
    /// Extra librdkafka settings for every consumer (they win over the runtime's own,
    /// except those the runtime's guarantees rest on: group, offset commits, assignor).
    pub consumer_overrides: BTreeMap<String, String>,
    /// Extra librdkafka settings for every producer.
    pub producer_overrides: BTreeMap<String, String>,
    /// Extra librdkafka settings for the admin client.
    pub admin_overrides: BTreeMap<String, String>,
}

/// Kafka Streams' default `statestore.cache.max.bytes`: 10 MiB per instance.
pub const DEFAULT_STORE_CACHE_MAX_BYTES: usize = 10 * 1024 * 1024;

impl StreamsConfig {
    /// A configuration with every default, for `application_id` on `bootstrap_servers`.
    pub fn new(application_id: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        StreamsConfig {
            application_id: application_id.into(),
            bootstrap_servers: bootstrap_servers.into(),
            num_stream_threads: 1,
            commit_interval: Duration::from_secs(30),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            state_dir: std::env::temp_dir().join("streams-rs"),
            application_server: None,
            num_standby_replicas: 0,
            max_task_idle: Duration::ZERO,
            buffered_records_per_partition: 1000,
            poll_timeout: Duration::from_millis(100),
            replication_factor: 1,
            deserialization_error_handler: DeserializationErrorHandler::Fail,
            processing_error_handler: ProcessingErrorHandler::Fail,
            production_error_handler: ProductionErrorHandler::Fail,
            statistics_interval: Duration::from_secs(5),
            repartition_purge_interval: Duration::from_secs(30),
            store_cache_max_bytes: DEFAULT_STORE_CACHE_MAX_BYTES,
            consumer_overrides: BTreeMap::new(),
            producer_overrides: BTreeMap::new(),
            admin_overrides: BTreeMap::new(),
        }
    }

    /// Sets the number of stream threads (at least 1).
    pub fn with_stream_threads(mut self, threads: usize) -> Self {
        self.num_stream_threads = threads.max(1);
        self
    }

    /// Sets the commit interval.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Sets the processing guarantee; exactly-once also lowers the commit interval to
    /// 100 ms unless it was changed from the default before.
    pub fn with_processing_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        if guarantee == ProcessingGuarantee::ExactlyOnceV2
            && self.commit_interval == Duration::from_secs(30)
        {
            self.commit_interval = Duration::from_millis(100);
        }
        self.processing_guarantee = guarantee;
        self
    }

    /// Sets the state directory.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Sets the `host:port` this instance serves interactive queries on.
    pub fn with_application_server(mut self, endpoint: impl Into<String>) -> Self {
        self.application_server = Some(endpoint.into());
        self
    }

    /// Sets how many standby copies of each task's stores other instances keep.
    pub fn with_standby_replicas(mut self, replicas: usize) -> Self {
        self.num_standby_replicas = replicas;
        self
    }

    /// Whether instances announce their tasks to each other (for query routing and
    /// standby placement): when an application server or standbys are configured.
    pub(crate) fn announces_membership(&self) -> bool {
        self.application_server.is_some() || self.num_standby_replicas > 0
    }

    /// Sets how long a task waits for empty input partitions.
    pub fn with_max_task_idle(mut self, idle: Duration) -> Self {
        self.max_task_idle = idle;
        self
    }

    /// Sets the deserialization error handler.
    pub fn with_deserialization_error_handler(
        mut self,
        handler: DeserializationErrorHandler,
    ) -> Self {
        self.deserialization_error_handler = handler;
        self
    }

    /// Sets the processing error handler.
    pub fn with_processing_error_handler(mut self, handler: ProcessingErrorHandler) -> Self {
        self.processing_error_handler = handler;
        self
    }

    /// Sets the production error handler.
    pub fn with_production_error_handler(mut self, handler: ProductionErrorHandler) -> Self {
        self.production_error_handler = handler;
        self
    }

    /// Sets the record cache of the instance (0 disables it).
    pub fn with_store_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.store_cache_max_bytes = bytes;
        self
    }

    /// The record cache budget of each stream thread: the instance's divided evenly
    /// between the threads, as Kafka Streams does.
    pub fn thread_cache_max_bytes(&self) -> usize {
        self.store_cache_max_bytes / self.num_stream_threads.max(1)
    }

    /// Adds a librdkafka setting for consumers.
    pub fn with_consumer_setting(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.consumer_overrides.insert(key.into(), value.into());
        self
    }

    /// Adds a librdkafka setting for producers.
    pub fn with_producer_setting(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.producer_overrides.insert(key.into(), value.into());
        self
    }

    /// Applies overrides from the environment, for deployments configured from outside:
    ///
    /// | variable | field |
    /// |---|---|
    /// | `STREAMS_APPLICATION_ID` | `application_id` |
    /// | `STREAMS_BOOTSTRAP_SERVERS` (or `KAFKA_BOOTSTRAP`) | `bootstrap_servers` |
    /// | `STREAMS_NUM_STREAM_THREADS` | `num_stream_threads` |
    /// | `STREAMS_COMMIT_INTERVAL_MS` | `commit_interval` |
    /// | `STREAMS_PROCESSING_GUARANTEE` (`at_least_once`, `exactly_once_v2`) | `processing_guarantee` |
    /// | `STREAMS_STATE_DIR` | `state_dir` |
    /// | `STREAMS_APPLICATION_SERVER` | `application_server` |
    /// | `STREAMS_NUM_STANDBY_REPLICAS` | `num_standby_replicas` |
    /// | `STREAMS_MAX_TASK_IDLE_MS` | `max_task_idle` |
    /// | `STREAMS_REPLICATION_FACTOR` | `replication_factor` |
    /// | `STREAMS_STATESTORE_CACHE_MAX_BYTES` | `store_cache_max_bytes` |
    ///
    /// A malformed value is an error naming the variable.
    pub fn with_env_overrides(self) -> Result<Self, StreamsError> {
        self.with_overrides_from(|name| std::env::var(name).ok())
    }

    /// Like [`with_env_overrides`](Self::with_env_overrides), reading variables through `get`.
    pub fn with_overrides_from(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StreamsError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, StreamsError> {
            value.trim().parse().map_err(|_| {
                StreamsError::Config(format!(
                    "environment variable {name}={value:?} is not valid"
                ))
            })
        }
        if let Some(v) = get("STREAMS_APPLICATION_ID") {
            self.application_id = v;
        }
        if let Some(v) = get("STREAMS_BOOTSTRAP_SERVERS").or_else(|| get("KAFKA_BOOTSTRAP")) {
            self.bootstrap_servers = v;
        }
        if let Some(v) = get("STREAMS_NUM_STREAM_THREADS") {
            self = self.with_stream_threads(parse("STREAMS_NUM_STREAM_THREADS", &v)?);
        }
        if let Some(v) = get("STREAMS_PROCESSING_GUARANTEE") {
            self = self.with_processing_guarantee(v.trim().parse()?);
        }
        if let Some(v) = get("STREAMS_COMMIT_INTERVAL_MS") {
            self.commit_interval = Duration::from_millis(parse("STREAMS_COMMIT_INTERVAL_MS", &v)?);
        }
        if let Some(v) = get("STREAMS_STATE_DIR") {
            self.state_dir = PathBuf::from(v);
        }
        if let Some(v) = get("STREAMS_APPLICATION_SERVER") {
            self.application_server = Some(v);
        }
        if let Some(v) = get("STREAMS_NUM_STANDBY_REPLICAS") {
            self.num_standby_replicas = parse("STREAMS_NUM_STANDBY_REPLICAS", &v)?;
        }
        if let Some(v) = get("STREAMS_MAX_TASK_IDLE_MS") {
            self.max_task_idle = Duration::from_millis(parse("STREAMS_MAX_TASK_IDLE_MS", &v)?);
        }
        if let Some(v) = get("STREAMS_REPLICATION_FACTOR") {
            self.replication_factor = parse("STREAMS_REPLICATION_FACTOR", &v)?;
        }
        if let Some(v) = get("STREAMS_STATESTORE_CACHE_MAX_BYTES") {
            self.store_cache_max_bytes = parse("STREAMS_STATESTORE_CACHE_MAX_BYTES", &v)?;
        }
        Ok(self)
    }

    /// Checks the settings for mistakes that would only show later.
    pub fn validate(&self) -> Result<(), StreamsError> {
        let valid_id = !self.application_id.is_empty()
            && self
                .application_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_id {
            return Err(StreamsError::Config(format!(
                "application id {:?} must be non-empty and use only ASCII letters, digits, '.', '_' and '-' \
                 (it prefixes topic names)",
                self.application_id
            )));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return Err(StreamsError::Config("bootstrap servers are empty".into()));
        }
        if let Some(server) = &self.application_server {
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(StreamsError::Config(format!(
                    "application server {server:?} is not host:port"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_follow_kafka_streams() {
        let c = StreamsConfig::new("app", "localhost:9092");
        assert_eq!(c.num_stream_threads, 1);
        assert_eq!(c.commit_interval, Duration::from_secs(30));
        assert_eq!(c.processing_guarantee, ProcessingGuarantee::AtLeastOnce);
        assert_eq!(c.store_cache_max_bytes, 10 * 1024 * 1024);
        let eos = c.with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
        assert_eq!(eos.commit_interval, Duration::from_millis(100));
    }

    #[test]
    fn the_record_cache_is_divided_between_threads_and_set_from_the_environment() {
        let c = StreamsConfig::new("app", "x:1").with_stream_threads(4);
        assert_eq!(c.thread_cache_max_bytes(), 10 * 1024 * 1024 / 4);
        let c = c
            .with_overrides_from(|k| {
                (k == "STREAMS_STATESTORE_CACHE_MAX_BYTES").then(|| "0".to_string())
            })
            .unwrap();
        assert_eq!(c.store_cache_max_bytes, 0);
        assert_eq!(c.thread_cache_max_bytes(), 0);
    }

    #[test]
    fn environment_overrides_win_and_bad_values_are_named() {
        let env: HashMap<&str, &str> = [
            ("STREAMS_APPLICATION_ID", "other"),
            ("KAFKA_BOOTSTRAP", "10.0.0.1:9092"),
            ("STREAMS_NUM_STREAM_THREADS", "3"),
            ("STREAMS_COMMIT_INTERVAL_MS", "250"),
            ("STREAMS_PROCESSING_GUARANTEE", "exactly_once_v2"),
        ]
        .into();
        let c = StreamsConfig::new("app", "localhost:9092")
            .with_overrides_from(|k| env.get(k).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(c.application_id, "other");
        assert_eq!(c.bootstrap_servers, "10.0.0.1:9092");
        assert_eq!(c.num_stream_threads, 3);
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);

        let err = StreamsConfig::new("app", "x:1")
            .with_overrides_from(|k| {
                (k == "STREAMS_NUM_STREAM_THREADS").then(|| "many".to_string())
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("STREAMS_NUM_STREAM_THREADS"),
            "{err}"
        );
    }

    #[test]
    fn validation_rejects_bad_ids_and_endpoints() {
        assert!(StreamsConfig::new("my app", "x:1").validate().is_err());
        assert!(StreamsConfig::new("app", "x:1")
            .with_application_server("nohost")
            .validate()
            .is_err());
        assert!(StreamsConfig::new("app", "x:1")
            .with_application_server("localhost:8080")
            .validate()
            .is_ok());
    }
}
