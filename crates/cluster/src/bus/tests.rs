use super::*;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = NodeName> {
    proptest::array::uniform32(any::<u8>()).prop_flat_map(|head| {
        proptest::array::uniform8(any::<u8>()).prop_map(move |tail| {
            let mut n = [0; NAME_LEN];
            n[..32].copy_from_slice(&head);
            n[32..].copy_from_slice(&tail);
            n
        })
    })
}

fn bitmap() -> impl Strategy<Value = SlotBitmap> {
    proptest::collection::vec(0u16..16384, 0..20).prop_map(|slots| {
        let mut b = SlotBitmap::default();
        for s in slots {
            b.set(s, true);
        }
        b
    })
}

fn ip() -> impl Strategy<Value = String> {
    "[0-9a-f.:]{0,46}"
}

fn header() -> impl Strategy<Value = Header> {
    (
        (any::<u16>(), any::<u64>(), any::<u64>(), any::<u64>()),
        name(),
        bitmap(),
        proptest::option::of(name().prop_filter("non-zero", |n| *n != [0; NAME_LEN])),
        ip(),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u8>(), any::<[u8; 3]>()),
    )
        .prop_map(|((port, current_epoch, config_epoch, offset), sender, myslots, replica_of, myip, tail)| {
            Header {
                port,
                current_epoch,
                config_epoch,
                offset,
                sender,
                myslots,
                replica_of,
                myip,
                pport: tail.0,
                cport: tail.1,
                flags: tail.2,
                state: tail.3,
                mflags: tail.4,
            }
        })
}

fn gossip() -> impl Strategy<Value = Gossip> {
    (name(), any::<u32>(), any::<u32>(), ip(), any::<[u16; 4]>()).prop_map(|(name, ping_sent, pong_received, ip, p)| {
        Gossip { name, ping_sent, pong_received, ip, port: p[0], cport: p[1], flags: p[2], pport: p[3] }
    })
}

fn extension() -> impl Strategy<Value = Extension> {
    prop_oneof![
        "[a-z0-9.-]{0,30}".prop_map(Extension::Hostname),
        "[a-z0-9.-]{0,30}".prop_map(Extension::HumanNodename),
        (name(), any::<u64>()).prop_map(|(name, ttl_secs)| Extension::ForgottenNode { name, ttl_secs }),
        name().prop_map(Extension::ShardId),
        (4u16..100, proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(kind, words)| Extension::Unknown { kind, data: words.iter().flat_map(|w| [*w; 8]).collect() }),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    let ping = || (proptest::collection::vec(gossip(), 0..4), proptest::collection::vec(extension(), 0..3));
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        ping().prop_map(|(gossip, extensions)| Body::Ping { gossip, extensions }),
        ping().prop_map(|(gossip, extensions)| Body::Pong { gossip, extensions }),
        ping().prop_map(|(gossip, extensions)| Body::Meet { gossip, extensions }),
        name().prop_map(|about| Body::Fail { about }),
        (bytes(), bytes()).prop_map(|(channel, message)| Body::Publish { channel, message }),
        (bytes(), bytes()).prop_map(|(channel, message)| Body::PublishShard { channel, message }),
        Just(Body::FailoverAuthRequest),
        Just(Body::FailoverAuthAck),
        Just(Body::MfStart),
        (any::<u64>(), name(), bitmap()).prop_map(|(config_epoch, node, slots)| Body::Update {
            config_epoch,
            node,
            slots
        }),
        (any::<u64>(), any::<u8>(), bytes()).prop_map(|(module_id, module_type, payload)| Body::Module {
            module_id,
            module_type,
            payload
        }),
        (11u16..1000, bytes()).prop_map(|(kind, payload)| Body::Unknown { kind, payload }),
    ]
}

fn normalized(mut msg: Message) -> Message {
    // The encoder sets EXT_DATA when there are extensions; a message without any but with
    // the flag set decodes the same way (zero extensions).
    if msg.body.ping_data().is_some_and(|(_, e)| !e.is_empty()) {
        msg.header.mflags[0] |= mflags0::EXT_DATA;
    }
    msg
}

