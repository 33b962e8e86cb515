//! Records as they flow through a topology: key, value, timestamp and headers.

/// One record flowing through a topology.
///
/// The timestamp is in milliseconds since the epoch; it drives stream time, windows and
/// stream-time punctuation. Records are immutable in spirit: the `with_*` methods build a
/// changed copy, which is what processors forward.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<K, V> {
    /// The record key.
    pub key: K,
    /// The record value.
    pub value: V,
    /// Event time in milliseconds since the epoch.
    pub timestamp: i64,
    /// Headers carried along with the record.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            headers: Headers::default(),
        }
    }

    /// The same record with another key (and key type).
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value (and value type).
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with other headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// One record header. As in Kafka, a header value may be null.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header name; names may repeat within a record.
    pub key: String,
    /// Header value, `None` for a null value.
    pub value: Option<Vec<u8>>,
}

/// The ordered list of headers of a record. Keys may repeat, as in Kafka.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a header, keeping any existing header of the same name.
    pub fn add(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) -> &mut Self {
        self.0.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// Removes every header named `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.0.retain(|h| h.key != key);
        self
    }

    /// The value of the last header named `key`, as Kafka's `lastHeader`.
    /// `Some(None)` means the header is present with a null value.
    pub fn last(&self, key: &str) -> Option<Option<&[u8]>> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == key)
            .map(|h| h.value.as_deref())
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Headers(iter.into_iter().collect())
    }
}

/// Where the record being processed came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Source topic (with the application id prefix for internal topics).
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the source partition.
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_header_wins_and_null_values_are_distinct_from_absence() {
        let mut h = Headers::new();
        h.add("a", Some(b"1".to_vec()))
            .add("a", Some(b"2".to_vec()))
            .add("n", None);
        assert_eq!(h.last("a"), Some(Some(&b"2"[..])));
        assert_eq!(h.last("n"), Some(None));
        assert_eq!(h.last("missing"), None);
        h.remove("a");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn with_methods_keep_the_other_fields() {
        let mut headers = Headers::new();
        headers.add("h", None);
        let r = Record::new("k", 1, 5).with_headers(headers.clone());
        let r2 = r.with_value("one").with_key(7u8).with_timestamp(9);
        assert_eq!(
            r2,
            Record {
                key: 7u8,
                value: "one",
                timestamp: 9,
                headers
            }
        );
    }
}
