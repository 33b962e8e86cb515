//! Behaviour every [`KeyValueStore`] implementation must show, run against each of them.

use super::{KeyValue, KeyValueStore};
use crate::error::StoreError;

fn kv(k: &[u8], v: &[u8]) -> KeyValue {
    (k.to_vec(), v.to_vec())
}

/// Runs every check, each on a fresh store from `make`.
pub(crate) fn run_all<S: KeyValueStore>(make: &mut dyn FnMut() -> S) {
    point_operations(&mut make());
    inclusive_ranges(&mut make());
    unsigned_order(&mut make());
    prefix_scans(&mut make());
    put_all_deletes_none(&mut make());
    restore_applies_tombstones(&mut make());
    closed_store_rejects_use(&mut make());
}

fn point_operations(store: &mut dyn KeyValueStore) {
    assert_eq!(store.get(b"a").unwrap(), None);
    store.put(b"a", b"1").unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    store.put(b"a", b"2").unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        store.put_if_absent(b"a", b"3").unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.put_if_absent(b"b", b"3").unwrap(), None);
    assert_eq!(store.get(b"b").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.delete(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.delete(b"a").unwrap(), None);
    assert_eq!(store.get(b"a").unwrap(), None);
    store.put(b"empty", b"").unwrap();
    assert_eq!(store.get(b"empty").unwrap(), Some(Vec::new()));
    store.flush().unwrap();
    assert_eq!(store.get(b"b").unwrap(), Some(b"3".to_vec()));
}

fn inclusive_ranges(store: &mut dyn KeyValueStore) {
    for k in [&b"a"[..], b"b", b"c", b"d", b"e"] {
        store.put(k, k).unwrap();
    }
    let keys = |entries: Vec<KeyValue>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(store.range(Some(b"b"), Some(b"d")).unwrap()),
        vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );
    assert_eq!(
        keys(store.reverse_range(Some(b"b"), Some(b"d")).unwrap()),
        vec![b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]
    );
    assert_eq!(
        keys(store.range(None, Some(b"b")).unwrap()),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(
        keys(store.range(Some(b"d"), None).unwrap()),
        vec![b"d".to_vec(), b"e".to_vec()]
    );
    assert_eq!(
        keys(store.reverse_range(Some(b"d"), None).unwrap()),
        vec![b"e".to_vec(), b"d".to_vec()]
    );
    // Bounds that are not keys themselves.
    assert_eq!(
        keys(store.range(Some(b"bb"), Some(b"cc")).unwrap()),
        vec![b"c".to_vec()]
    );
    assert!(store.range(Some(b"d"), Some(b"b")).unwrap().is_empty());
    assert!(store
        .reverse_range(Some(b"d"), Some(b"b"))
        .unwrap()
        .is_empty());
    assert_eq!(store.all().unwrap().len(), 5);
    assert_eq!(store.all().unwrap()[0], kv(b"a", b"a"));
    assert_eq!(store.reverse_all().unwrap()[0], kv(b"e", b"e"));
    // A key longer than the inclusive upper bound is outside it.
    store.put(b"d\x00", b"x").unwrap();
    assert_eq!(
        keys(store.range(Some(b"c"), Some(b"d")).unwrap()),
        vec![b"c".to_vec(), b"d".to_vec()]
    );
}

fn unsigned_order(store: &mut dyn KeyValueStore) {
    store.put(&[0x80], b"high").unwrap();
    store.put(&[0x7F], b"low").unwrap();
    store.put(&[0xFF, 0xFF], b"max").unwrap();
    let all = store.all().unwrap();
    assert_eq!(
        all,
        vec![
            kv(&[0x7F], b"low"),
            kv(&[0x80], b"high"),
            kv(&[0xFF, 0xFF], b"max")
        ]
    );
}

fn prefix_scans(store: &mut dyn KeyValueStore) {
    for k in [
        &b"user:1"[..],
        b"user:2",
        b"user",
        b"usera",
        b"usf",
        b"\xFF\xFFa",
        b"\xFF\xFF",
    ] {
        store.put(k, b"v").unwrap();
    }
    let keys = |entries: Vec<KeyValue>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(store.prefix_scan(b"user:").unwrap()),
        vec![b"user:1".to_vec(), b"user:2".to_vec()]
    );
    assert_eq!(
        keys(store.prefix_scan(b"user").unwrap()),
        vec![
            b"user".to_vec(),
            b"user:1".to_vec(),
            b"user:2".to_vec(),
            b"usera".to_vec()
        ]
    );
    assert_eq!(
        keys(store.prefix_scan(b"\xFF\xFF").unwrap()),
        vec![b"\xFF\xFF".to_vec(), b"\xFF\xFFa".to_vec()]
    );
    assert!(store.prefix_scan(b"zzz").unwrap().is_empty());
    assert_eq!(store.prefix_scan(b"").unwrap().len(), 7);
}

fn put_all_deletes_none(store: &mut dyn KeyValueStore) {
    store.put(b"gone", b"x").unwrap();
    store
        .put_all(&[
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"gone".to_vec(), None),
            (b"a".to_vec(), Some(b"2".to_vec())),
        ])
        .unwrap();
    assert_eq!(store.all().unwrap(), vec![kv(b"a", b"2")]);
}

fn restore_applies_tombstones(store: &mut dyn KeyValueStore) {
    store
        .restore_batch(&[
            (b"k1".to_vec(), Some(b"v1".to_vec())),
            (b"k2".to_vec(), Some(b"v2".to_vec())),
            (b"k1".to_vec(), None),
        ])
        .unwrap();
    assert_eq!(store.all().unwrap(), vec![kv(b"k2", b"v2")]);
}

fn closed_store_rejects_use(store: &mut dyn KeyValueStore) {
    store.put(b"a", b"1").unwrap();
    assert!(store.is_open());
    store.close().unwrap();
    assert!(!store.is_open());
    store.close().unwrap();
    assert!(matches!(store.get(b"a"), Err(StoreError::Closed(name)) if name == store.name()));
    assert!(matches!(store.put(b"a", b"2"), Err(StoreError::Closed(_))));
    assert!(matches!(store.all(), Err(StoreError::Closed(_))));
}
