//! Redis's geo arithmetic (no I/O): the 52-bit interleaved geohash that GEOADD stores as a
//! sorted-set score, decoding a score back to a cell centre, the standard base-32 geohash
//! string GEOHASH prints, cell neighbours, the step estimate and the nine cells a radius or
//! box search scans, and the haversine distance.
//!
//! Everything here reproduces Redis 7.0's floating-point steps in the same order (the
//! coordinates GEOPOS prints and the members a search finds must be Redis's to the bit),
//! including its quirks: a coordinate on the upper edge of the range encodes one past the
//! last cell, neighbour moves wrap around the world, a score that is not an integer below
//! 2^64 is converted the way x86-64 converts a double to `uint64_t`, and the step estimate
//! only widens near the poles by fixed latitude thresholds.

/// The longitude range (degrees).
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
/// The latitude range of Web Mercator (EPSG:3857), the range Redis indexes.
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate: 26 + 26 interleaved = the 52 bits a double holds exactly.
pub const STEP_MAX: u8 = 26;
/// The quadratic mean radius of WGS-84, Redis's Earth radius.
pub const EARTH_RADIUS_METERS: f64 = 6372797.560856;
/// Half the Earth's circumference in Web Mercator metres; bounds the step estimate.
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians, as one constant factor (Redis multiplies by `M_PI / 180.0`).
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A closed interval of one coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub min: f64,
    pub max: f64,
}

/// The indexed ranges: longitude ±180, latitude ±85.05112878.
pub const LON_SPAN: Span = Span { min: LON_MIN, max: LON_MAX };
pub const LAT_SPAN: Span = Span { min: LAT_MIN, max: LAT_MAX };
/// The standard geohash's latitude range, used only for GEOHASH strings.
const LAT_SPAN_STANDARD: Span = Span { min: -90.0, max: 90.0 };

/// A geohash cell: `step` bits of latitude in the even bit positions and `step` bits of
/// longitude in the odd ones. A zero cell (`bits == 0 && step == 0`) means "no cell".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The scores `[min, max)` of the points inside this cell, as 52-bit scores.
    pub fn score_range(&self) -> (u64, u64) {
        let shift = 52 - 2 * u32::from(self.step);
        (self.bits << shift, (self.bits + 1) << shift)
    }
}

/// A cell's extent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub lon: Span,
    pub lat: Span,
}

/// Spreads the 32 bits of `v` into the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `x` into a u32 (the inverse of [`spread`]).
fn gather(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// Latitude in the even bits, longitude in the odd ones.
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// The cell of `step` bits per coordinate holding (lon, lat) within the given ranges, or
/// None outside the indexed limits or the ranges. A coordinate equal to its range's
/// maximum gives the offset `2^step`, which spills one bit past the cell's width (Redis
/// does the same; such scores decode to the clamped edge).
pub fn encode(lon_span: Span, lat_span: Span, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_span.min || lat > lat_span.max || lon < lon_span.min || lon > lon_span.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_span.min) / (lat_span.max - lat_span.min) * scale;
    let lon_offset = (lon - lon_span.min) / (lon_span.max - lon_span.min) * scale;
    Some(Cell { bits: interleave(lat_offset as u32, lon_offset as u32), step })
}

/// The extent of `cell` within the given ranges (None for the zero cell).
pub fn decode(lon_span: Span, lat_span: Span, cell: Cell) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let lat_cell = gather(cell.bits);
    let lon_cell = gather(cell.bits >> 1);
    let cells = (1u64 << cell.step) as f64;
    let (lat_scale, lon_scale) = (lat_span.max - lat_span.min, lon_span.max - lon_span.min);
    let edge = |i: u32, base: f64, scale: f64| base + (f64::from(i) / cells) * scale;
    Some(Area {
        lat: Span {
            min: edge(lat_cell, lat_span.min, lat_scale),
            max: edge(lat_cell.wrapping_add(1), lat_span.min, lat_scale),
        },
        lon: Span {
            min: edge(lon_cell, lon_span.min, lon_scale),
            max: edge(lon_cell.wrapping_add(1), lon_span.min, lon_scale),
        },
    })
}

