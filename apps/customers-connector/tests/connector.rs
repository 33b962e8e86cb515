//! The customers connector against the real broker and schema registry (`dev/test`, or
//! `dev/kafka start` and `dev/registry start`): the demo customers land on `customers`
//! with Java's key layout and partitioning and Avro values; inserts, updates and
//! deletes follow; a restart re-sends nothing; a crash in the middle of a transaction
//! neither loses nor duplicates; and the binary serves `/health` and `/metrics` and stops
//! on SIGTERM. Each test uses its own topic prefix.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use customers_connector::changes::Fingerprint;
use customers_connector::{
    Connector, ConnectorConfig, ConnectorOptions, ConnectorState, RunningConnector,
};
use orders_platform::records::Customer;
use orders_platform::serdes::PlatformSerdes;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use service_kit::ServiceConfig;
use streams_core::runtime::partitioner::partition_for_key;
use streams_core::serde::{CachedSchemaRegistry, SchemaRegistryConfig};
use streams_test_support::{
    bootstrap, client_config, consume_to_end, free_port, registry_url, require_broker,
    require_registry, within, ConsumedRecord, Isolation, TestTopic,
};

/// The bound of every wait.
const WAIT: Duration = Duration::from_secs(60);

/// A platform of one test: its prefix, its state directory (holding the database) and
/// its topics, deleted at the end.
struct Platform {
    prefix: String,
    state: tempfile::TempDir,
    serdes: PlatformSerdes,
    _topics: Vec<TestTopic>,
}

impl Platform {
    fn new() -> Self {
        require_broker();
        require_registry();
        let prefix = format!("cc-{}-", uuid::Uuid::new_v4().simple());
        let topics = vec![
            TestTopic::adopt(&format!("{prefix}customers")),
            TestTopic::adopt(&format!("{prefix}customers-connector-offsets")),
        ];
        let registry =
            CachedSchemaRegistry::new(&SchemaRegistryConfig::new(registry_url())).unwrap();
        Platform {
            prefix,
            state: tempfile::tempdir().unwrap(),
            serdes: PlatformSerdes::avro(registry).unwrap(),
            _topics: topics,
        }
    }

    fn config(&self) -> ConnectorConfig {
        let service = ServiceConfig {
            state_dir: self.state.path().to_path_buf(),
            ..ServiceConfig::on_cluster(bootstrap(), registry_url(), &self.prefix)
        };
        let options = ConnectorOptions {
            poll_interval_ms: 100,
            ..ConnectorOptions::default()
        };
        ConnectorConfig::new(service, &options)
    }

    fn db(&self) -> PathBuf {
        self.state.path().join("customers.db")
    }

    fn topic(&self) -> String {
        format!("{}customers", self.prefix)
    }

    /// Starts a connector on this platform's database and topics.
    fn start(&self) -> RunningConnector {
        let config = self.config();
        let connector = Connector::start(&config).unwrap();
        RunningConnector::spawn(connector, config)
    }

    /// The committed records of `customers`, decoded, by partition and offset.
    fn records(&self) -> Vec<Published> {
        let topic = self.topic();
        let mut records: Vec<Published> = consume_to_end(&topic, Isolation::ReadCommitted, WAIT)
            .into_iter()
            .map(|record| Published::decode(&self.serdes, &topic, record))
            .collect();
        records.sort_by_key(|r| (r.partition, r.offset));
        records
    }

