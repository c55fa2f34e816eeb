//! DUMP / RESTORE payloads: `<type byte> <value as in an RDB file> <RDB version u16 LE>
//! <CRC-64 LE of everything before it>` (Redis's `createDumpPayload`).

use super::error::{ErrorKind, RdbError};
use super::reader::{read_value, Source};
use super::writer::{Elems, Encoder, ValueRef, WriteOptions};
use super::{crc64, types, RdbValue, RDB_VERSION};

/// Serializes a value for DUMP, with Redis 7.0's default encodings and compression.
/// Fails only on invalid input (empty aggregate, NaN score, a source whose `len()` lies).
pub fn dump_payload(value: ValueRef<'_>) -> Result<Vec<u8>, RdbError> {
    dump_payload_with(value, &WriteOptions::default())
}

/// [`dump_payload`] with explicit encoding options (the server's configured thresholds).
pub fn dump_payload_with(value: ValueRef<'_>, opts: &WriteOptions) -> Result<Vec<u8>, RdbError> {
    let mut enc = Encoder::new(Vec::new(), opts.clone());
    enc.typed_value(None, &value)?;
    enc.out.put(&(RDB_VERSION as u16).to_le_bytes())?;
    let crc = enc.out.crc()?;
    enc.out.put(&crc.to_le_bytes())?;
    enc.out.into_inner()
}

/// FUNCTION DUMP's payload: each library as `RDB_OPCODE_FUNCTION2 <code>`, then the RDB
/// version and the CRC-64, as a key's DUMP ends.
pub fn functions_payload<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, RdbError> {
    let mut enc = Encoder::new(Vec::new(), WriteOptions::default());
    for code in codes {
        enc.out.byte(types::OPCODE_FUNCTION2)?;
        enc.string(code)?;
    }
    enc.out.put(&(RDB_VERSION as u16).to_le_bytes())?;
    let crc = enc.out.crc()?;
    enc.out.put(&crc.to_le_bytes())?;
    enc.out.into_inner()
}

/// The libraries' codes in a FUNCTION RESTORE payload, or Redis 7.0's error text.
pub fn functions_from_payload(bytes: &[u8], checksum: bool) -> Result<Vec<Vec<u8>>, &'static str> {
    let n = bytes.len();
    let wrong = "DUMP payload version or checksum are wrong";
    if n < 10 || u32::from(u16::from_le_bytes([bytes[n - 10], bytes[n - 9]])) > RDB_VERSION {
        return Err(wrong);
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[n - 8..]);
    if checksum && crc64(0, &bytes[..n - 8]) != u64::from_le_bytes(stored) {
        return Err(wrong);
    }
    let mut src = Source::with_buffer(bytes, bytes.len());
    let mut codes = Vec::new();
    while n as u64 - src.offset() > 10 {
        match src.u8() {
            Err(_) => return Err("can not read data type"),
            Ok(types::OPCODE_FUNCTION_PRE_GA) => return Err("Pre-GA function format not supported"),
            Ok(types::OPCODE_FUNCTION2) => {}
            Ok(_) => return Err("given type is not a function"),
        }
        codes.push(src.string().map_err(|_| "failed loading the given functions payload")?);
    }
    Ok(codes)
}

/// The bytes a value takes in an RDB file, type byte excluded (Redis's `rdbSavedObjectLen`,
/// DEBUG OBJECT's `serializedlength`). The serialization is counted, not kept.
pub fn serialized_len(value: ValueRef<'_>, opts: &WriteOptions) -> Result<u64, RdbError> {
    let mut enc = Encoder::new(std::io::sink(), opts.clone());
    enc.typed_value(None, &value)?;
    Ok(enc.out.written().saturating_sub(1))
}