/// The centre of `area`, clamped to the indexed limits: `[lon, lat]`.
fn centre(area: &Area) -> [f64; 2] {
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// The score GEOADD stores for (lon, lat): the 26-step cell, aligned to 52 bits. None
/// outside the indexed limits.
pub fn encode_score(lon: f64, lat: f64) -> Option<u64> {
    let cell = encode(LON_SPAN, LAT_SPAN, lon, lat, STEP_MAX)?;
    Some(cell.bits)
}

/// C's `(uint64_t)d` as x86-64 compilers emit it: truncation below 2^63 through a signed
/// conversion (negative values wrap, out-of-range ones give 2^63), and above it a signed
/// conversion of `d - 2^63` with the top bit flipped. Redis decodes any score this way,
/// including scores set by ZADD.
pub fn c_double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let signed = |x: f64| -> u64 {
        if !(-TWO_63..TWO_63).contains(&x) {
            1u64 << 63
        } else {
            x as i64 as u64
        }
    };
    if d >= TWO_63 {
        signed(d - TWO_63) ^ (1u64 << 63)
    } else {
        signed(d)
    }
}

/// The cell centre a sorted-set score stands for: `[lon, lat]`.
pub fn decode_score(score: f64) -> [f64; 2] {
    let cell = Cell { bits: c_double_to_u64(score), step: STEP_MAX };
    match decode(LON_SPAN, LAT_SPAN, cell) {
        Some(area) => centre(&area),
        None => [0.0, 0.0],
    }
}

/// The 11-character standard geohash of a score: the decoded point re-encoded over the
/// standard latitude range ±90. Only 52 bits exist, so the last character is always `0`.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = decode_score(score);
    let bits = encode(LON_SPAN, LAT_SPAN_STANDARD, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, ch) in out.iter_mut().enumerate().take(10) {
        let index = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *ch = ALPHABET[index as usize];
    }
    out
}

/// Moves a cell `d` columns east (d = +1) or west (d = -1), wrapping around.
fn move_lon(cell: &mut Cell, d: i8) {
    let width = 64 - 2 * u32::from(cell.step);
    let lon = cell.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let lat = cell.bits & 0x5555_5555_5555_5555;
    // Filling the latitude positions below the width with ones makes the carry (or borrow)
    // run through them to the next longitude bit.
    let fill = 0x5555_5555_5555_5555u64 >> width;
    let moved = if d > 0 { lon.wrapping_add(fill + 1) } else { (lon | fill).wrapping_sub(fill + 1) };
    cell.bits = (moved & (0xAAAA_AAAA_AAAA_AAAAu64 >> width)) | lat;
}

/// Moves a cell `d` rows north (d = +1) or south (d = -1), wrapping around.
fn move_lat(cell: &mut Cell, d: i8) {
    let width = 64 - 2 * u32::from(cell.step);
    let lon = cell.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let lat = cell.bits & 0x5555_5555_5555_5555;
    let fill = 0xAAAA_AAAA_AAAA_AAAAu64 >> width;
    let moved = if d > 0 { lat.wrapping_add(fill + 1) } else { (lat | fill).wrapping_sub(fill + 1) };
    cell.bits = lon | (moved & (0x5555_5555_5555_5555u64 >> width));
}

/// The eight neighbours of a cell, keyed by compass direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbours {
    pub north: Cell,
    pub south: Cell,
    pub east: Cell,
    pub west: Cell,
    pub north_east: Cell,
    pub north_west: Cell,
    pub south_east: Cell,
    pub south_west: Cell,
}

