//! The reply decoder on arbitrary bytes: no panic, bounded recursion and allocation, and a
//! decoded frame re-encodes to bytes that decode, whole, to the same frame.
#![no_main]
use ferrokv_resp::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((f, n))) = Frame::decode(data) {
        assert!(n <= data.len());
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(Frame::decode(&out), Ok(Some((f, out.len()))));
    }
});
