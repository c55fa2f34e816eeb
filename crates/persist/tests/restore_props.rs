//! RESTORE never panics on a damaged payload (issue 20, item 8): valid DUMP payloads of
//! every compact encoding and a stream with a consumer group, mutated at random (bytes changed, cut, inserted) with the CRC
//! recomputed so the value decoders run, are decoded with and without deep
//! sanitization. Any answer is fine; a panic is not.

use ferrokv_persist::rdb::{crc64, dump_payload, restore_payload_checked, RestoreChecks, ValueRef};
use proptest::prelude::*;

fn payloads() -> Vec<Vec<u8>> {
    let list: Vec<Vec<u8>> = vec![b"a".to_vec(), b"12".to_vec(), b"-70000".to_vec(), vec![b'x'; 70]];
    let ints: Vec<Vec<u8>> = vec![b"1".to_vec(), b"300".to_vec(), b"70000".to_vec()];
    let hash: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"f1".to_vec(), b"v1".to_vec()), (b"f2".to_vec(), b"2".to_vec())];
    let zset: Vec<(Vec<u8>, f64)> = vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.5), (b"c".to_vec(), -3.0)];
    vec![
        dump_payload(ValueRef::Str(&b"abcabcabcabcabcabcabcabcabcabcabc"[..])).unwrap(),
        dump_payload(ValueRef::List(&list)).unwrap(),
        dump_payload(ValueRef::Set(&ints)).unwrap(),
        dump_payload(ValueRef::Set(&list)).unwrap(),
        dump_payload(ValueRef::Hash(&hash)).unwrap(),
        dump_payload(ValueRef::ZSet(&zset)).unwrap(),
        dump_payload(ValueRef::Stream(&stream())).unwrap(),
    ]
}

/// A stream with two nodes, a deleted entry and a group with pending entries.
fn stream() -> ferrokv_keyspace::types::stream::Stream {
    use ferrokv_keyspace::types::stream::{Group, NodeLimits, Stream, StreamId};
    let mut s = Stream::new();
    let lim = NodeLimits { max_bytes: 4096, max_entries: 2 };
    s.append(StreamId::new(1, 0), &[(b"f", b"1"), (b"g", b"x")], lim);
    s.append(StreamId::new(2, 0), &[(b"f", b"2"), (b"g", b"y")], lim);
    s.append(StreamId::new(3, 5), &[(b"other", b"-70000")], lim);
    s.delete(StreamId::new(2, 0));
    let mut g = Group::new(StreamId::new(3, 5), 3);
    g.create_consumer(b"alice", 1000);
    g.create_consumer(b"bob", 2000);
    g.assign(StreamId::new(1, 0), b"alice", 1500, 2);
    g.assign(StreamId::new(3, 5), b"bob", 2500, 1);
    s.groups.insert("g".into(), g);
    s
}

fn refooter(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

proptest! {
    #[test]
    fn damaged_payloads_never_panic(
        which in 0usize..7,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let payload = &payloads()[which];
        let mut body = payload[..payload.len() - 10].to_vec();
        for (at, byte, op) in edits {
            let i = usize::from(at) % (body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ => body.truncate(i.max(1)),
            }
        }
        for deep in [false, true] {
            let checks = RestoreChecks { checksum: true, deep, hash_max_listpack_entries: 1 };
            let _ = restore_payload_checked(&refooter(&body), checks);
            let _ = restore_payload_checked(&body, RestoreChecks { checksum: false, ..checks });
        }
    }
}
