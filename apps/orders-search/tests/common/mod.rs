//! What the orders-search tests share: the real engine (`dev/opensearch start`), a
//! platform of their own on the real broker and registry (a unique topic prefix, so an
//! index, topics and a group of their own), the service started in-process, orders
//! produced in Avro through the registry, and bounded waits.

#![allow(dead_code)]

pub mod cdp;
pub mod link;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use orders_platform::records::Order;
use orders_platform::schemas::avsc;
use orders_platform::serdes::PlatformSerdes;
use orders_search::engine::EngineClient;
use orders_search::{SearchConfig, SearchService};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use service_kit::ServiceConfig;
use streams_test_support::{
    bootstrap, client_config, produce_keyed, registry_url, require_broker, require_registry,
    Delivered, TestTopic,
};

/// The engine's URL: `OPENSEARCH_URL` (as `dev/test` exports it), else the default of
/// `dev/opensearch start`.
pub fn engine_url() -> String {
    std::env::var("OPENSEARCH_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:9200".into())
}

/// Panics unless the engine answers `/_cluster/health` within 5 s, naming the command
/// that starts it.
pub fn require_engine() {
    let url = format!("{}/_cluster/health", engine_url());
    let answer = reqwest::blocking::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .map_err(|e| e.to_string())
        .and_then(|r| {
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("answered {}", r.status()))
            }
        });
    if let Err(reason) = answer {
        panic!(
            "no search engine reachable at {url} ({reason}).\n\
             Start one with `dev/opensearch start` (and set OPENSEARCH_URL if it is elsewhere), \
             or run the tests through `dev/test`, which starts it."
        );
    }
}

/// A platform of one test: its prefix, settings and the topics and index to delete.
pub struct Platform {
    pub prefix: String,
    pub config: ServiceConfig,
    pub search: SearchConfig,
    pub serdes: PlatformSerdes,
    _topics: Vec<TestTopic>,
}

impl Platform {
    /// A fresh platform; the search service's settings are made for tests: small
    /// batches, short linger, a short retry budget.
    pub fn new() -> Platform {
        require_broker();
        require_registry();
        require_engine();
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let config = ServiceConfig {
            http_port: 0,
            session_timeout_ms: Some(6000),
            ..ServiceConfig::on_cluster(bootstrap(), registry_url(), &prefix)
        };
        let search = SearchConfig {
            engine_url: engine_url(),
            batch_size: 20,
            linger_ms: 20,
            retry_timeout_ms: 10_000,
            // Nothing listens on port 1: the fraud report is down unless a test says otherwise.
            fraud_report_url: "http://127.0.0.1:1".into(),
            ..SearchConfig::default()
        };
        let topics = config.topics();
        let writes = [(topics.orders.clone(), avsc::ORDER)];
        let serdes = PlatformSerdes::avro(
            service_kit::service::registry(&config, &writes).expect("registering Order"),
        )
        .expect("Avro serdes");
        let cleanup = vec![
            TestTopic::adopt(&topics.orders),
            TestTopic::adopt(&format!("{prefix}orders-search-dead-letters")),
        ];
        Platform {
            prefix,
            config,
            search,
            serdes,
            _topics: cleanup,
        }
    }

    /// `<prefix>orders.v1`.
    pub fn orders_topic(&self) -> String {
        self.config.topics().orders
    }

