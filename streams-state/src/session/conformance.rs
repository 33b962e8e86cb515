//! Behaviour every [`SessionStore`] implementation must show, run against each of them.

use super::{SessionEntry, SessionKey, SessionStore, SessionStoreOptions};
use crate::error::StoreError;
use crate::key_layout::session_key;

fn spans(entries: Vec<SessionEntry>) -> Vec<(i64, i64)> {
    entries
        .into_iter()
        .map(|e| (e.session.start, e.session.end))
        .collect()
}

/// Runs every check, each on a fresh store built by `make` with the options it needs.
pub(crate) fn run_all<S: SessionStore>(make: &mut dyn FnMut(SessionStoreOptions) -> S) {
    let long = SessionStoreOptions::new(1_000_000);
    let segmented = SessionStoreOptions::new(1_000_000).with_segment_interval_ms(10);
    for options in [long, segmented] {
        point_operations(&mut make(options));
        find_sessions_matches_kafka(&mut make(options));
        keys_sharing_a_prefix_stay_apart(&mut make(options));
        restore_uses_session_key_layout(&mut make(options));
    }
    retention_drops_old_sessions(&mut make(
        SessionStoreOptions::new(100).with_segment_interval_ms(10),
    ));
    rejects_invalid_sessions(&mut make(long));
    closed_store_rejects_use(&mut make(long));
}

fn point_operations(store: &mut dyn SessionStore) {
    let s = SessionKey::new(b"k".to_vec(), 5, 15);
    assert_eq!(store.fetch_session(b"k", 5, 15).unwrap(), None);
    store.put(&s, b"agg1").unwrap();
    assert_eq!(
        store.fetch_session(b"k", 5, 15).unwrap(),
        Some(b"agg1".to_vec())
    );
    assert_eq!(store.fetch_session(b"k", 5, 16).unwrap(), None);
    store.put(&s, b"agg2").unwrap();
    assert_eq!(
        store.fetch_session(b"k", 5, 15).unwrap(),
        Some(b"agg2".to_vec())
    );
    assert_eq!(
        store.fetch(b"k").unwrap(),
        vec![SessionEntry {
            session: s.clone(),
            value: b"agg2".to_vec()
        }]
    );
    store.remove(&s).unwrap();
    assert_eq!(store.fetch_session(b"k", 5, 15).unwrap(), None);
    assert!(store.fetch(b"k").unwrap().is_empty());
    assert_eq!(store.observed_stream_time(), 15);
}

fn find_sessions_matches_kafka(store: &mut dyn SessionStore) {
    for (start, end) in [(0, 10), (20, 30), (40, 50), (25, 30)] {
        store
            .put(&SessionKey::new(b"k".to_vec(), start, end), b"v")
            .unwrap();
    }
    store
        .put(&SessionKey::new(b"j".to_vec(), 20, 30), b"v")
        .unwrap();
    store
        .put(&SessionKey::new(b"l".to_vec(), 20, 30), b"v")
        .unwrap();
    // end >= 10 and start <= 40: every session of k, by end then start.
    assert_eq!(
        spans(store.find_sessions(b"k", 10, 40).unwrap()),
        vec![(0, 10), (20, 30), (25, 30), (40, 50)]
    );
    // end >= 11 excludes [0,10]; start <= 39 excludes [40,50].
    assert_eq!(
        spans(store.find_sessions(b"k", 11, 39).unwrap()),
        vec![(20, 30), (25, 30)]
    );
    assert_eq!(
        spans(store.find_sessions(b"k", 31, 45).unwrap()),
        vec![(40, 50)]
    );
    assert_eq!(spans(store.find_sessions(b"k", 51, 100).unwrap()), vec![]);
    assert_eq!(
        spans(store.find_sessions(b"k", 0, 22).unwrap()),
        vec![(0, 10), (20, 30)]
    );
    assert_eq!(store.fetch(b"k").unwrap().len(), 4);
    assert_eq!(store.fetch(b"j").unwrap().len(), 1);
}

fn keys_sharing_a_prefix_stay_apart(store: &mut dyn SessionStore) {
    for key in [&b"a"[..], b"a\x00", b"ab", b""] {
        store
            .put(&SessionKey::new(key.to_vec(), 1, 2), key)
            .unwrap();
    }
    let found = store.fetch(b"a").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].session.key, b"a".to_vec());
    assert_eq!(store.fetch(b"").unwrap()[0].value, Vec::<u8>::new());
    assert_eq!(
        store.fetch_session(b"a\x00", 1, 2).unwrap(),
        Some(b"a\x00".to_vec())
    );
}

fn restore_uses_session_key_layout(store: &mut dyn SessionStore) {
    store
        .restore_batch(&[
            (session_key(b"k", 0, 10), Some(b"a".to_vec())),
            (session_key(b"k", 20, 30), Some(b"b".to_vec())),
            (session_key(b"k", 0, 10), None),
        ])
        .unwrap();
    assert_eq!(spans(store.fetch(b"k").unwrap()), vec![(20, 30)]);
    assert_eq!(store.observed_stream_time(), 30);
    let malformed = store.restore_batch(&[(b"too short".to_vec(), None)]);
    assert!(matches!(malformed, Err(StoreError::Malformed { .. })));
}

fn retention_drops_old_sessions(store: &mut dyn SessionStore) {
    store
        .put(&SessionKey::new(b"k".to_vec(), 0, 10), b"old")
        .unwrap();
    store
        .put(&SessionKey::new(b"k".to_vec(), 90, 101), b"edge")
        .unwrap();
    store
        .put(&SessionKey::new(b"k".to_vec(), 200, 200), b"new")
        .unwrap();
    // Stream time 200, retention 100: sessions ending at or before 100 are gone.
    assert_eq!(
        spans(store.fetch(b"k").unwrap()),
        vec![(90, 101), (200, 200)]
    );
    assert_eq!(store.fetch_session(b"k", 0, 10).unwrap(), None);
    store
        .put(&SessionKey::new(b"k".to_vec(), 50, 100), b"late")
        .unwrap();
    assert_eq!(store.fetch_session(b"k", 50, 100).unwrap(), None);
    assert_eq!(store.retention_ms(), 100);
}

fn rejects_invalid_sessions(store: &mut dyn SessionStore) {
    assert!(matches!(
        store.put(&SessionKey::new(b"k".to_vec(), 10, 5), b"v"),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.put(&SessionKey::new(b"k".to_vec(), -1, 5), b"v"),
        Err(StoreError::InvalidArgument(_))
    ));
}

fn closed_store_rejects_use(store: &mut dyn SessionStore) {
    store
        .put(&SessionKey::new(b"k".to_vec(), 0, 1), b"v")
        .unwrap();
    store.close().unwrap();
    assert!(!store.is_open());
    assert!(matches!(store.fetch(b"k"), Err(StoreError::Closed(_))));
    assert!(matches!(
        store.put(&SessionKey::new(b"k".to_vec(), 0, 1), b"v"),
        Err(StoreError::Closed(_))
    ));
}