/// The quicklist Redis would hold for a list built by appending its elements under these
/// options: (nodes, their total bytes). DEBUG OBJECT's `ql_nodes` and `ql_uncompressed_size`.
pub fn quicklist_shape(list: &dyn Elems, opts: &WriteOptions) -> Result<(u64, u64), RdbError> {
    let mut enc = Encoder::new(std::io::sink(), opts.clone());
    let (mut nodes, mut bytes) = (0u64, 0u64);
    enc.quicklist_pass(list, false, &mut |_, _, size| {
        nodes += 1;
        bytes += size as u64;
        Ok(())
    })?;
    Ok((nodes, bytes))
}

/// What RESTORE checks beyond a payload's structure, which is always checked in full.
#[derive(Clone, Copy, Debug)]
pub struct RestoreChecks {
    /// Verify the CRC-64 (off after DEBUG SET-SKIP-CHECKSUM-VALIDATION 1).
    pub checksum: bool,
    /// Redis's deep sanitization (`sanitize-dump-payload yes`): also refuse duplicates in
    /// compact hashes and sorted sets, small plain hashes, and unordered intsets, which
    /// Redis otherwise loads as they are (ferrokv then keeps one of each).
    pub deep: bool,
    /// `hash-max-listpack-entries`: a plain hash longer than this is checked for
    /// duplicate fields even without deep sanitization, as Redis builds a table at once.
    pub hash_max_listpack_entries: usize,
}

impl Default for RestoreChecks {
    fn default() -> Self {
        RestoreChecks { checksum: true, deep: false, hash_max_listpack_entries: 128 }
    }
}

/// Checks a DUMP payload's footer (version not newer than 10, CRC-64) and decodes the
/// value with the default checks.
pub fn restore_payload(bytes: &[u8]) -> Result<RdbValue, RdbError> {
    restore_payload_checked(bytes, RestoreChecks::default())
}

/// [`restore_payload`] with explicit checks. As Redis, the value is read from the whole
/// payload (footer included) and what follows it is ignored; only value types Redis 7.0
/// knows are accepted.
pub fn restore_payload_checked(bytes: &[u8], checks: RestoreChecks) -> Result<RdbValue, RdbError> {
    let n = bytes.len();
    if n < 10 {
        return Err(RdbError::new(0, ErrorKind::PayloadChecksum));
    }
    let version = u16::from_le_bytes([bytes[n - 10], bytes[n - 9]]);
    if u32::from(version) > RDB_VERSION {
        return Err(RdbError::new((n - 10) as u64, ErrorKind::PayloadVersion(version)));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[n - 8..]);
    if checks.checksum && crc64(0, &bytes[..n - 8]) != u64::from_le_bytes(stored) {
        return Err(RdbError::new((n - 8) as u64, ErrorKind::PayloadChecksum));
    }
    // Redis reads the value from the whole payload: a damaged length may run into the
    // footer, and whatever follows the value is ignored.
    let mut src = Source::with_buffer(bytes, bytes.len());
    let ty = src.u8()?;
    // Types added after Redis 7.0 (RDB 11+) are unknown to it.
    if ty > types::STREAM_LISTPACKS_2 {
        return Err(RdbError::new(0, ErrorKind::UnknownType(ty)));
    }
    let v = read_value(&mut src, ty)
        .map_err(|e| match redis_reason(ty, &e.kind) {
            Some(reason) => RdbError::new(e.offset, ErrorKind::Sanitization(reason)),
            None => e,
        })?
        .ok_or_else(|| src.err(ErrorKind::EmptyValue))?;
    sanitize(ty, &v, &checks).map_err(|reason| RdbError::new(0, ErrorKind::Sanitization(reason)))?;
    Ok(v)
}

