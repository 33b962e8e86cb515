//! [`InMemorySessionStore`]: a session store in nested `BTreeMap`s, session end first.

use std::collections::BTreeMap;

use super::{decode_changelog_key, SessionEntry, SessionKey, SessionStore, SessionStoreOptions};
use crate::error::{Result, StoreError};
use crate::restore::ChangelogRecord;
use crate::retention::Retention;
use crate::store::StateStore;

/// Sessions ending at one time: (key, start) → aggregate.
type Slot = BTreeMap<(Vec<u8>, i64), Vec<u8>>;

/// A non-persistent session store: session end → (key, start) → aggregate, like Kafka's
/// `InMemorySessionStore`. Expired sessions are removed on every write.
#[derive(Debug)]
pub struct InMemorySessionStore {
    name: String,
    options: SessionStoreOptions,
    retention: Retention,
    sessions: BTreeMap<i64, Slot>,
    open: bool,
}

impl InMemorySessionStore {
    /// An empty, open store.
    pub fn new(name: impl Into<String>, options: SessionStoreOptions) -> Result<Self> {
        options.validate()?;
        Ok(InMemorySessionStore {
            name: name.into(),
            options,
            retention: Retention::new(options.retention_ms),
            sessions: BTreeMap::new(),
            open: true,
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(StoreError::Closed(self.name.clone()))
        }
    }

    fn write(&mut self, session: &SessionKey, aggregate: Option<&[u8]>) {
        self.retention.observe(session.end);
        if self.retention.is_expired(session.end) {
            tracing::debug!(store = %self.name, end = session.end, "skipping write to expired session");
            return;
        }
        let slot_key = (session.key.clone(), session.start);
        match aggregate {
            Some(v) => {
                self.sessions
                    .entry(session.end)
                    .or_default()
                    .insert(slot_key, v.to_vec());
            }
            None => {
                if let Some(slot) = self.sessions.get_mut(&session.end) {
                    slot.remove(&slot_key);
                    if slot.is_empty() {
                        self.sessions.remove(&session.end);
                    }
                }
            }
        }
    }

    fn expire(&mut self) {
        let min_live = self.retention.min_live();
        self.sessions = self.sessions.split_off(&min_live);
    }
}

impl StateStore for InMemorySessionStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn flush(&mut self) -> Result<()> {
        self.check_open()
    }

    fn close(&mut self) -> Result<()> {
        self.open = false;
        self.sessions.clear();
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.check_open()?;
        for (bytes, value) in records {
            let session = decode_changelog_key(&self.name, bytes)?;
            self.write(&session, value.as_deref());
        }
        self.expire();
        Ok(())
    }
}

impl SessionStore for InMemorySessionStore {
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()> {
        self.check_open()?;
        session.validate()?;
        self.write(session, Some(aggregate));
        self.expire();
        Ok(())
    }

    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        self.check_open()?;
        self.write(session, None);
        Ok(())
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        self.check_open()?;
        let from = earliest_session_end.max(self.retention.min_live());
        let mut out = Vec::new();
        for (end, slot) in self.sessions.range(from..) {
            let range = slot.range((key.to_vec(), i64::MIN)..=(key.to_vec(), latest_session_start));
            out.extend(range.map(|((k, start), v)| SessionEntry {
                session: SessionKey::new(k.clone(), *start, *end),
                value: v.clone(),
            }));
        }
        Ok(out)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if self.retention.is_expired(end) {
            return Ok(None);
        }
        Ok(self
            .sessions
            .get(&end)
            .and_then(|slot| slot.get(&(key.to_vec(), start)))
            .cloned())
    }

    fn retention_ms(&self) -> i64 {
        self.options.retention_ms
    }

    fn observed_stream_time(&self) -> i64 {
        self.retention.stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::conformance;

    #[test]
    fn conforms() {
        conformance::run_all(&mut |options| InMemorySessionStore::new("sess", options).unwrap());
    }
}
