//! HyperLogLog operations on arbitrary bytes after a HYLL header: every operation works or
//! reports a corrupt value, none panics (PFADD, PFCOUNT, PFMERGE and PFDEBUG run these on
//! whatever a client stored with SET or RESTORE).
#![no_main]
use ferrokv_keyspace::types::hll;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let mut value = b"HYLL".to_vec();
    value.push(selector & 1);
    value.extend_from_slice(&[0; 11]);
    value.extend_from_slice(body);
    if hll::encoding_of(&value).is_none() {
        return;
    }
    let _ = hll::count(&value);
    if selector & 1 == 1 {
        hll::decode_sparse(&value);
    }
    let mut max = [0u8; hll::REGISTERS];
    let _ = hll::merge_into(&mut max, &value);
    let mut v = value.clone();
    let _ = hll::add(&mut v, body, (selector as usize) * 16);
    let _ = hll::sparse_to_dense(&mut value.clone());
});