/// The reason Redis 7.0 logs when the encoded blob of a value of type `ty` fails its
/// integrity check (or its LZF string does not decompress, or a score is NaN).
fn redis_reason(ty: u8, kind: &ErrorKind) -> Option<&'static str> {
    use types::*;
    Some(match (kind, ty) {
        (ErrorKind::Lzf(_), _) => "Invalid LZF compressed string",
        (ErrorKind::BadScore, ZSET | ZSET_2) => "Zset with NAN score detected",
        (ErrorKind::Corrupt { structure: "quicklist", .. }, _) => "Quicklist integrity check failed.",
        (ErrorKind::Corrupt { .. }, LIST_QUICKLIST_2) => "Listpack integrity check failed.",
        (ErrorKind::Corrupt { .. }, LIST_QUICKLIST) => "Ziplist integrity check failed.",
        (ErrorKind::Corrupt { .. }, LIST_ZIPLIST) => "List ziplist integrity check failed.",
        (ErrorKind::Corrupt { .. }, SET_INTSET) => "Intset integrity check failed.",
        (ErrorKind::Corrupt { .. } | ErrorKind::BadScore, ZSET_ZIPLIST) => "Zset ziplist integrity check failed.",
        (ErrorKind::Corrupt { .. } | ErrorKind::BadScore, ZSET_LISTPACK) => "Zset listpack integrity check failed.",
        (ErrorKind::Corrupt { .. }, HASH_ZIPLIST) => "Hash ziplist integrity check failed.",
        (ErrorKind::Corrupt { .. }, HASH_LISTPACK) => "Hash listpack integrity check failed.",
        (ErrorKind::Corrupt { .. }, HASH_ZIPMAP) => "Zipmap integrity check failed.",
        _ => return None,
    })
}

/// The invariants Redis 7.0's rdbLoadObject enforces on a decoded value of type `ty`
/// (always, or with deep sanitization); the error is the reason Redis logs.
pub fn sanitize(ty: u8, v: &RdbValue, checks: &RestoreChecks) -> Result<(), &'static str> {
    use types::*;
    let deep = checks.deep;
    match (ty, v) {
        (SET, RdbValue::Set(m)) if has_duplicates(m.iter().map(|e| e.as_slice())) => {
            Err("Duplicate set members detected")
        }
        (SET_INTSET, RdbValue::Set(m)) if deep && !strictly_increasing(m) => Err("Intset integrity check failed."),
        (ZSET | ZSET_2, RdbValue::ZSet(z)) if has_duplicates(z.iter().map(|(m, _)| m.as_slice())) => {
            Err("Duplicate zset fields detected")
        }
        (ZSET_LISTPACK | ZSET_ZIPLIST, RdbValue::ZSet(z))
            if (deep || ty == ZSET_ZIPLIST) && has_duplicates(z.iter().map(|(m, _)| m.as_slice())) =>
        {
            Err(if ty == ZSET_ZIPLIST {
                "Zset ziplist integrity check failed."
            } else {
                "Zset listpack integrity check failed."
            })
        }
        (HASH, RdbValue::Hash(h)) if has_duplicates(h.iter().map(|(f, _)| f.as_slice())) => {
            if h.len() > checks.hash_max_listpack_entries {
                Err("Duplicate hash fields detected")
            } else if deep {
                Err("Hash with dup elements")
            } else {
                Ok(())
            }
        }
        (HASH_LISTPACK | HASH_ZIPLIST | HASH_ZIPMAP, RdbValue::Hash(h))
            if (deep || ty != HASH_LISTPACK) && has_duplicates(h.iter().map(|(f, _)| f.as_slice())) =>
        {
            Err(match ty {
                HASH_ZIPMAP => "Hash zipmap with dup elements, or big length",
                HASH_ZIPLIST => "Hash ziplist integrity check failed.",
                _ => "Hash listpack integrity check failed.",
            })
        }
        _ => Ok(()),
    }
}

fn has_duplicates<'a>(items: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item) {
            return true;
        }
    }
    false
}

/// An intset's members, decoded to decimal strings, in strictly increasing numeric order.
fn strictly_increasing(members: &[ferrokv_keyspace::SmallBytes]) -> bool {
    let ints: Vec<Option<i64>> =
        members.iter().map(|m| std::str::from_utf8(m.as_slice()).ok().and_then(|s| s.parse().ok())).collect();
    ints.windows(2).all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a < b))
}