    /// Waits until `customers` holds at least `n` committed records; returns them all.
    fn wait_for(&self, n: usize) -> Vec<Published> {
        let deadline = Instant::now() + WAIT;
        loop {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{} records on {} after {WAIT:?}, waited for {n}: {records:?}",
                records.len(),
                self.topic()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs SQL on the connector's database, as another application would.
fn write(db: &Path, sql: &str) {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection.busy_timeout(Duration::from_secs(10)).unwrap();
    connection.execute_batch(sql).unwrap();
}

/// Waits until `connector` completed `polls` more polls than now (all changes made
/// before this call are then published).
fn let_poll(connector: &RunningConnector, polls: u64) {
    let status = connector.status();
    let target = status.polls() + polls;
    let deadline = Instant::now() + WAIT;
    while status.polls() < target {
        assert!(
            Instant::now() < deadline,
            "the connector did not poll: {:?} {:?}",
            status.state(),
            status.last_error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A record of `customers`.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    partition: i32,
    offset: i64,
    id: i64,
    customer: Option<Customer>,
}

impl Published {
    fn decode(serdes: &PlatformSerdes, topic: &str, record: ConsumedRecord) -> Self {
        let key = record.key.as_deref().expect("a customer record has a key");
        let key: [u8; 8] = key
            .try_into()
            .unwrap_or_else(|_| panic!("the key is not 8 bytes: {key:?}"));
        assert_eq!(
            record.partition,
            partition_for_key(&key, 3),
            "partitioned like Java's clients"
        );
        let customer = record.value.as_deref().map(|value| {
            assert_eq!(value[0], 0, "the wire format's magic byte");
            serdes.customer.deserialize(topic, Some(value)).unwrap()
        });
        Published {
            partition: record.partition,
            offset: record.offset,
            id: i64::from_be_bytes(key),
            customer,
        }
    }
}

/// The records of `after` that `before` does not hold, in id order.
fn new_records(before: &[Published], after: &[Published]) -> Vec<Published> {
    let seen: HashSet<(i32, i64)> = before.iter().map(|r| (r.partition, r.offset)).collect();
    let mut new: Vec<Published> = after
        .iter()
        .filter(|r| !seen.contains(&(r.partition, r.offset)))
        .cloned()
        .collect();
    new.sort_by_key(|r| r.id);
    new
}

fn rows(db: &Path) -> Vec<Customer> {
    customers_connector::table::CustomerTable::open(db)
        .unwrap()
        .read_all()
        .unwrap()
}

#[test]
fn the_nine_demo_customers_land_with_java_keys_and_avro_values() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let connector = platform.start();
        let records = platform.wait_for(9);
        let_poll(&connector, 3);
        let records_after = platform.records();
        assert_eq!(records_after, records, "nothing more once all is published");
        assert_eq!(records.len(), 9, "{records:?}");

        let by_id: BTreeMap<i64, Customer> = records
            .iter()
            .map(|r| (r.id, r.customer.clone().expect("no tombstone")))
            .collect();
        assert_eq!(
            by_id.keys().copied().collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>()
        );
        let levels: Vec<(i64, &str)> = by_id
            .iter()
            .map(|(id, c)| (*id, c.level.as_str()))
            .collect();
        assert_eq!(
            levels,
            [
                (1, "platinum"),
                (2, "platinum"),
                (3, "platinum"),
                (4, "bronze"),
                (5, "gold"),
                (6, "silver"),
                (7, "gold"),
                (8, "silver"),
                (9, "bronze"),
            ]
        );
        assert_eq!(
            by_id.values().cloned().collect::<Vec<_>>(),
            rows(&platform.db()),
            "the values are the table's rows"
        );
        for (id, customer) in &by_id {
            assert_eq!(customer.id, *id, "the key is the value's id");
        }
        let status = connector.status();
        assert_eq!(status.state(), ConnectorState::Running);
        assert_eq!(status.published(), 9);
        connector.stop();
    });
}

#[test]
fn an_insert_and_an_update_are_exactly_the_next_records_and_a_delete_is_a_tombstone() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let connector = platform.start();
        let seeded = platform.wait_for(9);

        write(
            &platform.db(),
            "INSERT INTO customers (id, firstName, lastName, email, address, level)
                 VALUES (10, 'Ada', 'Lovelace', 'ada@example.com', '12 St James''s Square, London', 'gold');
             UPDATE customers SET level = 'platinum' WHERE id = 4;",
        );
        let changed = platform.wait_for(11);
        let_poll(&connector, 3);
        let changed_after = platform.records();
        assert_eq!(changed_after, changed, "nothing else is published");
        let next = new_records(&seeded, &changed);
        let customers: Vec<(i64, String)> = next
            .iter()
            .map(|r| (r.id, r.customer.as_ref().unwrap().level.clone()))
            .collect();
        assert_eq!(
            customers,
            [(4, "platinum".to_string()), (10, "gold".to_string())]
        );
        assert_eq!(
            next[1].customer.as_ref().unwrap(),
            &Customer {
                id: 10,
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                email: "ada@example.com".into(),
                address: "12 St James's Square, London".into(),
                level: "gold".into(),
            }
        );
        let seed_4 = seeded.iter().find(|r| r.id == 4).unwrap();
        assert_eq!(
            next[0].customer.as_ref().unwrap(),
            &Customer {
                level: "platinum".into(),
                ..seed_4.customer.clone().unwrap()
            },
            "the update carries the whole row"
        );

        write(&platform.db(), "DELETE FROM customers WHERE id = 7;");
        let deleted = platform.wait_for(12);
        let next = new_records(&changed, &deleted);
        assert_eq!(
            next,
            [Published {
                customer: None,
                ..next[0].clone()
            }]
        );
        assert_eq!(next[0].id, 7, "a tombstone for the deleted customer");
        connector.stop();
    });
}

