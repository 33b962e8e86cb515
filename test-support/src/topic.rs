//! Throw-away topics with unique names.

use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::broker::{admin_client, require_broker};

/// How long creating a topic, and seeing all its partitions led, may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the best-effort deletion on drop may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// A topic created for one test, named `<prefix>-<uuid>`, deleted (best
/// effort) when dropped.
///
/// Creation waits until the broker reports a leader for every partition, so
/// records can be produced right away. The broker runs with automatic topic
/// creation off: a test must create every topic it uses.
pub struct TestTopic {
    name: String,
    partitions: i32,
    admin: AdminClient<DefaultClientContext>,
}

impl TestTopic {
    /// Creates a topic with `partitions` partitions and replication factor 1.
    ///
    /// Panics if the broker is missing or the topic does not become usable
    /// within 15 s.
    pub fn new(prefix: &str, partitions: i32) -> TestTopic {
        TestTopic::with_config(prefix, partitions, &[])
    }

    /// Like [`TestTopic::new`], with topic-level settings such as
    /// `("cleanup.policy", "compact")`.
    pub fn with_config(prefix: &str, partitions: i32, config: &[(&str, &str)]) -> TestTopic {
        assert!(
            partitions > 0,
            "a topic needs at least one partition, got {partitions}"
        );
        require_broker();
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let admin = admin_client();
        let mut new_topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        for (key, value) in config {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT));
        let results = block_on(admin.create_topics([&new_topic], &options))
            .unwrap_or_else(|e| panic!("creating topic {name} failed: {e}"));
        for result in results {
            if let Err((topic, code)) = result {
                panic!("creating topic {topic} failed: {code}");
            }
        }
        let topic = TestTopic {
            name,
            partitions,
            admin,
        };
        topic.wait_until_led();
        topic
    }

    /// Takes charge of deleting `name`, a topic something else creates (for example an
    /// application's internal changelog topic), when the returned value is dropped.
    /// Nothing is created; the partition count is reported as 0.
    pub fn adopt(name: &str) -> TestTopic {
        TestTopic {
            name: name.to_string(),
            partitions: 0,
            admin: admin_client(),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of partitions the topic was created with.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    fn wait_until_led(&self) {
        let deadline = Instant::now() + CREATE_TIMEOUT;
        loop {
            let ready = self
                .admin
                .inner()
                .fetch_metadata(Some(&self.name), Duration::from_secs(2))
                .ok()
                .is_some_and(|metadata| {
                    metadata.topics().iter().any(|topic| {
                        topic.name() == self.name
                            && topic.error().is_none()
                            && topic.partitions().len() == self.partitions as usize
                            && topic.partitions().iter().all(|p| p.leader() >= 0)
                    })
                });
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "topic {} was created but its {} partitions had no leader within {CREATE_TIMEOUT:?}",
                    self.name, self.partitions
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed test keeps its topics, to be read afterwards.
            eprintln!("topic {} kept for inspection (the test failed)", self.name);
            return;
        }
        let options = AdminOptions::new().operation_timeout(Some(DELETE_TIMEOUT));
        // Best effort: a leftover topic only costs disk space in .local/.
        let _ = block_on(self.admin.delete_topics(&[&self.name], &options));
    }
}

impl std::fmt::Debug for TestTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTopic")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish()
    }
}

/// Deletes, when dropped, every topic named `<application id>-...`: the internal topics
/// (changelogs, repartition and join topics) an application under test created.
pub struct AppTopics {
    prefix: String,
}

impl AppTopics {
    /// Cleans up after application `application_id`.
    pub fn new(application_id: &str) -> AppTopics {
        AppTopics {
            prefix: format!("{application_id}-"),
        }
    }
}

impl Drop for AppTopics {
    fn drop(&mut self) {
        let admin = admin_client();
        let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(10)) else {
            return;
        };
        let names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|t| t.starts_with(&self.prefix))
            .collect();
        if !names.is_empty() {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let options = AdminOptions::new().operation_timeout(Some(DELETE_TIMEOUT));
            // Best effort, like TestTopic.
            let _ = block_on(admin.delete_topics(&refs, &options));
        }
    }
}
