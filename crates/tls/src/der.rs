//! Just enough DER to read a certificate's validity period (RFC 5280 §4.1): rustls does not
//! look at the server's own certificate dates, and a full X.509 parser is more than this
//! one check needs.

/// One TLV: its tag and contents, and what follows it.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated")?;
    let (&first, rest) = rest.split_first().ok_or("truncated")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length");
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION_TAG: u8 = 0xa0;

/// (notBefore, notAfter) as unix seconds.
pub(crate) fn validity(cert: &[u8]) -> Result<(i64, i64), &'static str> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return Err("not a sequence");
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return Err("no tbsCertificate");
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION_TAG {
        rest = after;
    }
    // serialNumber, signature, issuer, then validity.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return Err("no validity");
    }
    let (tag_before, before, rest) = tlv(validity)?;
    let (tag_after, after, _) = tlv(rest)?;
    Ok((time(tag_before, before)?, time(tag_after, after)?))
}

fn digits(s: &[u8]) -> Result<i64, &'static str> {
    s.iter().try_fold(
        0i64,
        |acc, &c| {
            if c.is_ascii_digit() {
                Ok(acc * 10 + (c - b'0') as i64)
            } else {
                Err("bad time")
            }
        },
    )
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(tag: u8, s: &[u8]) -> Result<i64, &'static str> {
    let (year, rest) = match tag {
        UTC_TIME if s.len() == 13 => {
            let yy = digits(&s[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 15 => (digits(&s[..4])?, &s[4..]),
        _ => return Err("bad time"),
    };
    if rest[10] != b'Z' {
        return Err("bad time");
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, m, sec) = (digits(&rest[4..6])?, digits(&rest[6..8])?, digits(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err("bad time");
    }
    Ok(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for error messages.
pub(crate) fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    // Inverse of days_from_civil.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951868800 + 3661), "2000-03-01 01:01:01 UTC");
    }

    #[test]
    fn times() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Ok(days_from_civil(2049, 12, 31) * 86400 + 86399));
        assert_eq!(time(GENERALIZED_TIME, b"20500101000000Z"), Ok(days_from_civil(2050, 1, 1) * 86400));
        assert!(time(UTC_TIME, b"7001010000Z").is_err());
        assert!(time(UTC_TIME, b"701301000000Z").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\x30", b"\x30\x85\xff\xff\xff\xff\xff", b"\x30\x02\x30\x00", b"\x02\x01\x00"] {
            assert!(validity(bad).is_err());
        }
    }
}
