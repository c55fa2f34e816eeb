//! Byte-level behaviour of the reader and writer: encoding choices at the thresholds,
//! string encodings, quicklist node sizes, and every refusal with its offset and key.

use ferrokv_persist::rdb::{
    crc64, dump_payload, functions_from_payload, functions_payload, listpack, restore_payload, types, Bad, Elem,
    ErrorKind, Item, RdbError, RdbReader, RdbValue, RdbWriter, ValueRef, Visit, WriteOptions,
};

/// Writes one key and returns the file.
fn file_with(opts: WriteOptions, key: &[u8], v: ValueRef<'_>) -> Vec<u8> {
    let mut w = RdbWriter::with_options(Vec::new(), opts).unwrap();
    w.key(key, None, v).unwrap();
    w.finish(true).unwrap()
}

/// The RDB type byte the writer chose for `v`.
fn type_of(v: ValueRef<'_>) -> u8 {
    let f = file_with(WriteOptions::default(), b"k", v);
    let mut r = RdbReader::new(&f[..]).unwrap();
    assert!(matches!(r.next().unwrap(), Some(Item::Key(_))));
    assert_eq!(r.next().unwrap(), None);
    let t = r.last_key_type().unwrap();
    assert_eq!(f[9], t);
    t
}

fn ints(n: i64) -> Vec<Vec<u8>> {
    (0..n).map(|i| i.to_string().into_bytes()).collect()
}

#[test]
fn encoding_thresholds_are_redis_defaults() {
    assert_eq!(type_of(ValueRef::Str(b"x")), types::STRING);
    assert_eq!(type_of(ValueRef::List(&ints(1))), types::LIST_QUICKLIST_2);
    // Sets: intset up to 512 integers.
    assert_eq!(type_of(ValueRef::Set(&ints(512))), types::SET_INTSET);
    assert_eq!(type_of(ValueRef::Set(&ints(513))), types::SET);
    let mut mixed = ints(10);
    mixed.push(b"x".to_vec());
    assert_eq!(type_of(ValueRef::Set(&mixed)), types::SET);
    assert_eq!(type_of(ValueRef::Set(&vec![b"007".to_vec()])), types::SET);
    // Hashes: listpack up to 512 entries of at most 64 bytes.
    let h = |n: usize, flen: usize, vlen: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n).map(|i| ([format!("{i:05}").into_bytes(), vec![b'f'; flen]].concat(), vec![b'v'; vlen])).collect()
    };
    assert_eq!(type_of(ValueRef::Hash(&h(512, 0, 64))), types::HASH_LISTPACK);
    assert_eq!(type_of(ValueRef::Hash(&h(513, 0, 1))), types::HASH);
    assert_eq!(type_of(ValueRef::Hash(&h(3, 0, 65))), types::HASH);
    assert_eq!(type_of(ValueRef::Hash(&h(3, 60, 1))), types::HASH);
    // Sorted sets: listpack up to 128 members of at most 64 bytes.
    let z = |n: usize, mlen: usize| -> Vec<(Vec<u8>, f64)> {
        (0..n).map(|i| ([format!("{i:04}").into_bytes(), vec![b'm'; mlen]].concat(), i as f64)).collect()
    };
    assert_eq!(type_of(ValueRef::ZSet(&z(128, 60))), types::ZSET_LISTPACK);
    assert_eq!(type_of(ValueRef::ZSet(&z(129, 0))), types::ZSET_2);
    assert_eq!(type_of(ValueRef::ZSet(&z(2, 61))), types::ZSET_2);
}

/// The bytes of the value of the single key "k" in a file from `file_with`.
fn value_bytes(f: &[u8]) -> &[u8] {
    // "REDIS0010", type, key "k" (0x01 'k'), value, 0xFF, 8-byte checksum.
    &f[12..f.len() - 9]
}

