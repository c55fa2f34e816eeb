//! PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST over string values in Redis's HyperLogLog
//! representation (`ferrokv_keyspace::types::hll`). A HyperLogLog is an ordinary string:
//! GET, SET, DUMP, RDB and replication carry it unchanged.

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::{notify, pid, Pid};
use ferrokv_keyspace::types::hll::{self, Corrupt, Encoding, REGISTERS};
use ferrokv_keyspace::{Obj, SmallBytes, Value};

const SPARSE_MAX_BYTES: Pid = pid("hll-sparse-max-bytes");

fn not_an_hll() -> CmdError {
    CmdError::err("WRONGTYPE Key is not a valid HyperLogLog string value.")
}

fn corrupt(_: Corrupt) -> CmdError {
    CmdError::err("INVALIDOBJ Corrupted HLL object detected")
}

/// The bytes of a value that must be a HyperLogLog: WRONGTYPE for other types, Redis's
/// "not a valid HyperLogLog" for strings that are not one (integers included: Redis keeps
/// those as numbers, never as HLL bytes).
fn hll_bytes(value: &Value) -> Result<&[u8], CmdError> {
    match value {
        Value::Str(s) if hll::encoding_of(s).is_some() => Ok(s),
        Value::Str(_) | Value::Int(_) => Err(not_an_hll()),
        _ => Err(CmdError::WrongType),
    }
}

/// Runs `edit` on the bytes of a HyperLogLog value already checked by [`hll_bytes`].
fn edit_hll<T>(o: &mut Obj, edit: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let Value::Str(s) = &mut o.value else { unreachable!("checked by hll_bytes") };
    let result = s.with_vec(edit);
    o.mark_raw();
    result
}

fn sparse_max_bytes(c: &Ctx) -> usize {
    c.eng.cfg.int(SPARSE_MAX_BYTES).max(0) as usize
}

pub fn pfadd(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let max_bytes = sparse_max_bytes(c);
    let elements: Vec<&[u8]> = (2..c.argc()).map(|i| c.arg(i)).collect();
    let updates = match c.eng.lookup_write(db, key, c.now) {
        Some(o) => {
            hll_bytes(&o.value)?;
            // An invalid sparse value fails part-way, as in Redis: what was added before stays.
            let result = edit_hll(o, |v| {
                let mut changed = 0u64;
                for e in &elements {
                    changed += hll::add(v, e, max_bytes)? as u64;
                }
                if changed > 0 {
                    hll::invalidate_cache(v);
                }
                Ok(changed)
            });
            result.map_err(corrupt)?
        }
        None => {
            let mut v = hll::new_sparse();
            let added = elements.iter().try_fold(0u64, |n, e| Ok(n + hll::add(&mut v, e, max_bytes)? as u64));
            let updates = 1 + added.map_err(corrupt)?;
            hll::invalidate_cache(&mut v);
            let mut obj = Obj::new(Value::Str(SmallBytes::from_vec(v)), c.now);
            obj.mark_raw();
            c.eng.dbs[db].add(key, obj);
            updates
        }
    };
    if updates > 0 {
        c.modified_in(db, key, updates);
        c.notify(notify::STRING, "pfadd", key);
    }
    c.out().int((updates > 0) as i64);
    Ok(())
}

pub fn pfcount(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    if c.argc() > 2 {
        // The cardinality of the union; nothing is cached.
        let mut max = [0u8; REGISTERS];
        for i in 1..c.argc() {
            if let Some(o) = c.eng.lookup_read(db, c.arg(i), c.now) {
                hll::merge_into(&mut max, hll_bytes(&o.value)?).map_err(corrupt)?;
            }
        }
        c.out().int(hll::estimate(&hll::histogram_of_registers(&max)) as i64);
        return Ok(());
    }
    let key = c.arg(1);
    let card = match c.eng.lookup_read(db, key, c.now) {
        None => {
            c.out().int(0);
            return Ok(());
        }
        Some(o) => {
            let bytes = hll_bytes(&o.value)?;
            match hll::cached_cardinality(bytes) {
                Some(card) => {
                    c.out().int(card as i64);
                    return Ok(());
                }
                None => hll::count(bytes).map_err(corrupt)?,
            }
        }
    };
    // The cache is part of the string: storing it changes the value, so it counts as a
    // change and PFCOUNT goes to the AOF and replicas (as in Redis), which keeps their
    // bytes identical.
    if let Some(o) = c.eng.dbs[db].get_mut_unchecked(key) {
        edit_hll(o, |v| hll::set_cached_cardinality(v, card));
    }
    c.modified(key);
    c.force_propagation();
    c.out().int(card as i64);
    Ok(())
}