#[test]
fn a_restarted_connector_sends_nothing_again_and_picks_up_later_changes() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let first = platform.start();
        platform.wait_for(9);
        write(
            &platform.db(),
            "UPDATE customers SET email = 'lukas@example.org' WHERE id = 4;",
        );
        let before = platform.wait_for(10);
        first.stop();

        let config = platform.config();
        let restarted = Connector::start(&config).unwrap();
        let expected: Vec<(i64, Fingerprint)> = rows(&platform.db())
            .iter()
            .map(|c| (c.id, Fingerprint::of(c)))
            .collect();
        assert_eq!(
            restarted.position().iter().collect::<Vec<_>>(),
            expected,
            "the position read back is what was published"
        );
        let second = RunningConnector::spawn(restarted, config);
        let_poll(&second, 5);
        assert_eq!(platform.records(), before, "the restart re-sent records");
        assert_eq!(second.status().published(), 0);

        write(
            &platform.db(),
            "UPDATE customers SET address = 'Karlova 1, 110 00 Praha 1' WHERE id = 1;",
        );
        let after = platform.wait_for(11);
        let_poll(&second, 3);
        assert_eq!(platform.records(), after);
        let next = new_records(&before, &after);
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].id, 1);
        assert_eq!(
            next[0].customer.as_ref().unwrap().address,
            "Karlova 1, 110 00 Praha 1"
        );
        second.stop();
    });
}

