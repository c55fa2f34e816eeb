//! redis.conf parsing on arbitrary text: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ferrokv-fuzz-{}.conf", std::process::id()));
    // Includes would read arbitrary files; keep the fuzzer on the parser itself.
    let text = text.replace("include", "x");
    if std::fs::write(&path, text.as_bytes()).is_ok() {
        let cl = ferrokv_config::CommandLine { config_file: Some(path.display().to_string()), ..Default::default() };
        let _ = ferrokv_config::load(&cl, false);
    }
});
