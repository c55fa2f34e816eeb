//! The geo searches: GEORADIUS, GEORADIUSBYMEMBER, their _RO forms, GEOSEARCH and
//! GEOSEARCHSTORE, one generic path as in Redis 7.0 (its argument order decides which
//! error a client sees, so parsing follows it check by check).
//!
//! A search scans at most nine geohash cells (the centre's and its neighbours, at a step
//! estimated from the radius; see `geohash::Shape::search_cells`), each as one score range
//! of the sorted set, so it costs O(log n + m) for m points in those cells. Points in the
//! cells are then filtered by the exact shape test.

use super::{float_or, geo_set, lon_lat_arg, reply_lon_lat, unit_arg};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::geohash::{self, Extent, Shape};
use ferrokv_keyspace::types::zset::{ScoreRange, ZSet};
use ferrokv_keyspace::Value;

/// Which command runs the search (Redis's flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS[_RO]: centre and radius at fixed positions.
    Coords { store_allowed: bool },
    /// GEORADIUSBYMEMBER[_RO]: a member and radius at fixed positions.
    Member { store_allowed: bool },
    /// GEOSEARCH / GEOSEARCHSTORE: FROM… and BY… options.
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    Asc,
    Desc,
}

/// One point found: member, score, distance from the centre (metres until the reply
/// converts it) and its decoded position.
struct Found {
    member: Vec<u8>,
    score: f64,
    dist: f64,
    lon_lat: [f64; 2],
}

pub fn georadius(c: &mut Ctx) -> CmdResult {
    search(c, 1, Form::Coords { store_allowed: true })
}

pub fn georadius_ro(c: &mut Ctx) -> CmdResult {
    search(c, 1, Form::Coords { store_allowed: false })
}

pub fn georadiusbymember(c: &mut Ctx) -> CmdResult {
    search(c, 1, Form::Member { store_allowed: true })
}

pub fn georadiusbymember_ro(c: &mut Ctx) -> CmdResult {
    search(c, 1, Form::Member { store_allowed: false })
}

pub fn geosearch(c: &mut Ctx) -> CmdResult {
    search(c, 1, Form::Search { store: false })
}

pub fn geosearchstore(c: &mut Ctx) -> CmdResult {
    search(c, 2, Form::Search { store: true })
}

/// A radius and its unit at `at`: (radius, metres per unit).
fn radius_arg(c: &Ctx, at: usize) -> Result<(f64, f64), CmdError> {
    let r = float_or(c.arg(at), CmdError::err("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::err("ERR radius cannot be negative"));
    }
    Ok((r, unit_arg(c.arg(at + 1))?))
}

/// A box's width, height and unit at `at`: (width, height, metres per unit).
fn box_arg(c: &Ctx, at: usize) -> Result<(f64, f64, f64), CmdError> {
    let w = float_or(c.arg(at), CmdError::err("ERR need numeric width"))?;
    let h = float_or(c.arg(at + 1), CmdError::err("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::err("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit_arg(c.arg(at + 2))?))
}

/// The source set again, after the counted lookup (no second hit/miss, no LRU touch).
fn source<'c>(c: &'c Ctx, key: &[u8]) -> Option<&'c ZSet> {
    match &c.eng.dbs[c.client.db].peek(key, c.now)?.value {
        Value::ZSet(z) => Some(z),
        _ => None,
    }
}

/// The position of `member` in the source set.
fn member_position(c: &Ctx, key: &[u8], member: &[u8]) -> Result<[f64; 2], CmdError> {
    source(c, key)
        .and_then(|z| z.score(member))
        .map(geohash::decode_score)
        .ok_or(CmdError::err("ERR could not decode requested zset member"))
}

