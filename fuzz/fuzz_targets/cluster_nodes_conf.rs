//! nodes.conf parsing on arbitrary text: it may refuse anything, never panic; whatever it
//! accepts renders to a file that parses back to the same nodes.
#![no_main]
use ferrokv_cluster::nodes_conf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(conf) = nodes_conf::parse("fuzz", &text) {
        let rendered = nodes_conf::render(&conf);
        let again = nodes_conf::parse("fuzz", &rendered).expect("a rendered file parses");
        assert_eq!(again, conf);
        assert_eq!(nodes_conf::render(&again), rendered);
    }
});
