//! Geo commands: GEOADD, GEOPOS, GEODIST, GEOHASH here; the searches (GEORADIUS,
//! GEORADIUSBYMEMBER, their _RO forms, GEOSEARCH, GEOSEARCHSTORE) in `search`.
//!
//! A geo set is a plain sorted set whose scores are 52-bit interleaved geohashes (the
//! arithmetic is `ferrokv_keyspace::geohash`), so persistence, replication and every Z*
//! command work on it unchanged. As in Redis 7.0, GEOADD runs as the ZADD it amounts to
//! and is propagated as that ZADD (`zadd key [options] score member …`, options as typed);
//! a search with STORE is propagated as received (its result is deterministic).

mod search;

pub use search::{georadius, georadius_ro, georadiusbymember, georadiusbymember_ro, geosearch, geosearchstore};

use crate::ctx::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_keyspace::geohash::{self, LAT_MAX, LAT_MIN, LON_MAX, LON_MIN};
use ferrokv_keyspace::types::zset::ZSet;
use ferrokv_keyspace::Value;
use ferrokv_resp::{Argv, ReplyBuf};

/// A float argument as Redis's `getDoubleFromObject` reads it (`strtod` over the whole
/// argument, no NaN, no overflow); `err` is the reply when it is not one.
fn float_or(a: &[u8], err: CmdError) -> Result<f64, CmdError> {
    super::zsets::score_arg(a, err)
}

/// A longitude and latitude pair starting at argument `at`, within the indexed limits.
fn lon_lat_arg(c: &Ctx, at: usize) -> Result<(f64, f64), CmdError> {
    let lon = float_or(c.arg(at), CmdError::NotFloat)?;
    let lat = float_or(c.arg(at + 1), CmdError::NotFloat)?;
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::msg(format!("ERR invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// Metres per unit, or Redis's error for an unknown unit.
fn unit_arg(a: &[u8]) -> Result<f64, CmdError> {
    geohash::unit_meters(a).ok_or(CmdError::err("ERR unsupported unit provided. please use M, KM, FT, MI"))
}

/// The sorted set at `key` for reading: None if missing, WRONGTYPE for other types.
fn geo_set<'c>(c: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c ZSet>, CmdError> {
    match c.eng.lookup_read(c.client.db, key, c.now) {
        None => Ok(None),
        Some(o) => match &o.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// A coordinate as Redis's `addReplyHumanLongDouble` sends it: a bulk string in RESP2, a
/// double in RESP3, both in the human long double text.
fn reply_coordinate(out: &mut ReplyBuf, d: f64) {
    let text = geohash::coordinate_text(d);
    if out.resp3() {
        out.raw(format!(",{text}\r\n").as_bytes());
    } else {
        out.bulk(text.as_bytes());
    }
}

fn reply_lon_lat(out: &mut ReplyBuf, [lon, lat]: [f64; 2]) {
    out.array(2);
    reply_coordinate(out, lon);
    reply_coordinate(out, lat);
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: the ZADD of the members'
/// geohash scores, run and propagated as that ZADD.
pub fn geoadd(c: &mut Ctx) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < c.argc() {
        let a = c.arg(first);
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        first += 1;
    }
    if !(c.argc() - first).is_multiple_of(3) || (xx && nx) {
        return Err(CmdError::Syntax);
    }
    let triplets = (c.argc() - first) / 3;
    let mut zadd: Vec<Vec<u8>> = Vec::with_capacity(first + 2 * triplets);
    zadd.push(b"zadd".to_vec());
    zadd.extend((1..first).map(|i| c.arg(i).to_vec()));
    let mut digits = itoa::Buffer::new();
    for t in 0..triplets {
        let at = first + 3 * t;
        let (lon, lat) = lon_lat_arg(c, at)?;
        let score = geohash::encode_score(lon, lat).expect("checked to be within the limits");
        zadd.push(digits.format(score).as_bytes().to_vec());
        zadd.push(c.arg(at + 2).to_vec());
    }
    let argv = Argv::from_slices(&zadd);
    {
        let mut inner = Ctx::new(&mut *c.eng, &mut *c.client, &argv, c.cmd, c.now);
        super::zsets::zadd(&mut inner)?;
    }
    c.rewrite_as(zadd);
    Ok(())
}

/// `GEOPOS key member [...]`: each member's cell centre, or a null array.
pub fn geopos(c: &mut Ctx) -> CmdResult {
    let scores = member_scores(c)?;
    let out = c.out();
    out.array(scores.len());
    for score in scores {
        match score {
            Some(s) => reply_lon_lat(out, geohash::decode_score(s)),
            None => out.null_array(),
        }
    }
    Ok(())
}

/// The scores of the members named from argument 2 on (None where absent).
fn member_scores(c: &mut Ctx) -> Result<Vec<Option<f64>>, CmdError> {
    let argv = c.argv;
    Ok(match geo_set(c, argv.get(1))? {
        Some(z) => (2..argv.len()).map(|i| z.score(argv.get(i))).collect(),
        None => vec![None; argv.len() - 2],
    })
}

/// `GEOHASH key member [...]`: each member's 11-character standard geohash, or null.
pub fn geohash(c: &mut Ctx) -> CmdResult {
    let scores = member_scores(c)?;
    let out = c.out();
    out.array(scores.len());
    for score in scores {
        match score {
            Some(s) => out.bulk(&geohash::geohash_string(s)),
            None => out.null(),
        }
    }
    Ok(())
}

/// `GEODIST key member1 member2 [unit]`: the distance with four decimals, or null.
pub fn geodist(c: &mut Ctx) -> CmdResult {
    let unit = match c.argc() {
        5 => unit_arg(c.arg(4))?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let (m1, m2) = (c.arg(2), c.arg(3));
    let scores = match geo_set(c, c.argv.get(1))? {
        None => None,
        Some(z) => z.score(m1).zip(z.score(m2)),
    };
    match scores {
        None => c.out().null(),
        Some((s1, s2)) => {
            let [lon1, lat1] = geohash::decode_score(s1);
            let [lon2, lat2] = geohash::decode_score(s2);
            let d = geohash::distance(lon1, lat1, lon2, lat2) / unit;
            c.out().bulk(geohash::distance_text(d).as_bytes());
        }
    }
    Ok(())
}
