//! The AOF manifest parser on arbitrary text: no panic, and whatever it accepts formats
//! to a text that parses back to the same files (the server rewrites manifests it read).
#![no_main]
use ferrokv_persist::aof::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::parse(data) else { return };
    if m.load_order().next().is_none() && m.history.is_empty() {
        return;
    }
    let text = m.format();
    let again = Manifest::parse(text.as_bytes()).expect("a formatted manifest parses");
    assert_eq!(again.base, m.base);
    assert_eq!(again.history, m.history);
    assert_eq!(again.incr, m.incr);
});
