//! Property tests: whatever the writer produces, the reader gives back; and no input —
//! random bytes, bit flips, truncations — makes the reader or RESTORE panic.

use ferrokv_persist::rdb::{
    dump_payload_with, restore_payload, Item, RdbReader, RdbValue, RdbWriter, ValueRef, WriteOptions,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
enum V {
    Str(Vec<u8>),
    Int(i64),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

impl V {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            V::Str(s) => ValueRef::Str(s),
            V::Int(i) => ValueRef::Int(*i),
            V::List(l) => ValueRef::List(l),
            V::Set(s) => ValueRef::Set(s),
            V::Hash(h) => ValueRef::Hash(h),
            V::ZSet(z) => ValueRef::ZSet(z),
        }
    }

    /// What reading back must give, order-insensitive where the type is.
    fn expected(&self) -> Canon {
        match self.clone() {
            V::Str(s) => Canon::Str(s),
            V::Int(i) => Canon::Str(i.to_string().into_bytes()),
            V::List(l) => Canon::List(l),
            V::Set(s) => Canon::Set(s.into_iter().collect()),
            V::Hash(h) => Canon::Hash(h.into_iter().collect()),
            V::ZSet(z) => Canon::ZSet(z.into_iter().map(|(m, s)| (m, s.to_bits())).collect()),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// Scores by bit pattern, so -0.0 and 0.0 must come back as written.
    ZSet(BTreeMap<Vec<u8>, u64>),
}

fn canon(v: RdbValue) -> Canon {
    let b = |s: ferrokv_keyspace::SmallBytes| s.to_vec();
    match v {
        RdbValue::String(s) => Canon::Str(b(s)),
        RdbValue::List(l) => Canon::List(l.into_iter().map(b).collect()),
        RdbValue::Set(s) => Canon::Set(s.into_iter().map(b).collect()),
        RdbValue::Hash(h) => Canon::Hash(h.into_iter().map(|(f, v)| (b(f), b(v))).collect()),
        RdbValue::ZSet(z) => Canon::ZSet(z.into_iter().map(|(m, s)| (b(m), s.to_bits())).collect()),
        RdbValue::Stream(_) => panic!("no streams in this corpus"),
    }
}

/// Elements that hit every encoding path: integers of each width (as canonical strings),
/// near-integers, short and long strings, compressible runs, occasional big elements.
fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..12),
        3 => any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        3 => (-200i64..5000).prop_map(|i| i.to_string().into_bytes()),
        1 => "0[0-9]{1,5}|-0|\\+[1-9]|[1-9][0-9]{19,21}".prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 12..100),
        1 => (1usize..300, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        1 => (60usize..70).prop_map(|n| vec![b'x'; n]),
        1 => (3000usize..12000, any::<u8>()).prop_map(|(n, seed)| (0..n).map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 7) as u8).collect()),
    ]
}

fn int_string() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-40000i64..40000).prop_map(|i| i.to_string().into_bytes()),
        any::<i32>().prop_map(|i| i.to_string().into_bytes()),
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-1000i32..1000).prop_map(f64::from),
        4 => any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => (-(1i64 << 62)..(1i64 << 62)).prop_map(|i| i as f64),
    ]
}

/// Mostly small counts, sometimes past the compact-encoding thresholds.
fn sized(small: usize, big: usize) -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1..=small, 1 => small..=big]
}

fn value() -> impl Strategy<Value = V> {
    prop_oneof![
        3 => elem().prop_map(V::Str),
        1 => prop::collection::vec(any::<u8>(), 20..5000).prop_map(V::Str),
        1 => any::<i64>().prop_map(V::Int),
        2 => sized(20, 1500).prop_flat_map(|n| prop::collection::vec(elem(), n)).prop_map(V::List),
        1 => sized(520, 700).prop_flat_map(|n| prop::collection::btree_set(int_string(), 1..=n))
            .prop_map(|s| V::Set(s.into_iter().collect())),
        1 => prop::collection::btree_set(elem(), 1..600).prop_map(|s| V::Set(s.into_iter().collect())),
        2 => sized(20, 600)
            .prop_flat_map(|n| prop::collection::btree_map(elem(), elem(), 1..=n))
            .prop_map(|m| V::Hash(m.into_iter().collect())),
        2 => sized(20, 200)
            .prop_flat_map(|n| prop::collection::btree_map(elem(), score(), 1..=n))
            .prop_map(|m| V::ZSet(m.into_iter().collect())),
    ]
}

fn options() -> impl Strategy<Value = WriteOptions> {
    (any::<bool>(), prop_oneof![Just(-2i64), -5i64..=-1, 0i64..200], prop_oneof![Just(1usize << 30), 100usize..5000])
        .prop_map(|(compress, fill, threshold)| WriteOptions {
            compress,
            list_max_listpack_size: fill,
            list_packed_threshold: threshold,
            ..WriteOptions::default()
        })
}

