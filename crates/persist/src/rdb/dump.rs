//! DUMP / RESTORE payloads: `<type byte> <value as in an RDB file> <RDB version u16 LE>
//! <CRC-64 LE of everything before it>` (Redis's `createDumpPayload`).

use super::error::{ErrorKind, RdbError};
use super::reader::{read_value, Source};
use super::writer::{Elems, Encoder, ValueRef, WriteOptions};
use super::{crc64, RdbValue, RDB_VERSION};

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

/// Checks a DUMP payload's footer (version not newer than 10, CRC-64) and decodes the
/// value. Stricter than Redis in one way: bytes left between the value and the footer are
/// an error (Redis ignores them; no DUMP produces them).
pub fn restore_payload(bytes: &[u8]) -> Result<RdbValue, RdbError> {
    let n = bytes.len();
    if n < 10 {
        return Err(RdbError::new(0, ErrorKind::PayloadChecksum));
    }
    let body = &bytes[..n - 10];
    let version = u16::from_le_bytes([bytes[n - 10], bytes[n - 9]]);
    if u32::from(version) > RDB_VERSION {
        return Err(RdbError::new((n - 10) as u64, ErrorKind::PayloadVersion(version)));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[n - 8..]);
    if crc64(0, &bytes[..n - 8]) != u64::from_le_bytes(stored) {
        return Err(RdbError::new((n - 8) as u64, ErrorKind::PayloadChecksum));
    }
    let mut src = Source::new(body);
    let ty = src.u8()?;
    let v = read_value(&mut src, ty)?.ok_or_else(|| src.err(ErrorKind::EmptyValue))?;
    if src.offset() != body.len() as u64 {
        return Err(src.err(ErrorKind::TrailingBytes));
    }
    Ok(v)
}