pub fn neighbours(cell: Cell) -> Neighbours {
    let at = |dx: i8, dy: i8| {
        let mut c = cell;
        if dx != 0 {
            move_lon(&mut c, dx);
        }
        if dy != 0 {
            move_lat(&mut c, dy);
        }
        c
    };
    Neighbours {
        north: at(0, 1),
        south: at(0, -1),
        east: at(1, 0),
        west: at(-1, 0),
        north_east: at(1, 1),
        north_west: at(-1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// The cell size (step) for a search of `range_meters` around latitude `lat`: the finest
/// step whose cells are still about twice the range, one or two steps coarser above 66°
/// and 80° latitude, framed to 1..=26.
pub fn estimate_step(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

fn deg_rad(deg: f64) -> f64 {
    deg * D_R
}

fn rad_deg(rad: f64) -> f64 {
    rad / D_R
}

/// The north-south distance between two latitudes, in metres.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The haversine great-circle distance in metres. Points on the same meridian take the
/// exact north-south formula (Redis's shortcut, which gives slightly different bits).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_METERS * a.sqrt().asin()
}

/// What a search covers around its centre. Sizes are in the search's unit; `unit` is the
/// metres per unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub extent: Extent,
    pub unit: f64,
}

impl Shape {
    /// The distance from the centre in metres if (lon, lat) lies inside the shape. A box is
    /// measured along the point's parallel and along the centre's meridian.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.extent {
            Extent::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.unit).then_some(d)
            }
            Extent::Box { width, height } => {
                let (w, h) = (width * self.unit, height * self.unit);
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` around the shape: the latitude span from the
    /// north-south size, the longitude span from the east-west size measured at the edge
    /// nearer the pole.
    fn bounding_box(&self) -> [f64; 4] {
        let (half_h, half_w) = match self.extent {
            Extent::Radius(r) => (self.unit * r, self.unit * r),
            Extent::Box { width, height } => (self.unit * height / 2.0, self.unit * width / 2.0),
        };
        let lat_delta = rad_deg(half_h / EARTH_RADIUS_METERS);
        let lon_delta_top = rad_deg(half_w / EARTH_RADIUS_METERS / deg_rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(half_w / EARTH_RADIUS_METERS / deg_rad(self.lat - lat_delta).cos());
        let lon_delta = if self.lat < 0.0 { lon_delta_bottom } else { lon_delta_top };
        [self.lon - lon_delta, self.lat - lat_delta, self.lon + lon_delta, self.lat + lat_delta]
    }

    /// The radius of a circle around the centre that covers the shape, in metres.
    fn covering_radius(&self) -> f64 {
        let r = match self.extent {
            Extent::Radius(r) => r,
            Extent::Box { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
        };
        r * self.unit
    }

    /// The cells to scan, in Redis's order: the centre's cell, then north, south, east,
    /// west, north-east, north-west, south-east, south-west. Cells the shape cannot reach
    /// are zero (skipped). The step comes from [`estimate_step`], made one coarser when a
    /// neighbour does not reach the bounding box's edge.
    pub fn search_cells(&self) -> [Cell; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let mut step = estimate_step(self.covering_radius(), self.lat);
        let at_step = |step: u8| {
            let cell = encode(LON_SPAN, LAT_SPAN, self.lon, self.lat, step).unwrap_or(Cell { bits: 0, step });
            (cell, neighbours(cell))
        };
        let (mut cell, mut around) = at_step(step);
        let area_of = |c: Cell| decode(LON_SPAN, LAT_SPAN, c);
        let too_small = match (area_of(around.north), area_of(around.south), area_of(around.east), area_of(around.west))
        {
            (Some(n), Some(s), Some(e), Some(w)) => {
                n.lat.max < max_lat || s.lat.min > min_lat || e.lon.max < max_lon || w.lon.min > min_lon
            }
            _ => false,
        };
        if step > 1 && too_small {
            step -= 1;
            (cell, around) = at_step(step);
        }
        if step >= 2 {
            if let Some(area) = area_of(cell) {
                let zero = Cell::default();
                if area.lat.min < min_lat {
                    (around.south, around.south_west, around.south_east) = (zero, zero, zero);
                }
                if area.lat.max > max_lat {
                    (around.north, around.north_east, around.north_west) = (zero, zero, zero);
                }
                if area.lon.min < min_lon {
                    (around.west, around.south_west, around.north_west) = (zero, zero, zero);
                }
                if area.lon.max > max_lon {
                    (around.east, around.south_east, around.north_east) = (zero, zero, zero);
                }
            }
        }
        [
            cell,
            around.north,
            around.south,
            around.east,
            around.west,
            around.north_east,
            around.north_west,
            around.south_east,
            around.south_west,
        ]
    }
}

/// Metres per unit for GEODIST and the searches (`m`, `km`, `ft`, `mi`, any case).
pub fn unit_meters(unit: &[u8]) -> Option<f64> {
    match unit.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// Redis's "human" long double text for a coordinate: `%.17Lf` of the (exact) double,
/// trailing zeros and a trailing dot removed, `-0` as `0`.
pub fn coordinate_text(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A distance as Redis replies it: four decimals.
pub fn distance_text(d: f64) -> String {
    format!("{d:.4}")
}

#[cfg(test)]
mod tests;
