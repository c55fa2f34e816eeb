//! The cluster bus decoder on arbitrary bytes: framing and decoding may refuse anything,
//! never panic or read past the message; whatever decodes re-encodes to bytes that decode
//! to the same message.
#![no_main]
use ferrokv_cluster::bus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bus::frame_len(data, 1 << 20);
    // With the length field made right, so the type checks are reached as often as not.
    let mut fixed = data.to_vec();
    if fixed.len() >= 8 {
        fixed[..4].copy_from_slice(bus::SIGNATURE);
        let len = fixed.len() as u32;
        fixed[4..8].copy_from_slice(&len.to_be_bytes());
    }
    for bytes in [data, &fixed[..]] {
        if let Ok(msg) = bus::decode(bytes) {
            let again = bus::decode(&bus::encode(&msg)).expect("a re-encoded message decodes");
            assert_eq!(again, msg);
        }
    }
});