#[test]
fn string_encodings() {
    let enc = |s: &[u8], compress: bool| {
        let opts = WriteOptions { compress, ..WriteOptions::default() };
        value_bytes(&file_with(opts, b"k", ValueRef::Str(s))).to_vec()
    };
    assert_eq!(enc(b"12", true), [0xC0, 12]);
    assert_eq!(enc(b"-128", true), [0xC0, 0x80]);
    assert_eq!(enc(b"-129", true), [0xC1, 0x7F, 0xFF]);
    assert_eq!(enc(b"65536", true), [0xC2, 0x00, 0x00, 0x01, 0x00]);
    assert_eq!(enc(b"2147483648", true), b"\x0a2147483648");
    assert_eq!(enc(b"012", true), b"\x03012");
    assert_eq!(enc(b"", true), [0x00]);
    assert_eq!(value_bytes(&file_with(WriteOptions::default(), b"k", ValueRef::Int(-5))), [0xC0, 0xFB]);
    assert_eq!(
        value_bytes(&file_with(WriteOptions::default(), b"k", ValueRef::Int(i64::MAX))),
        b"\x139223372036854775807"
    );
    // LZF only past 20 bytes, only when enabled, only when it saves 4+ bytes.
    assert_eq!(enc(&[b'a'; 20], true)[0], 20);
    assert_eq!(enc(&[b'a'; 100], true)[0], 0xC3);
    assert_eq!(enc(&[b'a'; 100], false)[..2], [0x40, 100]);
    let noise: Vec<u8> = (0..100u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    assert_eq!(enc(&noise, true)[..2], [0x40, 100]);
    // Lengths: 6, 14 and 32 bits.
    assert_eq!(enc(&[b'x'; 63], false)[0], 63);
    assert_eq!(enc(&[b'x'; 16383], false)[..2], [0x7F, 0xFF]);
    assert_eq!(enc(&[b'x'; 16384], false)[..5], [0x80, 0, 0, 0x40, 0]);
}

/// Splits a LIST_QUICKLIST_2 value into its nodes: (container, blob).
fn quicklist_nodes(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    fn len(b: &mut &[u8]) -> usize {
        let x = b[0];
        match x >> 6 {
            0 => {
                *b = &b[1..];
                usize::from(x)
            }
            1 => {
                let n = usize::from(x & 0x3f) << 8 | usize::from(b[1]);
                *b = &b[2..];
                n
            }
            _ => {
                assert_eq!(x, 0x80, "test helper handles raw lengths only");
                let n = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
                *b = &b[5..];
                n
            }
        }
    }
    let n = len(&mut b);
    let mut out = Vec::new();
    for _ in 0..n {
        let c = len(&mut b) as u8;
        let l = len(&mut b);
        out.push((c, b[..l].to_vec()));
        b = &b[l..];
    }
    assert!(b.is_empty());
    out
}

fn count(lp: &[u8]) -> usize {
    listpack::for_each(lp, |_| Ok::<(), Bad>(())).unwrap()
}

#[test]
fn quicklist_nodes_stay_within_8k() {
    let list: Vec<Vec<u8>> = (0..10_000).map(|i| format!("element-{i}").into_bytes()).collect();
    let opts = WriteOptions { compress: false, ..WriteOptions::default() };
    let f = file_with(opts.clone(), b"k", ValueRef::List(&list));
    let nodes = quicklist_nodes(value_bytes(&f));
    let mut total = 0;
    for (i, (c, lp)) in nodes.iter().enumerate() {
        assert_eq!(*c, 2, "packed");
        assert!(lp.len() <= 8192, "{}", lp.len());
        if i + 1 < nodes.len() {
            assert!(lp.len() > 8000, "nodes are filled: {}", lp.len());
        }
        total += count(lp);
    }
    assert_eq!(total, 10_000);

    // A count limit instead of a size class.
    let f = file_with(
        WriteOptions { list_max_listpack_size: 5, ..opts.clone() },
        b"k",
        ValueRef::List(&list[..12].to_vec()),
    );
    let counts: Vec<usize> = quicklist_nodes(value_bytes(&f)).iter().map(|(_, lp)| count(lp)).collect();
    assert_eq!(counts, [5, 5, 2]);

    // Elements at or over the plain threshold get plain nodes of their own.
    let big = vec![vec![b'a'; 10], vec![b'b'; 600], vec![b'c'; 10], vec![b'd'; 10]];
    let f = file_with(WriteOptions { list_packed_threshold: 500, ..opts }, b"k", ValueRef::List(&big));
    let nodes = quicklist_nodes(value_bytes(&f));
    let kinds: Vec<u8> = nodes.iter().map(|n| n.0).collect();
    assert_eq!(kinds, [2, 1, 2]);
    assert_eq!(nodes[1].1, vec![b'b'; 600]);
    let mut r = RdbReader::new(&f[..]).unwrap();
    let Some(Item::Key(k)) = r.next().unwrap() else { panic!() };
    assert_eq!(k.value, RdbValue::List(big.iter().map(|v| v[..].into()).collect()));
}

#[test]
fn visit_adapter_and_integer_elements() {
    let members = [5i64, -70000, 3];
    let src = Visit::new(members.len(), |f: &mut dyn FnMut(Elem<'_>)| members.iter().for_each(|&m| f(Elem::Int(m))));
    let p = dump_payload(ValueRef::Set(&src)).unwrap();
    assert_eq!(p[0], types::SET_INTSET);
    let RdbValue::Set(s) = restore_payload(&p).unwrap() else { panic!() };
    assert_eq!(s, [&b"-70000"[..], b"3", b"5"].map(Into::into));

    let pairs = [("a", 1i64), ("b", 2)];
    let src = Visit::new(2, |f: &mut dyn FnMut(Elem<'_>, Elem<'_>)| {
        pairs.iter().for_each(|(k, v)| f(Elem::Bytes(k.as_bytes()), Elem::Int(*v)))
    });
    let RdbValue::Hash(h) = restore_payload(&dump_payload(ValueRef::Hash(&src)).unwrap()).unwrap() else { panic!() };
    assert_eq!(h, [("a".into(), "1".into()), ("b".into(), "2".into())]);
}

#[test]
fn writer_refuses_bad_input() {
    let empty: Vec<Vec<u8>> = Vec::new();
    let e = dump_payload(ValueRef::List(&empty)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::EmptyValue));
    let nan = vec![(b"m".to_vec(), f64::NAN)];
    assert!(matches!(dump_payload(ValueRef::ZSet(&nan)).unwrap_err().kind, ErrorKind::InvalidInput(_)));
    let big_nan: Vec<(Vec<u8>, f64)> =
        (0..200).map(|i| (i.to_string().into_bytes(), if i == 150 { f64::NAN } else { 1.0 })).collect();
    assert!(matches!(dump_payload(ValueRef::ZSet(&big_nan)).unwrap_err().kind, ErrorKind::InvalidInput(_)));
    let dup = vec![b"1".to_vec(), b"1".to_vec()];
    assert!(matches!(dump_payload(ValueRef::Set(&dup)).unwrap_err().kind, ErrorKind::InvalidInput(_)));
    // A source whose len() does not match what it yields.
    let liar = Visit::new(3, |f: &mut dyn FnMut(Elem<'_>)| f(Elem::Bytes(b"only one")));
    assert!(matches!(dump_payload(ValueRef::List(&liar)).unwrap_err().kind, ErrorKind::InvalidInput(_)));
    let liar = Visit::new(1000, |f: &mut dyn FnMut(Elem<'_>)| f(Elem::Bytes(b"only one")));
    assert!(matches!(dump_payload(ValueRef::Set(&liar)).unwrap_err().kind, ErrorKind::InvalidInput(_)));
    // The key is named in writer errors.
    let mut w = RdbWriter::new(Vec::new(), true).unwrap();
    let e = w.key(b"mykey", None, ValueRef::List(&empty)).unwrap_err();
    assert_eq!(e.key.as_deref(), Some(&b"mykey"[..]));
}

#[test]
fn writer_reports_io_errors() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = RdbWriter::new(Full, false).unwrap();
    let big = vec![b'x'; 100_000];
    let e = w.key(b"k", None, ValueRef::Str(&big)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io(_)), "{e}");
}

// ----- reader refusals -----

/// A file from raw parts: header, body, EOF, checksum.
fn raw_file(version: u32, body: &[u8]) -> Vec<u8> {
    let mut f = format!("REDIS{version:04}").into_bytes();
    f.extend_from_slice(body);
    f.push(0xFF);
    if version >= 5 {
        let c = crc64(0, &f);
        f.extend_from_slice(&c.to_le_bytes());
    }
    f
}

fn read_err(f: &[u8]) -> RdbError {
    let mut r = match RdbReader::new(f) {
        Ok(r) => r,
        Err(e) => return e,
    };
    loop {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("expected an error"),
            Err(e) => {
                // The reader stays failed.
                assert!(r.next().is_err());
                return e;
            }
        }
    }
}

fn read_keys(f: &[u8]) -> Vec<(Vec<u8>, Option<i64>, RdbValue)> {
    let mut r = RdbReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(i) = r.next().unwrap() {
        if let Item::Key(k) = i {
            out.push((k.key.to_vec(), k.expire_ms, k.value));
        }
    }
    assert_eq!(r.offset(), f.len() as u64);
    out
}

#[test]
fn header_checks() {
    assert!(matches!(read_err(b"RADIS0010").kind, ErrorKind::NotRdb));
    assert!(matches!(read_err(b"REDIS00x0").kind, ErrorKind::NotRdb));
    assert!(matches!(read_err(b"REDIS").kind, ErrorKind::NotRdb));
    assert!(matches!(read_err(b"REDIS0000\xff").kind, ErrorKind::UnsupportedVersion(0)));
    assert!(matches!(read_err(b"REDIS0013\xff").kind, ErrorKind::UnsupportedVersion(13)));
    for v in 1..=12 {
        assert_eq!(RdbReader::new(&raw_file(v, b"")[..]).unwrap().version(), v);
    }
}

#[test]
fn checksums() {
    let good = raw_file(10, b"\x00\x01k\x01v");
    assert_eq!(read_keys(&good).len(), 1);
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x40;
    let e = read_err(&bad);
    assert!(matches!(e.kind, ErrorKind::BadChecksum { .. }));
    assert_eq!(e.offset, (n - 8) as u64);
    assert!(e.to_string().starts_with(&format!("at offset {}: bad checksum", n - 8)), "{e}");
    // A flipped body byte is caught too.
    let mut bad = good.clone();
    bad[13] = b'w';
    assert!(matches!(read_err(&bad).kind, ErrorKind::BadChecksum { .. }));
    // Unless the check is off (DEBUG SET-SKIP-CHECKSUM-VALIDATION 1).
    let mut r = RdbReader::new(&bad[..]).unwrap();
    r.set_verify_checksum(false);
    let mut keys = 0;
    while let Some(item) = r.next().unwrap() {
        keys += usize::from(matches!(item, Item::Key(_)));
    }
    assert_eq!(keys, 1);
    // Zero means "not computed".
    let mut zero = good.clone();
    zero[n - 8..].fill(0);
    assert_eq!(read_keys(&zero).len(), 1);
    // Before version 5 there is no checksum at all.
    assert_eq!(read_keys(&raw_file(4, b"\x00\x01k\x01v")).len(), 1);
    // A missing checksum is a truncation.
    assert!(read_err(&good[..n - 3]).is_truncation());
}

#[test]
fn functions_in_files_and_payloads() {
    let code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)";
    let mut w = RdbWriter::new(Vec::new(), true).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    w.function(code).unwrap();
    w.function(b"#!lua name=x\n").unwrap();
    let f = w.finish(true).unwrap();
    let mut r = RdbReader::new(&f[..]).unwrap();
    assert!(matches!(r.next().unwrap(), Some(Item::Aux { .. })));
    assert_eq!(r.next().unwrap(), Some(Item::Function(code.to_vec())));
    assert_eq!(r.next().unwrap(), Some(Item::Function(b"#!lua name=x\n".to_vec())));
    assert_eq!(r.next().unwrap(), None);

    let p = functions_payload([&code[..], b"#!lua name=y\n"]).unwrap();
    assert_eq!(p[0], types::OPCODE_FUNCTION2);
    assert_eq!(functions_from_payload(&p, true).unwrap(), vec![code.to_vec(), b"#!lua name=y\n".to_vec()]);
    assert_eq!(functions_from_payload(&functions_payload([]).unwrap(), true).unwrap(), Vec::<Vec<u8>>::new());
    let mut bad = p.clone();
    bad[3] ^= 1;
    assert_eq!(functions_from_payload(&bad, true), Err("DUMP payload version or checksum are wrong"));
    assert!(functions_from_payload(&bad, false).is_ok());
    let key = dump_payload(ValueRef::Str(b"v")).unwrap();
    assert_eq!(functions_from_payload(&key, true), Err("given type is not a function"));
}

#[test]
fn refusals_name_offset_and_key() {
    // Module value: the key is read, then refused.
    let e = read_err(&raw_file(10, b"\x07\x03mod\x00"));
    assert!(matches!(e.kind, ErrorKind::ModuleData));
    assert_eq!(e.key.as_deref(), Some(&b"mod"[..]));
    assert_eq!(e.to_string(), "at offset 14 (key 'mod'): module data is not supported");
    assert!(matches!(read_err(&raw_file(10, b"\xf7\x01\x02\x03")).kind, ErrorKind::ModuleData));
    // Pre-GA functions (7.0 release candidates) are refused, as Redis 7.0 refuses them.
    let e = read_err(&raw_file(10, b"\xf6\x05hello"));
    assert_eq!(e.to_string(), "at offset 9: Redis functions are not supported");
    // Streams are read (tests/streams.rs in crates/ferrokv); a broken one names its key.
    for t in [15u8, 19, 21] {
        let e = read_err(&raw_file(11, &[t, 1, b's']));
        assert_eq!(e.key.as_deref(), Some(&b"s"[..]));
    }
    assert!(matches!(read_err(&raw_file(12, b"\x18\x01h")).kind, ErrorKind::HashFieldExpiry));
    for t in [8u8, 26, 100, 243] {
        let e = read_err(&raw_file(10, &[t]));
        assert!(matches!(e.kind, ErrorKind::UnknownType(x) if x == t), "{e}");
        assert_eq!(e.offset, 9);
    }
    // Length and string encodings that do not exist.
    assert!(matches!(read_err(&raw_file(10, b"\xfe\x82")).kind, ErrorKind::BadLengthEncoding(0x82)));
    assert!(matches!(read_err(&raw_file(10, b"\x00\xc4")).kind, ErrorKind::BadStringEncoding(4)));
    // A quicklist node container other than plain/packed.
    let e = read_err(&raw_file(10, b"\x12\x01l\x01\x03\x01x"));
    assert!(matches!(e.kind, ErrorKind::Corrupt { structure: "quicklist", .. }), "{e}");
    // A corrupt listpack: the offset is where the blob starts.
    let e = read_err(&raw_file(10, b"\x10\x01h\x07\x07\x00\x00\x00\x05\x00\xff"));
    assert!(matches!(e.kind, ErrorKind::Corrupt { structure: "listpack", .. }), "{e}");
    assert_eq!(e.offset, 12);
    assert_eq!(e.key.as_deref(), Some(&b"h"[..]));
    // Odd entry counts in pair encodings.
    let mut lp = listpack::Builder::new();
    lp.push(Elem::Bytes(b"lonely"));
    let blob = lp.finish().unwrap().to_vec();
    let mut body = vec![types::HASH_LISTPACK, 1, b'h', blob.len() as u8];
    body.extend_from_slice(&blob);
    assert!(matches!(read_err(&raw_file(10, &body)).kind, ErrorKind::Corrupt { .. }));
    // A listpack score that reads as NaN (Redis reads these entries with strtod, so
    // "1.5x" would be 1.5 and "x" 0; NaN is what a sorted set here cannot hold).
    let mut lp = listpack::Builder::new();
    lp.push(Elem::Bytes(b"member"));
    lp.push(Elem::Bytes(b"nan"));
    let blob = lp.finish().unwrap().to_vec();
    let mut body = vec![types::ZSET_LISTPACK, 1, b'z', blob.len() as u8];
    body.extend_from_slice(&blob);
    let e = read_err(&raw_file(10, &body));
    assert!(matches!(e.kind, ErrorKind::BadScore), "{e}");
    assert_eq!(e.to_string(), "at offset 12 (key 'z'): sorted set score is not a number");
    // NaN scores.
    assert!(matches!(read_err(&raw_file(9, b"\x03\x01z\x01\x01m\xfd")).kind, ErrorKind::BadScore));
    let mut body = b"\x05\x01z\x01\x01m".to_vec();
    body.extend_from_slice(&f64::NAN.to_le_bytes());
    assert!(matches!(read_err(&raw_file(10, &body)).kind, ErrorKind::BadScore));
}

#[test]
fn lying_lengths_do_not_allocate() {
    // A list claiming 2^62 elements, a string claiming 2^60 bytes, an LZF string claiming
    // to expand 1 byte into a gigabyte: all end in a clean error, quickly.
    let mut body = vec![types::LIST, 1, b'l', 0x81];
    body.extend_from_slice(&(1u64 << 62).to_be_bytes());
    body.extend_from_slice(b"\x01a");
    assert!(read_err(&body_only(&body)).is_truncation());
    let mut body = vec![types::STRING, 1, b's', 0x81];
    body.extend_from_slice(&(1u64 << 60).to_be_bytes());
    assert!(read_err(&body_only(&body)).is_truncation());
    let body = [types::STRING, 1, b's', 0xC3, 0x01, 0x80, 0x40, 0x00, 0x00, 0x00, 0x00];
    assert!(matches!(read_err(&body_only(&body)).kind, ErrorKind::BadLength(_)));
    // RESTORE with the same lies.
    let mut p = vec![types::SET, 0x81];
    p.extend_from_slice(&u64::MAX.to_be_bytes());
    p.extend_from_slice(&10u16.to_le_bytes());
    let c = crc64(0, &p);
    p.extend_from_slice(&c.to_le_bytes());
    assert!(restore_payload(&p).unwrap_err().is_truncation());
}

fn body_only(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn opcodes_and_metadata() {
    let mut body = Vec::new();
    body.extend_from_slice(b"\xfa\x03ver\x057.0.0"); // AUX
    body.extend_from_slice(b"\xfa\x0aredis-bits\xc0\x40"); // AUX with an integer value
    body.extend_from_slice(b"\xfe\x05\xfb\x02\x01"); // SELECTDB 5, RESIZEDB 2 1
    body.extend_from_slice(b"\xf4\x01\x02\x03"); // SLOT_INFO (RDB 12), skipped
    body.extend_from_slice(b"\xfd\x10\x00\x00\x00"); // EXPIRETIME 16 s
    body.extend_from_slice(b"\xf8\x40\x64\xf9\x05"); // IDLE 100, FREQ 5
    body.extend_from_slice(b"\x00\x01a\x01x");
    body.extend_from_slice(b"\x01\x05empty\x00"); // an empty list: skipped
    body.extend_from_slice(b"\x00\x01b\x01y"); // no metadata
    let f = raw_file(12, &body);
    let mut r = RdbReader::new(&f[..]).unwrap();
    let mut items = Vec::new();
    while let Some(i) = r.next().unwrap() {
        items.push(i);
    }
    assert_eq!(r.skipped_empty_keys(), 1);
    assert_eq!(items.len(), 6);
    assert_eq!(items[0], Item::Aux { key: b"ver".to_vec(), value: b"7.0.0".to_vec() });
    assert_eq!(items[1], Item::Aux { key: b"redis-bits".to_vec(), value: b"64".to_vec() });
    assert_eq!(items[2], Item::SelectDb(5));
    assert_eq!(items[3], Item::ResizeDb { keys: 2, expires: 1 });
    let Item::Key(a) = &items[4] else { panic!() };
    assert_eq!((a.expire_ms, a.idle_secs, a.freq), (Some(16_000), Some(100), Some(5)));
    let Item::Key(b) = &items[5] else { panic!() };
    assert_eq!((b.expire_ms, b.idle_secs, b.freq), (None, None, None));
    // Once done, always done.
    assert_eq!(r.next().unwrap(), None);
}

#[test]
fn set_listpack_of_rdb_11() {
    let mut lp = listpack::Builder::new();
    for m in [&b"a"[..], b"17", b"-3"] {
        lp.push(Elem::Bytes(m));
    }
    let blob = lp.finish().unwrap().to_vec();
    let mut body = vec![types::SET_LISTPACK, 1, b's', blob.len() as u8];
    body.extend_from_slice(&blob);
    let keys = read_keys(&raw_file(11, &body));
    assert_eq!(keys[0].2, RdbValue::Set(vec!["a".into(), "17".into(), "-3".into()]));
}

#[test]
fn remainder_after_an_rdb_preamble() {
    // An AOF with an RDB preamble: the reader stops after the checksum and hands back
    // what it read ahead.
    let mut f = raw_file(10, b"\x00\x01k\x01v");
    f.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
    let mut r = RdbReader::new(&f[..]).unwrap();
    while r.next().unwrap().is_some() {}
    let (rest_reader, buffered) = r.into_inner();
    let mut tail = buffered;
    tail.extend_from_slice(rest_reader);
    assert_eq!(tail, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
}

#[test]
fn restore_checks_footer_and_body() {
    let good = dump_payload(ValueRef::Str(b"hello")).unwrap();
    assert_eq!(&good[good.len() - 10..good.len() - 8], &[10, 0]);
    assert_eq!(restore_payload(&good).unwrap(), RdbValue::String("hello".into()));
    // A newer version is refused before anything else.
    let mut newer = good[..good.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let c = crc64(0, &newer);
    newer.extend_from_slice(&c.to_le_bytes());
    assert!(matches!(restore_payload(&newer).unwrap_err().kind, ErrorKind::PayloadVersion(11)));
    // Older versions are fine (Redis 6 payloads have version 9).
    let mut older = good[..good.len() - 10].to_vec();
    older.extend_from_slice(&9u16.to_le_bytes());
    let c = crc64(0, &older);
    older.extend_from_slice(&c.to_le_bytes());
    assert!(restore_payload(&older).is_ok());
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(restore_payload(&bad).unwrap_err().kind, ErrorKind::PayloadChecksum));
    assert!(matches!(restore_payload(&good[..9]).unwrap_err().kind, ErrorKind::PayloadChecksum));
    // Extra bytes between the value and the footer are ignored, as Redis does.
    let mut extra = good[..good.len() - 10].to_vec();
    extra.push(0);
    extra.extend_from_slice(&10u16.to_le_bytes());
    let c = crc64(0, &extra);
    extra.extend_from_slice(&c.to_le_bytes());
    assert_eq!(restore_payload(&extra).unwrap(), restore_payload(&good).unwrap());
    // An empty aggregate.
    let mut empty = vec![types::LIST, 0];
    empty.extend_from_slice(&10u16.to_le_bytes());
    let c = crc64(0, &empty);
    empty.extend_from_slice(&c.to_le_bytes());
    assert!(matches!(restore_payload(&empty).unwrap_err().kind, ErrorKind::EmptyValue));
}
