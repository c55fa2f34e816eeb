use super::*;
use proptest::prelude::*;

/// Palermo, from Redis's documentation: its score, GEOPOS text and GEOHASH string.
#[test]
fn palermo_matches_redis() {
    let score = encode_score(13.361389, 38.115556).unwrap();
    assert_eq!(score, 3479099956230698);
    let [lon, lat] = decode_score(score as f64);
    assert_eq!(coordinate_text(lon), "13.36138933897018433");
    assert_eq!(coordinate_text(lat), "38.11555639549629859");
    assert_eq!(&geohash_string(score as f64), b"sqc8b49rny0");
    let catania = encode_score(15.087269, 37.502669).unwrap() as f64;
    let [lon2, lat2] = decode_score(catania);
    assert_eq!(distance_text(distance(lon, lat, lon2, lat2) / 1000.0), "166.2742");
}

#[test]
fn limits_are_refused_and_upper_edges_spill() {
    assert_eq!(encode_score(180.1, 0.0), None);
    assert_eq!(encode_score(0.0, 85.06), None);
    // The upper edge is offset 2^26: one bit above the 52 (Redis stores it so).
    let edge = encode_score(180.0, 0.0).unwrap();
    assert!(edge >= 1 << 52);
    assert_eq!(decode_score(edge as f64)[0], 180.0);
}

#[test]
fn text_formats() {
    assert_eq!(coordinate_text(-0.0), "0");
    assert_eq!(coordinate_text(1.5), "1.5");
    assert_eq!(coordinate_text(2.0), "2");
    assert_eq!(distance_text(0.0), "0.0000");
    assert_eq!(unit_meters(b"KM"), Some(1000.0));
    assert_eq!(unit_meters(b"yd"), None);
}

#[test]
fn c_conversion_wraps_like_x86() {
    assert_eq!(c_double_to_u64(-1.0), u64::MAX);
    assert_eq!(c_double_to_u64(1.5), 1);
    assert_eq!(c_double_to_u64(f64::INFINITY), 0);
    assert_eq!(c_double_to_u64(f64::NEG_INFINITY), 1 << 63);
    assert_eq!(c_double_to_u64(1e19), 10_000_000_000_000_000_000);
}

#[test]
fn step_estimate_frames_and_widens_near_poles() {
    assert_eq!(estimate_step(0.0, 0.0), 26);
    assert_eq!(estimate_step(1.0, 0.0), 24);
    assert_eq!(estimate_step(1.0, 70.0), 23);
    assert_eq!(estimate_step(1.0, -81.0), 22);
    assert_eq!(estimate_step(5000.0, 0.0), 11);
    assert_eq!(estimate_step(1e9, 0.0), 1);
}

#[test]
fn neighbours_wrap_around_the_world() {
    let cell = encode(LON_SPAN, LAT_SPAN, 179.9, 0.0, 4).unwrap();
    let east = decode(LON_SPAN, LAT_SPAN, neighbours(cell).east).unwrap();
    assert_eq!(east.lon.min, -180.0);
    let west_of_east = neighbours(neighbours(cell).east).west;
    assert_eq!(west_of_east, cell);
}

proptest! {
    #[test]
    fn spread_and_gather_are_inverse(v in any::<u32>()) {
        prop_assert_eq!(gather(spread(v)), v);
        prop_assert_eq!(gather(interleave(v, 0)), v);
        prop_assert_eq!(gather(interleave(0, v) >> 1), v);
    }

    /// Decoding a stored score gives a point within one cell of what was encoded.
    #[test]
    fn encode_decode_round_trip(lon in LON_MIN..LON_MAX, lat in LAT_MIN..LAT_MAX) {
        let score = encode_score(lon, lat).unwrap();
        prop_assert!(score < 1 << 52);
        let [dlon, dlat] = decode_score(score as f64);
        let cell_lon = 360.0 / (1u64 << STEP_MAX) as f64;
        let cell_lat = (LAT_MAX - LAT_MIN) / (1u64 << STEP_MAX) as f64;
        prop_assert!((dlon - lon).abs() <= cell_lon / 2.0 + 1e-12, "{} vs {}", dlon, lon);
        prop_assert!((dlat - lat).abs() <= cell_lat / 2.0 + 1e-12, "{} vs {}", dlat, lat);
        // The point re-encodes to the same score.
        prop_assert_eq!(encode_score(dlon, dlat), Some(score));
    }

    /// Every stored point within the radius lies in one of the cells a search scans
    /// (the brute-force answer equals the cell scan's), away from the poles, where
    /// Redis's fixed step widening is what decides.
    #[test]
    fn search_cells_cover_every_point_in_radius(
        clon in -180.0f64..180.0,
        clat in -85.0f64..85.0,
        radius_exp in 0.0f64..6.5,
        points in prop::collection::vec((-3.0f64..3.0, -3.0f64..3.0), 1..60),
    ) {
        let radius = 10f64.powf(radius_exp);
        let shape = Shape { lon: clon, lat: clat, extent: Extent::Radius(radius), unit: 1.0 };
        let cells = shape.search_cells();
        let spread_deg = (radius / 111_000.0).clamp(0.0001, 60.0);
        for (dx, dy) in points {
            let lon = (clon + dx * spread_deg / 3.0).clamp(LON_MIN, LON_MAX);
            let lat = (clat + dy * spread_deg / 3.0).clamp(LAT_MIN, LAT_MAX);
            let score = encode_score(lon, lat).unwrap();
            let [plon, plat] = decode_score(score as f64);
            // Points on the upper edges spill past 52 bits; no search finds them in Redis.
            if score >= 1 << 52 || shape.contains(plon, plat).is_none() {
                continue;
            }
            let covered = cells.iter().any(|c| {
                let (min, max) = c.score_range();
                !c.is_zero() && min <= score && score < max
            });
            prop_assert!(covered, "point {},{} (score {}) missed; cells {:?}", plon, plat, score, cells);
        }
    }

    /// The same for boxes.
    #[test]
    fn search_cells_cover_every_point_in_box(
        clon in -180.0f64..180.0,
        clat in -70.0f64..70.0,
        w_exp in 0.0f64..6.0,
        h_exp in 0.0f64..6.0,
        points in prop::collection::vec((-3.0f64..3.0, -3.0f64..3.0), 1..60),
    ) {
        let (width, height) = (10f64.powf(w_exp), 10f64.powf(h_exp));
        let shape = Shape { lon: clon, lat: clat, extent: Extent::Box { width, height }, unit: 1.0 };
        let cells = shape.search_cells();
        let spread_deg = (width.max(height) / 111_000.0).clamp(0.0001, 60.0);
        for (dx, dy) in points {
            let lon = (clon + dx * spread_deg / 3.0).clamp(LON_MIN, LON_MAX);
            let lat = (clat + dy * spread_deg / 3.0).clamp(LAT_MIN, LAT_MAX);
            let score = encode_score(lon, lat).unwrap();
            let [plon, plat] = decode_score(score as f64);
            // Points on the upper edges spill past 52 bits; no search finds them in Redis.
            if score >= 1 << 52 || shape.contains(plon, plat).is_none() {
                continue;
            }
            let covered = cells.iter().any(|c| {
                let (min, max) = c.score_range();
                !c.is_zero() && min <= score && score < max
            });
            prop_assert!(covered, "point {},{} (score {}) missed; cells {:?}", plon, plat, score, cells);
        }
    }
}
