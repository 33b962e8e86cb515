//! Behaviour every [`WindowStore`] implementation must show, run against each of them.

use super::{WindowEntry, WindowStore, WindowStoreOptions};
use crate::error::StoreError;
use crate::key_layout::window_store_key;

fn entry(key: &[u8], window_start: i64, value: &[u8]) -> WindowEntry {
    WindowEntry {
        key: key.to_vec(),
        window_start,
        value: value.to_vec(),
    }
}

/// Runs every check, each on a fresh store built by `make` with the options it needs.
pub(crate) fn run_all<S: WindowStore>(make: &mut dyn FnMut(WindowStoreOptions) -> S) {
    let long = WindowStoreOptions::new(1_000_000);
    // Small segments so that the RocksDB store spreads data over several of them.
    let segmented = WindowStoreOptions::new(1_000_000).with_segment_interval_ms(10);
    for options in [long, segmented] {
        point_operations(&mut make(options));
        time_range_bounds_are_inclusive(&mut make(options));
        keys_sharing_a_prefix_stay_apart(&mut make(options));
        key_ranges_order_by_time_then_key(&mut make(options));
        restore_uses_store_key_layout(&mut make(options));
    }
    retention_drops_old_windows(&mut make(
        WindowStoreOptions::new(100).with_segment_interval_ms(10),
    ));
    duplicates_are_retained(&mut make(
        WindowStoreOptions::new(1_000).with_duplicates(true),
    ));
    rejects_negative_window_start(&mut make(long));
    closed_store_rejects_use(&mut make(long));
}

fn point_operations(store: &mut dyn WindowStore) {
    assert_eq!(store.fetch(b"k", 0).unwrap(), None);
    store.put(b"k", Some(b"v0"), 0).unwrap();
    store.put(b"k", Some(b"v10"), 10).unwrap();
    assert_eq!(store.fetch(b"k", 0).unwrap(), Some(b"v0".to_vec()));
    assert_eq!(store.fetch(b"k", 10).unwrap(), Some(b"v10".to_vec()));
    assert_eq!(store.fetch(b"k", 5).unwrap(), None);
    assert_eq!(store.fetch(b"other", 0).unwrap(), None);
    store.put(b"k", Some(b"v0b"), 0).unwrap();
    assert_eq!(store.fetch(b"k", 0).unwrap(), Some(b"v0b".to_vec()));
    store.put(b"k", None, 0).unwrap();
    assert_eq!(store.fetch(b"k", 0).unwrap(), None);
    assert_eq!(store.observed_stream_time(), 10);
    store.flush().unwrap();
    assert_eq!(store.fetch(b"k", 10).unwrap(), Some(b"v10".to_vec()));
}

fn time_range_bounds_are_inclusive(store: &mut dyn WindowStore) {
    for t in [0, 10, 20, 30] {
        store.put(b"k", Some(t.to_string().as_bytes()), t).unwrap();
    }
    store.put(b"j", Some(b"x"), 20).unwrap();
    let starts = |v: Vec<(i64, Vec<u8>)>| v.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    assert_eq!(
        starts(store.fetch_time_range(b"k", 10, 20).unwrap()),
        vec![10, 20]
    );
    assert_eq!(
        starts(store.fetch_time_range(b"k", 11, 19).unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(starts(store.fetch_time_range(b"k", 0, 0).unwrap()), vec![0]);
    assert_eq!(
        starts(store.fetch_time_range(b"k", i64::MIN, i64::MAX).unwrap()),
        vec![0, 10, 20, 30]
    );
    assert!(store.fetch_time_range(b"k", 20, 10).unwrap().is_empty());
    assert_eq!(
        store.fetch_time_range(b"k", 30, 40).unwrap(),
        vec![(30, b"30".to_vec())]
    );
}

fn keys_sharing_a_prefix_stay_apart(store: &mut dyn WindowStore) {
    store.put(b"a", Some(b"a"), 5).unwrap();
    store.put(b"a\x00", Some(b"a0"), 5).unwrap();
    store.put(b"ab", Some(b"ab"), 5).unwrap();
    store.put(b"", Some(b"empty"), 5).unwrap();
    assert_eq!(
        store.fetch_time_range(b"a", 0, 10).unwrap(),
        vec![(5, b"a".to_vec())]
    );
    assert_eq!(store.fetch(b"a\x00", 5).unwrap(), Some(b"a0".to_vec()));
    assert_eq!(store.fetch(b"", 5).unwrap(), Some(b"empty".to_vec()));
    let keys: Vec<Vec<u8>> = store
        .fetch_range(Some(b"a"), Some(b"a\x00"), 0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"a\x00".to_vec()]);
}

fn key_ranges_order_by_time_then_key(store: &mut dyn WindowStore) {
    for (k, t) in [
        (&b"c"[..], 0),
        (b"a", 10),
        (b"b", 0),
        (b"d", 10),
        (b"b", 20),
        (b"a", 0),
    ] {
        store.put(k, Some(k), t).unwrap();
    }
    assert_eq!(
        store.fetch_range(Some(b"a"), Some(b"b"), 0, 10).unwrap(),
        vec![
            entry(b"a", 0, b"a"),
            entry(b"b", 0, b"b"),
            entry(b"a", 10, b"a")
        ]
    );
    assert_eq!(
        store.fetch_range(Some(b"b"), None, 10, 20).unwrap(),
        vec![entry(b"d", 10, b"d"), entry(b"b", 20, b"b")]
    );
    assert_eq!(
        store.fetch_range(None, Some(b"a"), 0, 20).unwrap(),
        vec![entry(b"a", 0, b"a"), entry(b"a", 10, b"a")]
    );
    assert!(store
        .fetch_range(Some(b"b"), Some(b"a"), 0, 20)
        .unwrap()
        .is_empty());
    assert_eq!(store.fetch_all(10, 10).unwrap().len(), 2);
    let all = store.all().unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], entry(b"a", 0, b"a"));
    assert_eq!(all[5], entry(b"b", 20, b"b"));
}

