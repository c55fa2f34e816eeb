//! The AOF command stream on arbitrary bytes, as the loader and check-aof read it: no
//! panic, records never claim bytes past the input, argument vectors are bounded by the
//! input (not by the counts the file claims), and the checker keeps exactly the whole
//! records the loader would read.
#![no_main]
use ferrokv_check::aof_scan::scan;
use ferrokv_persist::aof::{next_record, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    let loaded_to = loop {
        let rest = &data[at..];
        match next_record(rest) {
            Record::Command { args, len } => {
                assert!(len > 0 && len <= rest.len());
                assert!(!args.is_empty() && args.len() <= rest.len() / 4);
                at += len;
            }
            Record::Annotation { len } => {
                assert!(len > 0 && len <= rest.len());
                at += len;
            }
            Record::Incomplete | Record::Bad { .. } => break at,
        }
    };
    let mut line = 1;
    let s = scan(data, "fuzz", 0, &mut line, Some(1_700_000_000)).expect("reading a slice cannot fail");
    assert!(s.ok_up_to <= data.len() as u64);
    if s.timestamp_cut.is_none() && !s.invalid_timestamp {
        assert!(s.ok_up_to <= loaded_to as u64);
    }
});