pub fn pfmerge(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    let dest = c.arg(1);
    let max_bytes = sparse_max_bytes(c);
    let mut max = [0u8; REGISTERS];
    let mut any_dense = false;
    for i in 1..c.argc() {
        if let Some(o) = c.eng.lookup_read(db, c.arg(i), c.now) {
            let bytes = hll_bytes(&o.value)?;
            any_dense |= hll::encoding_of(bytes) == Some(Encoding::Dense);
            hll::merge_into(&mut max, bytes).map_err(corrupt)?;
        }
    }
    if c.eng.lookup_write(db, dest, c.now).is_none() {
        let mut obj = Obj::new(Value::Str(SmallBytes::from_vec(hll::new_sparse())), c.now);
        obj.mark_raw();
        c.eng.dbs[db].add(dest, obj);
    }
    let o = c.eng.dbs[db].get_mut_unchecked(dest).expect("present");
    edit_hll(o, |v| -> Result<(), Corrupt> {
        if any_dense {
            hll::sparse_to_dense(v)?;
        }
        for (index, &count) in max.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if hll::encoding_of(v) == Some(Encoding::Dense) {
                hll::dense_set_max(&mut v[hll::HEADER_LEN..], index, count);
            } else {
                hll::sparse_set(v, index, count, max_bytes)?;
            }
        }
        hll::invalidate_cache(v);
        Ok(())
    })
    .map_err(corrupt)?;
    c.modified(dest);
    c.notify(notify::STRING, "pfadd", dest);
    c.out().ok();
    Ok(())
}

pub fn pfdebug(c: &mut Ctx) -> CmdResult {
    let sub = c.arg(1);
    let key = c.arg(2);
    let db = c.client.db;
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        return Err(CmdError::err("ERR The specified key does not exist"));
    };
    let encoding = hll::encoding_of(hll_bytes(&o.value)?).expect("checked");
    if sub.eq_ignore_ascii_case(b"getreg") || sub.eq_ignore_ascii_case(b"todense") {
        let converted = encoding == Encoding::Sparse;
        let registers = edit_hll(o, |v| -> Result<Vec<u8>, Corrupt> {
            hll::sparse_to_dense(v)?;
            Ok((0..REGISTERS).map(|i| hll::dense_get(&v[hll::HEADER_LEN..], i)).collect())
        })
        .map_err(corrupt)?;
        if converted {
            // Force propagation: the replicas convert too.
            c.modified(key);
        }
        let out = c.out();
        if sub.eq_ignore_ascii_case(b"getreg") {
            out.array(REGISTERS);
            registers.iter().for_each(|&r| out.int(r as i64));
        } else {
            out.int(converted as i64);
        }
        return Ok(());
    }
    if sub.eq_ignore_ascii_case(b"decode") {
        if encoding != Encoding::Sparse {
            return Err(CmdError::err("ERR HLL encoding is not sparse"));
        }
        let text = hll::decode_sparse(hll_bytes(&o.value)?);
        c.out().bulk(text.as_bytes());
        return Ok(());
    }
    if sub.eq_ignore_ascii_case(b"encoding") {
        c.out().simple(if encoding == Encoding::Dense { "dense" } else { "sparse" });
        return Ok(());
    }
    Err(CmdError::msg(format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub))))
}

/// Checks the register packing and the estimator's error on this build, as Redis's
/// PFSELFTEST does (sparse and dense side by side, error within 6 standard errors).
pub fn pfselftest(c: &mut Ctx) -> CmdResult {
    let mut seed = c.now as u64 | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut registers = vec![0u8; hll::DENSE_LEN - hll::HEADER_LEN];
    let mut expected = vec![0u8; REGISTERS];
    for _ in 0..100 {
        for (i, e) in expected.iter_mut().enumerate() {
            *e = (next() & 63) as u8;
            hll::dense_put(&mut registers, i, *e);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = hll::dense_get(&registers, i);
            if got != e {
                return Err(CmdError::msg(format!("ERR TESTFAILED Register {i} should be {e} but is {got}")));
            }
        }
    }
    let max_bytes = sparse_max_bytes(c);
    let mut dense = hll::new_sparse();
    hll::sparse_to_dense(&mut dense).map_err(corrupt)?;
    let mut sparse = hll::new_sparse();
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    let salt = next();
    let mut checkpoint = 1u64;
    for j in 1..=1_000_000u64 {
        let element = (j ^ salt).to_le_bytes();
        hll::add(&mut dense, &element, max_bytes).map_err(corrupt)?;
        hll::add(&mut sparse, &element, max_bytes).map_err(corrupt)?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_bytes / 2 && hll::encoding_of(&sparse) != Some(Encoding::Sparse) {
            return Err(CmdError::err("ERR TESTFAILED sparse encoding not used"));
        }
        let count = hll::count(&dense).map_err(corrupt)?;
        if count != hll::count(&sparse).map_err(corrupt)? {
            return Err(CmdError::err("ERR TESTFAILED dense/sparse disagree"));
        }
        let max_error = if j == 10 { 1 } else { (relative_error * 6.0 * j as f64).ceil() as u64 };
        let error = count.abs_diff(j);
        if error > max_error {
            return Err(CmdError::msg(format!("ERR TESTFAILED Too big error. card:{j} abserr:{error}")));
        }
        checkpoint *= 10;
    }
    c.out().ok();
    Ok(())
}
