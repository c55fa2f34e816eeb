//! The RDB reader and RESTORE on arbitrary bytes: no panic, no unbounded allocation, and
//! errors never point past the input. The input is tried as a file as given, as the body
//! of a file after a valid header (so the fuzzer need not discover "REDIS0010"), and as a
//! DUMP payload, both as given and with a valid footer appended (so the value decoders
//! run instead of the checksum rejecting everything).
#![no_main]
use ferrokv_persist::rdb::{crc64, restore_payload, restore_payload_checked, RdbReader, RestoreChecks};
use libfuzzer_sys::fuzz_target;

fn read_all(bytes: &[u8]) {
    let Ok(mut r) = RdbReader::new(bytes) else { return };
    let mut n = 0u32;
    loop {
        match r.next() {
            Ok(Some(_)) if n < 100_000 => n += 1,
            Ok(_) => break,
            Err(e) => {
                assert!(e.offset <= bytes.len() as u64, "error offset {} past the input", e.offset);
                let _ = e.to_string();
                break;
            }
        }
    }
    assert!(r.offset() <= bytes.len() as u64);
}

fuzz_target!(|data: &[u8]| {
    read_all(data);
    let mut file = b"REDIS0010".to_vec();
    file.extend_from_slice(data);
    read_all(&file);

    let _ = restore_payload(data);
    let mut payload = data.to_vec();
    payload.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(0, &payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let _ = restore_payload(&payload);
    // Deep sanitization, and the CRC check off (DEBUG SET-SKIP-CHECKSUM-VALIDATION).
    let checks = RestoreChecks { checksum: false, deep: true, hash_max_listpack_entries: 2 };
    let _ = restore_payload_checked(data, checks);
    let _ = restore_payload_checked(&payload, checks);
});