fn restore_uses_store_key_layout(store: &mut dyn WindowStore) {
    store
        .restore_batch(&[
            (window_store_key(b"k", 10, 0), Some(b"v1".to_vec())),
            (window_store_key(b"k", 20, 0), Some(b"v2".to_vec())),
            (window_store_key(b"k", 10, 0), None),
        ])
        .unwrap();
    assert_eq!(
        store.fetch_time_range(b"k", 0, 100).unwrap(),
        vec![(20, b"v2".to_vec())]
    );
    assert_eq!(store.observed_stream_time(), 20);
    let malformed = store.restore_batch(&[(b"short".to_vec(), Some(b"v".to_vec()))]);
    assert!(matches!(malformed, Err(StoreError::Malformed { .. })));
}

fn retention_drops_old_windows(store: &mut dyn WindowStore) {
    // Retention 100: once stream time is 150, windows starting at or before 50 expire.
    store.put(b"k", Some(b"0"), 0).unwrap();
    store.put(b"k", Some(b"50"), 50).unwrap();
    store.put(b"k", Some(b"51"), 51).unwrap();
    assert_eq!(store.fetch(b"k", 0).unwrap(), Some(b"0".to_vec()));
    store.put(b"k", Some(b"150"), 150).unwrap();
    assert_eq!(store.fetch(b"k", 0).unwrap(), None);
    assert_eq!(store.fetch(b"k", 50).unwrap(), None);
    assert_eq!(store.fetch(b"k", 51).unwrap(), Some(b"51".to_vec()));
    assert_eq!(
        store.fetch_time_range(b"k", 0, 200).unwrap(),
        vec![(51, b"51".to_vec()), (150, b"150".to_vec())]
    );
    assert_eq!(store.all().unwrap().len(), 2);
    // A late write to an expired window is dropped.
    store.put(b"late", Some(b"x"), 40).unwrap();
    assert_eq!(store.fetch(b"late", 40).unwrap(), None);
    assert_eq!(store.fetch_all(0, 200).unwrap().len(), 2);
    // Restored records respect retention too.
    store
        .restore_batch(&[(window_store_key(b"r", 10, 0), Some(b"x".to_vec()))])
        .unwrap();
    assert_eq!(store.fetch(b"r", 10).unwrap(), None);
    assert_eq!(store.retention_ms(), 100);
}

fn duplicates_are_retained(store: &mut dyn WindowStore) {
    assert!(store.retain_duplicates());
    store.put(b"k", Some(b"first"), 10).unwrap();
    store.put(b"k", Some(b"second"), 10).unwrap();
    store.put(b"k", Some(b"later"), 20).unwrap();
    store.put(b"k", None, 10).unwrap();
    assert_eq!(
        store.fetch_time_range(b"k", 0, 20).unwrap(),
        vec![
            (10, b"first".to_vec()),
            (10, b"second".to_vec()),
            (20, b"later".to_vec())
        ]
    );
    assert_eq!(store.fetch(b"k", 10).unwrap(), Some(b"first".to_vec()));
    assert_eq!(store.fetch_all(10, 10).unwrap().len(), 2);
}

fn rejects_negative_window_start(store: &mut dyn WindowStore) {
    assert!(matches!(
        store.put(b"k", Some(b"v"), -1),
        Err(StoreError::InvalidArgument(_))
    ));
}

fn closed_store_rejects_use(store: &mut dyn WindowStore) {
    store.put(b"k", Some(b"v"), 0).unwrap();
    store.close().unwrap();
    assert!(!store.is_open());
    store.close().unwrap();
    assert!(matches!(store.fetch(b"k", 0), Err(StoreError::Closed(_))));
    assert!(matches!(
        store.put(b"k", Some(b"v"), 0),
        Err(StoreError::Closed(_))
    ));
    assert!(matches!(store.all(), Err(StoreError::Closed(_))));
}
