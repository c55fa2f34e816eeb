//! sanitize-dump-payload and values loaded from files (issue 20, item 8); RESTORE itself is
//! compared with redis-server in crates/ferrokv/tests/redis_parity.rs.

mod common;
use common::*;

/// sanitize-dump-payload yes also applies to values loaded from files (issue 20, item 8):
/// a listpack hash with a field twice is refused, as Redis refuses it; with `no` (and
/// `clients`) it loads, keeping one of each field.
#[test]
fn loading_sanitizes_values_when_sanitize_dump_payload_is_yes() {
    use ferrokv_engine::persistence::rdb::LoadLimits;
    use ferrokv_keyspace::SmallBytes;
    use ferrokv_persist::rdb::{types, KeyRecord, RdbValue};
    let rec = KeyRecord {
        key: SmallBytes::from(&b"h"[..]),
        type_byte: types::HASH_LISTPACK,
        expire_ms: None,
        idle_secs: None,
        freq: None,
        value: RdbValue::Hash(vec![(SmallBytes::from(&b"f"[..]), SmallBytes::from(&b"1"[..])); 2]),
    };
    for (mode, refused) in [("yes", true), ("clients", false), ("no", false)] {
        let mut h = Harness::new();
        let c = h.client();
        h.cmd(c, &["config", "set", "sanitize-dump-payload", mode]);
        let limits = LoadLimits::from_config(&h.eng.cfg);
        let result = h.eng.load_rdb_key(0, rec.clone(), &limits, h.now, false);
        assert_eq!(result.is_err(), refused, "{mode}: {result:?}");
        if refused {
            assert!(result.unwrap_err().ends_with("-> Hash listpack integrity check failed."));
        } else {
            assert_eq!(h.cmd(c, &["hlen", "h"]), int(1));
        }
    }
}