fn search(c: &mut Ctx, src_index: usize, form: Form) -> CmdResult {
    let argv = c.argv;
    let src = argv.get(src_index);
    let exists = geo_set(c, src)?.is_some();

    let mut centre: Option<[f64; 2]> = None;
    let mut extent: Option<Extent> = None;
    let mut unit = 1.0;
    let mut store_key: Option<&[u8]> = None;
    let base = match form {
        Form::Coords { .. } => {
            let (lon, lat) = lon_lat_arg(c, 2)?;
            centre = Some([lon, lat]);
            let (r, u) = radius_arg(c, 4)?;
            (extent, unit) = (Some(Extent::Radius(r)), u);
            6
        }
        Form::Member { .. } => {
            // A missing source still parses the options, to pick the right empty reply.
            if exists {
                centre = Some(member_position(c, src, argv.get(2))?);
                let (r, u) = radius_arg(c, 3)?;
                (extent, unit) = (Some(Extent::Radius(r)), u);
            }
            5
        }
        Form::Search { store } => {
            if store {
                store_key = Some(argv.get(1));
                3
            } else {
                2
            }
        }
    };
    let is_search = matches!(form, Form::Search { .. });
    let store_option = matches!(form, Form::Coords { store_allowed: true } | Form::Member { store_allowed: true });

    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut store_dist = false;
    let mut order = Order::Unsorted;
    let mut count: i64 = 0;
    let remaining = argv.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let at = base + i;
        let a = argv.get(at);
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            order = Order::Asc;
        } else if is(a, "desc") {
            order = Order::Desc;
        } else if is(a, "count") && i + 1 < remaining {
            count = int_arg(argv.get(at + 1))?;
            if count <= 0 {
                return Err(CmdError::err("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && i + 1 < remaining && store_option {
            store_key = Some(argv.get(at + 1));
            store_dist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && form == (Form::Search { store: true }) {
            store_dist = true;
        } else if is(a, "frommember") && i + 1 < remaining && is_search && !fromloc {
            if exists {
                centre = Some(member_position(c, src, argv.get(at + 1))?);
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && i + 2 < remaining && is_search && !frommember {
            let (lon, lat) = lon_lat_arg(c, at + 1)?;
            centre = Some([lon, lat]);
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && i + 2 < remaining && is_search && !bybox {
            let (r, u) = radius_arg(c, at + 1)?;
            (extent, unit) = (Some(Extent::Radius(r)), u);
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && i + 3 < remaining && is_search && !byradius {
            let (w, h, u) = box_arg(c, at + 1)?;
            (extent, unit) = (Some(Extent::Box { width: w, height: h }), u);
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }

    if store_key.is_some() && (withdist || withhash || withcoord) {
        let what = if form == (Form::Search { store: true }) { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(CmdError::msg(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if is_search && !(frommember || fromloc) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            String::from_utf8_lossy(argv.get(0))
        )));
    }
    if is_search && !(byradius || bybox) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            String::from_utf8_lossy(argv.get(0))
        )));
    }
    if any && count == 0 {
        return Err(CmdError::err("ERR the ANY argument requires COUNT argument"));
    }

    let (Some([lon, lat]), Some(extent), true) = (centre, extent, exists) else {
        // No source set: an empty result (a STORE deletes its destination).
        match store_key {
            Some(dst) => {
                let db = c.client.db;
                if c.eng.dbs[db].remove(dst).is_some() {
                    c.modified(dst);
                    c.notify(notify::GENERIC, "del", dst);
                }
                c.out().int(0);
            }
            None => c.out().array(0),
        }
        return Ok(());
    };
    if count != 0 && order == Order::Unsorted && !any {
        order = Order::Asc;
    }

    let shape = Shape { lon, lat, extent, unit };
    let limit = if any { count as usize } else { 0 };
    let mut found = match source(c, src) {
        Some(z) => points_within(z, &shape, limit),
        None => Vec::new(),
    };
    if found.is_empty() && store_key.is_none() {
        c.out().array(0);
        return Ok(());
    }
    match order {
        Order::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Order::Unsorted => {}
    }
    if count > 0 {
        found.truncate(count as usize);
    }
    for f in &mut found {
        f.dist /= unit;
    }

    if let Some(dst) = store_key {
        let event = if is_search { "geosearchstore" } else { "georadiusstore" };
        let entries = found.into_iter().map(|f| (f.member, if store_dist { f.dist } else { f.score })).collect();
        return super::super::zsets::store_result(c, dst, entries, event);
    }
    let extras = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
    let out = c.out();
    out.array(found.len());
    for f in &found {
        if extras > 0 {
            out.array(extras + 1);
        }
        out.bulk(&f.member);
        if withdist {
            out.bulk(geohash::distance_text(f.dist).as_bytes());
        }
        if withhash {
            out.int(f.score as i64);
        }
        if withcoord {
            reply_lon_lat(out, f.lon_lat);
        }
    }
    Ok(())
}

/// The points of `z` inside `shape`, cell by cell in Redis's order (which is the order
/// of an unsorted reply). A cell equal to the one scanned just before is skipped (huge
/// radii make neighbours coincide). With `limit` (ANY) the scan stops at that many.
fn points_within(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Found> {
    let cells = shape.search_cells();
    let mut found = Vec::new();
    let mut last_scanned = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // Redis compares with the previous scanned cell only once one past the centre
        // was scanned (its index 0 doubles as "none yet").
        if last_scanned != 0 && *cell == cells[last_scanned] {
            continue;
        }
        if limit != 0 && found.len() >= limit {
            break;
        }
        let (min, max) = cell.score_range();
        let range = ScoreRange { min: min as f64, max: max as f64, minex: false, maxex: true };
        if let Some(first) = z.first_in_range(&range) {
            for (member, score) in z.iter_from(first, false) {
                if score >= range.max {
                    break;
                }
                let lon_lat = geohash::decode_score(score);
                if let Some(dist) = shape.contains(lon_lat[0], lon_lat[1]) {
                    found.push(Found { member: member.to_vec(), score, dist, lon_lat });
                    if limit != 0 && found.len() >= limit {
                        break;
                    }
                }
            }
        }
        last_scanned = i;
    }
    found
}