#[derive(Debug, Clone)]
struct Rec {
    db: u64,
    key: Vec<u8>,
    expire: Option<i64>,
    value: V,
}

fn file_contents() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::btree_map(
        (prop_oneof![Just(0u64), 0u64..16, any::<u64>()], prop::collection::vec(any::<u8>(), 0..30)),
        (prop::option::of(any::<i64>()), value()),
        0..6,
    )
    .prop_map(|m| m.into_iter().map(|((db, key), (expire, value))| Rec { db, key, expire, value }).collect())
}

fn write(recs: &[Rec], opts: WriteOptions, checksum: bool) -> Vec<u8> {
    let mut w = RdbWriter::with_options(Vec::new(), opts).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    w.aux(b"redis-bits", b"64").unwrap();
    let mut db = None;
    for r in recs {
        if db != Some(r.db) {
            db = Some(r.db);
            w.select_db(r.db).unwrap();
            w.resize_db(1, 0).unwrap();
        }
        w.key(&r.key, r.expire, r.value.as_ref()).unwrap();
    }
    let n = w.bytes_written();
    let out = w.finish(checksum).unwrap();
    assert_eq!(out.len() as u64, n + 9);
    out
}

/// Reads a whole file; Ok(items) or the first error. Never panics (that is the point).
fn read_all(bytes: &[u8]) -> Result<Vec<Item>, ferrokv_persist::rdb::RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut items = Vec::new();
    while let Some(i) = r.next()? {
        items.push(i);
        // Bound the work on adversarial inputs (a million empty-string keys, say).
        if items.len() > 100_000 {
            break;
        }
    }
    Ok(items)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn written_files_read_back(recs in file_contents(), opts in options(), checksum in any::<bool>()) {
        let bytes = write(&recs, opts, checksum);
        let mut r = RdbReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(r.version(), 10);
        let mut db = 0;
        let mut got = Vec::new();
        while let Some(item) = r.next().unwrap() {
            match item {
                Item::SelectDb(d) => db = d,
                Item::Key(k) => got.push((db, k.key.to_vec(), k.expire_ms, canon(k.value))),
                Item::Aux { .. } | Item::ResizeDb { .. } | Item::Function(_) => {}
            }
        }
        prop_assert_eq!(r.offset(), bytes.len() as u64);
        let want: Vec<_> = recs.iter().map(|r| (r.db, r.key.clone(), r.expire, r.value.expected())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn dump_payloads_restore(v in value(), opts in options()) {
        let p = dump_payload_with(v.as_ref(), &opts).unwrap();
        prop_assert_eq!(canon(restore_payload(&p).unwrap()), v.expected());
        // Any single bit flip is caught by the CRC (or the version check).
        let bit = p.len() * 8 / 3;
        let mut bad = p.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(restore_payload(&bad).is_err());
        // Any truncation fails.
        prop_assert!(restore_payload(&p[..p.len() / 2]).is_err());
    }

    #[test]
    fn truncated_files_fail(recs in file_contents(), cut in any::<prop::sample::Index>()) {
        let bytes = write(&recs, WriteOptions::default(), true);
        let at = cut.index(bytes.len());
        let e = read_all(&bytes[..at]).unwrap_err();
        prop_assert!(e.offset <= at as u64, "error offset {} past the end {}", e.offset, at);
    }

    #[test]
    fn bit_flips_never_panic(recs in file_contents(), flips in prop::collection::vec(any::<prop::sample::Index>(), 1..8), checksum in any::<bool>()) {
        let mut bytes = write(&recs, WriteOptions::default(), checksum);
        for f in flips {
            let bit = f.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        let _ = read_all(&bytes);
    }

    #[test]
    fn garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..2000), version in 1u32..=12) {
        let _ = read_all(&tail);
        let mut f = format!("REDIS{version:04}").into_bytes();
        f.extend_from_slice(&tail);
        let _ = read_all(&f);
        let _ = restore_payload(&tail);
    }

    #[test]
    fn structured_garbage_never_panics(ty in 0u8..=25, body in prop::collection::vec(any::<u8>(), 0..300)) {
        // A type byte, a key, then random bytes: drives every value decoder.
        let mut f = b"REDIS0011".to_vec();
        f.extend_from_slice(&[ty, 1, b'k']);
        f.extend_from_slice(&body);
        let _ = read_all(&f);
        // The same as a DUMP payload with a valid footer, so the decoders run.
        let mut p = vec![ty];
        p.extend_from_slice(&body);
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = ferrokv_persist::rdb::crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        let _ = restore_payload(&p);
    }
}
