//! DEBUG DIGEST: an order-independent SHA1 digest of the dataset, computed exactly as
//! Redis computes it, so two nodes — ferrokv or Redis — holding the same data report the
//! same digest. Replication tests compare masters and replicas with it.
//!
//! Per key: mix(key), mix(type as u32 big-endian), the value (strings: mix the bytes;
//! lists: mix each element; sets: xor each member; hashes and sorted sets: xor each
//! SHA1 of each element's digest mix(field/member), mix(value/score as %.17g)), then
//! xor "!!expire!!" if the key has a TTL; the key digests are xored together per db, each
//! db's id mixed in first. `mix(d, x)` is `d = SHA1(d xor SHA1(x))`; xor is `d ^= SHA1(x)`.

use ferrokv_keyspace::types::stream::StreamId;
use ferrokv_keyspace::{Db, Obj, Value};
use sha1::{Digest, Sha1};

pub type Digest20 = [u8; 20];

fn xor_digest(d: &mut Digest20, data: &[u8]) {
    let h = Sha1::digest(data);
    for (a, b) in d.iter_mut().zip(h.iter()) {
        *a ^= b;
    }
}

fn mix_digest(d: &mut Digest20, data: &[u8]) {
    xor_digest(d, data);
    let h = Sha1::digest(&d[..]);
    d.copy_from_slice(&h);
}

/// Redis's object type numbers.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) | Value::Int(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// An element digest `SHA1(mix(a), mix(b)…)` starting from zero.
fn element_digest(parts: &[&[u8]]) -> Digest20 {
    let mut e = [0u8; 20];
    for p in parts {
        mix_digest(&mut e, p);
    }
    e
}

/// The digest of one key's value (DEBUG DIGEST-VALUE), mixed into `d`.
pub fn object_digest(d: &mut Digest20, obj: &Obj, has_expire: bool) {
    mix_digest(d, &type_code(&obj.value).to_be_bytes());
    match &obj.value {
        Value::Str(s) => mix_digest(d, s),
        Value::Int(n) => mix_digest(d, itoa::Buffer::new().format(*n).as_bytes()),
        // Lists keep their order: each element is mixed in turn.
        Value::List(l) => l.items.iter().for_each(|e| mix_digest(d, e)),
        // Sets, hashes and sorted sets are unordered: element digests are xored.
        Value::Set(s) => s.for_each(|m| xor_digest(d, m)),
        Value::Hash(h) => h.for_each(|f, v| xor_digest(d, &element_digest(&[f, v]))),
        // Redis prints the score with "%.17g" (even for listpacks, which store it as text).
        Value::ZSet(z) => z.iter().for_each(|(m, s)| {
            let score = ferrokv_resp::num::fmt_double(s);
            xor_digest(d, &element_digest(&[m, score.as_bytes()]))
        }),
        // Entries in order, the ID as `<ms>.<seq>`; groups are not part of it (as Redis).
        Value::Stream(st) => {
            for e in st.range(StreamId::MIN, StreamId::MAX) {
                mix_digest(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (f, v) in e.fields {
                    mix_digest(d, f);
                    mix_digest(d, v);
                }
            }
        }
    }
    if has_expire {
        xor_digest(d, b"!!expire!!");
    }
}

/// The digest of all databases (all zeros when empty).
pub fn dataset_digest(dbs: &[Db]) -> Digest20 {
    let mut fin = [0u8; 20];
    for (id, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        mix_digest(&mut fin, &(id as u32).to_be_bytes());
        // Logically expired keys still count, as in Redis.
        for (key, obj) in db.iter(i64::MIN) {
            let mut d = [0u8; 20];
            mix_digest(&mut d, key);
            object_digest(&mut d, obj, db.expire_at(key).is_some());
            xor_digest(&mut fin, &d);
        }
    }
    fin
}

pub fn hex(d: &Digest20) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
