//! The cluster bus decoder on arbitrary bytes: framing and decoding may refuse anything,
//! never panic or read past the message; whatever decodes re-encodes to bytes that decode
//! to the same message.
#![no_main]
use ferrokv_cluster::bus;
use libfuzzer_sys::fuzz_target;

/// Where the slot bitmap starts in a header: after the signature, length, version, port,
/// type, count, three epochs/offsets and the sender's name.
const BITMAP_AT: usize = 8 + 2 + 2 + 2 + 2 + 8 + 8 + 8 + bus::NAME_LEN;

fuzz_target!(|data: &[u8]| {
    let _ = bus::frame_len(data, 1 << 20);
    // With the length field made right, so the type checks are reached as often as not.
    let mut fixed = data.to_vec();
    if fixed.len() >= 8 {
        fixed[..4].copy_from_slice(bus::SIGNATURE);
        let len = fixed.len() as u32;
        fixed[4..8].copy_from_slice(&len.to_be_bytes());
    }
    // And as the fields of a message with a valid signature, version and length, the slot
    // bitmap zero-filled and the header padded: a header is 2,256 bytes, more than the
    // fuzzer grows inputs to without guidance, so without this nothing past the length
    // check is reached (a 5-minute run kept 5 inputs, 56 edges).
    let head = data.len().min(BITMAP_AT - 10);
    let mut framed = Vec::with_capacity(bus::HEADER_LEN + data.len());
    framed.extend_from_slice(bus::SIGNATURE);
    framed.extend_from_slice(&[0; 4]);
    framed.extend_from_slice(&bus::PROTOCOL_VERSION.to_be_bytes());
    framed.extend_from_slice(&data[..head]);
    framed.resize(BITMAP_AT + bus::BITMAP_LEN, 0);
    framed.extend_from_slice(&data[head..]);
    framed.resize(framed.len().max(bus::HEADER_LEN), 0);
    let len = framed.len() as u32;
    framed[4..8].copy_from_slice(&len.to_be_bytes());
    for bytes in [data, &fixed[..], &framed[..]] {
        if let Ok(msg) = bus::decode(bytes) {
            let again = bus::decode(&bus::encode(&msg)).expect("a re-encoded message decodes");
            assert_eq!(again, msg);
        }
    }
});