#[test]
fn a_crash_in_the_middle_of_a_transaction_neither_loses_nor_duplicates() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let config = platform.config();
        let first = platform.start();
        platform.wait_for(9);
        first.stop();
        write(
            &platform.db(),
            "INSERT INTO customers (id, firstName, lastName, email, address, level)
                 VALUES (10, 'Grace', 'Hopper', 'grace@example.com', 'Arlington, VA', 'silver');",
        );

        // A connector that crashed half-way through publishing customer 10: its
        // transaction holds the customer record and the position record for it, sent
        // but never committed. The producer is leaked, not dropped: it neither commits
        // nor aborts, as after a SIGKILL.
        let crashed: ThreadedProducer<DefaultProducerContext> = client_config()
            .set("transactional.id", config.transactional_id())
            .set("partitioner", "murmur2_random")
            .create()
            .unwrap();
        crashed.init_transactions(WAIT).unwrap();
        crashed.begin_transaction().unwrap();
        let grace = rows(&platform.db()).pop().unwrap();
        let value = platform
            .serdes
            .customer
            .serialize(&platform.topic(), &grace)
            .unwrap()
            .unwrap();
        let key = 10i64.to_be_bytes();
        crashed
            .send(
                BaseRecord::to(&platform.topic())
                    .key(&key[..])
                    .payload(&value),
            )
            .unwrap();
        let (position_key, position_value) = customers_connector::position::record(
            &customers_connector::changes::Change::Upsert(grace.clone()),
        );
        crashed
            .send(
                BaseRecord::to(&config.offsets_topic())
                    .key(&position_key)
                    .payload(position_value.as_deref().unwrap()),
            )
            .unwrap();
        crashed.flush(WAIT).unwrap();
        std::mem::forget(crashed);

        let restarted = Connector::start(&config).unwrap();
        assert_eq!(
            restarted.position().get(10),
            None,
            "the crashed transaction's position is not read"
        );
        assert_eq!(restarted.position().len(), 9);
        let second = RunningConnector::spawn(restarted, config.clone());
        let records = platform.wait_for(10);
        let_poll(&second, 5);
        assert_eq!(platform.records(), records);
        assert_eq!(records.len(), 10, "{records:?}");
        let tenth: Vec<&Published> = records.iter().filter(|r| r.id == 10).collect();
        assert_eq!(tenth.len(), 1, "customer 10 once: {records:?}");
        assert_eq!(tenth[0].customer.as_ref(), Some(&grace));
        let all = consume_to_end(&platform.topic(), Isolation::ReadUncommitted, WAIT);
        assert_eq!(
            all.iter()
                .filter(|r| r.key.as_deref() == Some(&key[..]))
                .count(),
            2,
            "the crashed transaction's record is there, aborted"
        );
        second.stop();
    });
}

#[test]
fn a_fenced_connector_starts_over_and_publishes_each_change_once() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let config = platform.config();
        let connector = platform.start();
        let seeded = platform.wait_for(9);

        // Another producer with the connector's transactional id fences it.
        let usurper: ThreadedProducer<DefaultProducerContext> = client_config()
            .set("transactional.id", config.transactional_id())
            .create()
            .unwrap();
        usurper.init_transactions(WAIT).unwrap();
        write(
            &platform.db(),
            "UPDATE customers SET level = 'gold' WHERE id = 9;",
        );

        let changed = platform.wait_for(10);
        let status = connector.status();
        let deadline = Instant::now() + WAIT;
        while status.state() != ConnectorState::Running {
            assert!(Instant::now() < deadline, "{:?}", status.last_error());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            status.restarts() >= 1,
            "the connector was fenced and started over"
        );
        let_poll(&connector, 3);
        assert_eq!(platform.records(), changed);
        let next = new_records(&seeded, &changed);
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].id, 9);
        assert_eq!(next[0].customer.as_ref().unwrap().level, "gold");
        connector.stop();
        drop(usurper);
    });
}

/// Kills the child when dropped (a failed test).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_creates_the_demo_database_serves_health_and_metrics_and_stops_on_sigterm() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_customers-connector"))
            .env("KAFKA_BOOTSTRAP", bootstrap())
            .env("SCHEMA_REGISTRY_URL", registry_url())
            .env("PLATFORM_TOPIC_PREFIX", &platform.prefix)
            .env("PLATFORM_STATE_DIR", platform.state.path())
            .env("PLATFORM_HTTP_PORT", port.to_string())
            .env("CONNECTOR_POLL_INTERVAL_MS", "200")
            .spawn()
            .unwrap();
        let mut child = ChildGuard(child);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let health = loop {
            let answer = client
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(answer) = answer {
                break answer.json::<serde_json::Value>().unwrap();
            }
            assert!(Instant::now() < deadline, "/health never answered 200");
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "the connector exited"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(health["service"], "customers-connector");
        assert_eq!(health["state"], "Running");
        assert!(platform.db().exists(), "the demo database is created");
        assert_eq!(platform.wait_for(9).len(), 9);

        let metrics = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("customers_connector_records_total{kind=\"upsert\"} 9"),
            "{metrics}"
        );
        assert!(
            metrics.contains("customers_connector_table_rows 9"),
            "{metrics}"
        );

        let killed = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "exit status {status}");
    });
}