    /// `<prefix>orders-search-dead-letters`.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}orders-search-dead-letters", self.prefix)
    }

    /// Starts the search service of this platform (its index deleted when dropped).
    pub fn start(&self) -> Service {
        let service = SearchService::start(&self.config, &self.search)
            .unwrap_or_else(|e| panic!("the search service did not start: {e}"));
        Service {
            service: Some(service),
        }
    }

    /// The Avro value of `order`, in the registry's wire format.
    pub fn encode(&self, order: &Order) -> Vec<u8> {
        self.serdes
            .order
            .serialize(&self.orders_topic(), order)
            .expect("encoding an order")
            .expect("an order is never null")
    }

    /// Produces `orders` (keyed by id) and waits for the broker's acknowledgements.
    pub fn produce(&self, orders: &[Order]) -> Vec<Delivered> {
        let records: Vec<(Vec<u8>, Vec<u8>)> = orders
            .iter()
            .map(|o| (o.id.clone().into_bytes(), self.encode(o)))
            .collect();
        produce_keyed(&self.orders_topic(), records)
    }

    /// Produces raw `(key, value)` records to the orders topic.
    pub fn produce_raw(&self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Delivered> {
        produce_keyed(&self.orders_topic(), records)
    }

    /// A consumer of the orders topic in group `group`, to read its commits (it never
    /// subscribes, so it never joins the group), and the topic's partitions.
    fn group_reader(&self, group: &str) -> (BaseConsumer, Vec<i32>) {
        let consumer: BaseConsumer = client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let metadata = consumer
            .fetch_metadata(Some(&self.orders_topic()), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        (consumer, partitions)
    }

    /// The end offset of each partition of the orders topic.
    pub fn end_offsets(&self) -> BTreeMap<i32, i64> {
        let (consumer, partitions) = self.group_reader("it-watermarks");
        partitions
            .into_iter()
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(&self.orders_topic(), p, Duration::from_secs(10))
                    .expect("watermarks");
                (p, high)
            })
            .collect()
    }

    /// The offsets group `group` committed on the orders topic, 0 where none.
    pub fn committed(&self, group: &str) -> BTreeMap<i32, i64> {
        let (consumer, partitions) = self.group_reader(group);
        let topic = self.orders_topic();
        let mut list = TopicPartitionList::new();
        for &p in &partitions {
            list.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        partitions
            .into_iter()
            .map(|p| {
                let offset = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                };
                (p, offset)
            })
            .collect()
    }

    /// The sink's consumer group.
    pub fn group(&self) -> String {
        self.search.group_id(&self.prefix)
    }

    /// Waits (up to 60 s) until the sink's group has committed, for every partition of
    /// the orders topic, the offset after its last record.
    pub fn wait_committed_to_end(&self) {
        let ends = self.end_offsets();
        wait_until(
            Duration::from_secs(60),
            "the sink's commits reach the topic's end",
            || (self.committed(&self.group()) == ends).then_some(()),
        );
    }
}

/// The service under test; deletes its index when dropped.
pub struct Service {
    service: Option<SearchService>,
}

impl std::ops::Deref for Service {
    type Target = SearchService;
    fn deref(&self) -> &SearchService {
        self.service.as_ref().expect("running")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            let engine = EngineClient::new(&engine_url(), Duration::from_secs(10)).unwrap();
            let index = service.index().to_string();
            let _ = service.block_on(engine.delete_index(&index));
            let _ = service.stop();
        }
    }
}

impl Service {
    /// How many documents the index holds, after a refresh.
    pub fn count(&self) -> u64 {
        // Straight to the engine, not through the service's (perhaps cut) link.
        let engine = EngineClient::new(&engine_url(), Duration::from_secs(10)).unwrap();
        self.block_on(async {
            engine.refresh(self.index()).await.expect("refresh");
            engine.count(self.index()).await.expect("count")
        })
    }

    /// GET `path` of the service's HTTP server: status and JSON body.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url()))
            .timeout(Duration::from_secs(10))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }
}

/// Calls `check` every 100 ms until it returns `Some`, for at most `limit`; panics
/// naming `what` when it never does.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A dead-lettered record: its key, value and headers.
#[derive(Debug)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

/// Reads `n` records of `topic` from the beginning, with their headers (at most 30 s).
pub fn read_dead_letters(topic: &str, n: usize) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = client_config()
        .set(
            "group.id",
            format!("it-read-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} dead letters arrived in {topic} within 30 s",
            letters.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                letters.push(DeadLetter {
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    letters
}