proptest! {
    #[test]
    fn round_trip(header in header(), body in body()) {
        let msg = normalized(Message { header, body });
        let bytes = encode(&msg);
        prop_assert_eq!(frame_len(&bytes, 1 << 20), Ok(Some(bytes.len())));
        let back = decode(&bytes).expect("an encoded message decodes");
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(encode(&back), bytes);
    }

    #[test]
    fn damaged_messages_never_panic(header in header(), body in body(),
                                    edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                                    cut in any::<usize>()) {
        let mut bytes = encode(&Message { header, body });
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        // The length field is kept right half the time, so the body checks are reached.
        if cut % 2 == 0 {
            let len = bytes.len() as u32;
            bytes[4..8].copy_from_slice(&len.to_be_bytes());
            bytes[..4].copy_from_slice(SIGNATURE);
        } else {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        let _ = frame_len(&bytes, 1 << 20);
        if let Ok(msg) = decode(&bytes) {
            prop_assert_eq!(decode(&encode(&msg)).expect("re-encoded decodes"), msg);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = frame_len(&bytes, 1 << 20);
        let _ = decode(&bytes);
    }
}

fn sample_header() -> Header {
    let mut myslots = SlotBitmap::default();
    myslots.set(0, true);
    myslots.set(16383, true);
    Header {
        port: 7000,
        current_epoch: 5,
        config_epoch: 3,
        offset: 0x0102030405060708,
        sender: name_from_str("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        myslots,
        replica_of: None,
        myip: "127.0.0.1".into(),
        pport: 0,
        cport: 17000,
        flags: 1,
        state: 0,
        mflags: [0; 3],
    }
}

#[test]
fn field_offsets_are_redis_7_0s() {
    let msg = Message {
        header: sample_header(),
        body: Body::Ping { gossip: vec![], extensions: vec![Extension::Hostname("host".into())] },
    };
    let b = encode(&msg);
    assert_eq!(&b[0..4], b"RCmb");
    assert_eq!(u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize, HEADER_LEN + 16);
    assert_eq!(&b[8..10], &[0, 1]);
    assert_eq!(u16::from_be_bytes([b[10], b[11]]), 7000);
    assert_eq!(&b[12..16], &[0, 0, 0, 0]); // type PING, count 0
    assert_eq!(b[23], 5);
    assert_eq!(b[31], 3);
    assert_eq!(&b[32..40], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(b[40], b'a');
    assert_eq!(b[80], 1, "slot 0 is bit 0 of byte 0");
    assert_eq!(b[80 + 2047], 0x80, "slot 16383 is bit 7 of the last byte");
    assert_eq!(&b[2168..2177], b"127.0.0.1");
    assert_eq!(&b[2214..2216], &[0, 1], "one extension");
    assert_eq!(u16::from_be_bytes([b[2248], b[2249]]), 17000);
    assert_eq!(b[2253], mflags0::EXT_DATA);
    // The hostname extension: length 16, type 0, then "host\0" padded to 8.
    assert_eq!(&b[2256..2264], &[0, 0, 0, 16, 0, 0, 0, 0]);
    assert_eq!(&b[2264..2272], b"host\0\0\0\0");
}

#[test]
fn lengths_are_checked_like_redis() {
    let fail = encode(&Message { header: sample_header(), body: Body::Fail { about: [b'b'; NAME_LEN] } });
    assert_eq!(fail.len(), HEADER_LEN + NAME_LEN);
    // One byte short of a FAIL body, with a consistent length field.
    let mut short = fail[..fail.len() - 1].to_vec();
    let len = short.len() as u32;
    short[4..8].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(decode(&short), Err(DecodeError::BadMessage(_))));
    // A gossip count the message cannot hold.
    let mut ping =
        encode(&Message { header: sample_header(), body: Body::Ping { gossip: vec![], extensions: vec![] } });
    ping[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(decode(&ping), Err(DecodeError::BadMessage(_))));
    // Another protocol version: dropped, not a framing error.
    let mut v2 = fail.clone();
    v2[9] = 2;
    assert!(matches!(decode(&v2), Err(DecodeError::BadMessage(_))));
    assert!(matches!(frame_len(b"RCmX\0\0\x10\0", 1 << 20), Err(DecodeError::BadFrame(_))));
    assert!(matches!(frame_len(b"RCmb\0\0\0\x10", 1 << 20), Err(DecodeError::BadFrame(_))));
    assert_eq!(frame_len(b"RCmb\0\0", 1 << 20), Ok(None));
    assert!(matches!(frame_len(b"RCmb\x10\0\0\0", 1 << 20), Err(DecodeError::BadFrame(_))));
}

proptest! {
    #[test]
    fn ranges_are_the_runs_of_set_slots(runs in proptest::collection::vec((0u16..16384, 0u16..40), 0..12)) {
        let mut b = SlotBitmap::default();
        for (first, len) in runs {
            for slot in first..first.saturating_add(len).min(16383) + 1 {
                b.set(slot, true);
            }
        }
        let mut expected: Vec<(u16, u16)> = Vec::new();
        for slot in b.slots() {
            match expected.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => expected.push((slot, slot)),
            }
        }
        prop_assert_eq!(b.ranges(), expected);
    }
}

#[test]
fn ranges_of_empty_full_and_edges() {
    let mut b = SlotBitmap::default();
    assert!(b.ranges().is_empty());
    for slot in 0..16384 {
        b.set(slot, true);
    }
    assert_eq!(b.ranges(), [(0, 16383)]);
    b.set(8, false);
    b.set(16383, false);
    assert_eq!(b.ranges(), [(0, 7), (9, 16382)]);
}
