//! Directive values: parsing from config-file/CONFIG SET arguments, the CONFIG GET
//! rendering, and the line(s) CONFIG REWRITE writes — each with Redis's exact rules and
//! error texts.

use crate::table::{Kind, MEMORY, OCTAL, PERCENT};

/// Output buffer limits of one client class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Client classes with output buffer limits, in Redis's order.
pub const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Bool(bool),
    Num(i64),
    Enum(i64),
    Flags(i64),
    Str(String),
    Save(Vec<(i64, i64)>),
    Obuf([ObufLimit; 3]),
    Oom([i64; 3]),
    Notify(u32),
    Bind(Vec<String>),
    ReplicaOf(Option<(String, u16)>),
    Percentiles(Vec<f64>),
}

/// Keyspace notification classes (`notify-keyspace-events`).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class except key-miss and new.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    pub fn parse(s: &str) -> Option<u32> {
        let mut flags = 0;
        for c in s.chars() {
            flags |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(flags)
    }

    pub fn format(flags: u32) -> String {
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
                (NEW, 'n'),
            ] {
                if flags & bit != 0 {
                    s.push(c);
                }
            }
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
        s
    }
}

/// Redis's `memtoull`: digits with an optional unit (`b k kb m mb g gb`, any case);
/// `k` is 1000 and `kb` 1024.
pub fn parse_memory(s: &str) -> Option<u64> {
    let digits_end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.is_empty() {
        // strtoull of "" gives 0 in Redis, which accepts e.g. "kb" as 0. Keep that.
        return Some(0);
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// The largest exact unit, as CONFIG REWRITE writes memory values.
pub fn format_memory(bytes: i64) -> String {
    const GB: i64 = 1 << 30;
    const MB: i64 = 1 << 20;
    const KB: i64 = 1 << 10;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

fn parse_int_strict(s: &str) -> Option<i64> {
    ferrokv_resp::parse_i64(s.as_bytes())
}

fn enum_names(table: &[(&str, i64)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn parse_save(args: &[&str]) -> Result<Val, String> {
    let args: &[&str] = if args.len() == 1 && args[0].is_empty() { &[] } else { args };
    if args.len() % 2 == 1 {
        return Err("Invalid save parameters".into());
    }
    let mut points = Vec::new();
    for pair in args.chunks(2) {
        let secs = pair[0].parse::<i64>().ok().filter(|&v| v >= 1);
        let changes = pair[1].parse::<i64>().ok().filter(|&v| v >= 0);
        match (secs, changes) {
            (Some(s), Some(c)) => points.push((s, c)),
            _ => return Err("Invalid save parameters".into()),
        }
    }
    Ok(Val::Save(points))
}

fn parse_obuf(args: &[&str], current: Option<&Val>) -> Result<Val, String> {
    if args.is_empty() || !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits = match current {
        Some(Val::Obuf(l)) => *l,
        _ => default_obuf(),
    };
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = parse_memory(group[1]);
        let soft = parse_memory(group[2]);
        let secs = group[3].parse::<u64>().ok();
        match (hard, soft, secs) {
            (Some(hard), Some(soft), Some(soft_seconds)) => limits[class] = ObufLimit { hard, soft, soft_seconds },
            _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
        }
    }
    Ok(Val::Obuf(limits))
}

fn default_obuf() -> [ObufLimit; 3] {
    [
        ObufLimit::default(),
        ObufLimit { hard: 256 << 20, soft: 64 << 20, soft_seconds: 60 },
        ObufLimit { hard: 32 << 20, soft: 8 << 20, soft_seconds: 60 },
    ]
}

/// Parses `args` for a directive of kind `kind`. `current` is the present value (some
/// directives update only the parts named, like `client-output-buffer-limit`).
pub fn parse(kind: Kind, args: &[&str], current: Option<&Val>) -> Result<Val, String> {
    let single = || -> Result<&str, String> {
        match args {
            [one] => Ok(*one),
            _ => Err("wrong number of arguments".into()),
        }
    };
    match kind {
        Kind::Bool => match single()?.to_ascii_lowercase().as_str() {
            "yes" => Ok(Val::Bool(true)),
            "no" => Ok(Val::Bool(false)),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Num { min, max, fmt } => {
            let s = single()?;
            let mut v = None;
            if fmt & MEMORY != 0 {
                v = parse_memory(s).and_then(|m| i64::try_from(m).ok());
            }
            if v.is_none() && fmt & PERCENT != 0 {
                if let Some(p) = s.strip_suffix('%').and_then(parse_int_strict).filter(|&p| p >= 0) {
                    v = Some(-p);
                }
            }
            if v.is_none() && fmt == 0 {
                v = parse_int_strict(s);
            }
            if v.is_none() && fmt & OCTAL != 0 {
                v = i64::from_str_radix(s, 8).ok();
            }
            let Some(v) = v else {
                return Err(if fmt & MEMORY != 0 && fmt & PERCENT != 0 {
                    "argument must be a memory or percent value"
                } else if fmt & MEMORY != 0 {
                    "argument must be a memory value"
                } else if fmt & OCTAL != 0 {
                    "argument couldn't be parsed as an octal number"
                } else {
                    "argument couldn't be parsed into an integer"
                }
                .into());
            };
            // Percentages are stored negative and bounded separately by Redis.
            if (fmt & PERCENT == 0 || v >= 0) && (v < min || v > max) {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(Val::Num(v))
        }
        Kind::Enum(table) => {
            let s = single()?;
            table
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(s))
                .map(|&(_, v)| Val::Enum(v))
                .ok_or_else(|| format!("argument(s) must be one of the following: {}", enum_names(table)))
        }
        Kind::Flags(table) => {
            if args.is_empty() {
                return Err("wrong number of arguments".into());
            }
            let mut v = 0;
            for a in args {
                match table.iter().find(|(n, _)| n.eq_ignore_ascii_case(a)) {
                    Some(&(_, bit)) => v |= bit,
                    None => return Err(format!("argument(s) must be one of the following: {}", enum_names(table))),
                }
            }
            Ok(Val::Flags(v))
        }
        Kind::Str { .. } | Kind::Dir => Ok(Val::Str(single()?.to_string())),
        Kind::Save => parse_save(args),
        Kind::ClientOutputBufferLimit => parse_obuf(args, current),
        Kind::OomScoreAdjValues => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut v = [0i64; 3];
            for (slot, a) in v.iter_mut().zip(args) {
                *slot = a
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (-2000..=2000).contains(n))
                    .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
            }
            Ok(Val::Oom(v))
        }
        Kind::NotifyKeyspaceEvents => {
            let s = single()?;
            notify::parse(s)
                .map(Val::Notify)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        }
        Kind::Bind => {
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            if args.is_empty() {
                return Err("wrong number of arguments".into());
            }
            Ok(Val::Bind(args.iter().map(|s| s.to_string()).collect()))
        }
        Kind::ReplicaOf => match args {
            [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => Ok(Val::ReplicaOf(None)),
            [host, port] => match port.parse::<u16>() {
                Ok(p) => Ok(Val::ReplicaOf(Some((host.to_string(), p)))),
                Err(_) => Err("Invalid master port".into()),
            },
            [] => Ok(Val::ReplicaOf(None)),
            _ => Err("wrong number of arguments".into()),
        },
        Kind::Percentiles => {
            let args: &[&str] = if args.len() == 1 && args[0].is_empty() { &[] } else { args };
            let mut out = Vec::new();
            for a in args {
                let v: f64 =
                    a.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
                if !(0.0..=100.0).contains(&v) {
                    return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
                }
                out.push(v);
            }
            Ok(Val::Percentiles(out))
        }
    }
}

/// A percentile as Redis prints it in CONFIG GET and INFO latencystats: `%f`, then
/// trailing zeros (and a trailing point) trimmed — `99.9`, `50`, `12.345679`.
pub fn trim_double(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The value as CONFIG GET shows it.
pub fn format_get(kind: Kind, val: &Val) -> String {
    match (kind, val) {
        (_, Val::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (Kind::Num { fmt, .. }, Val::Num(n)) => {
            if fmt & PERCENT != 0 && *n < 0 {
                format!("{}%", -n)
            } else if fmt & OCTAL != 0 {
                format!("{n:o}")
            } else {
                n.to_string()
            }
        }
        (Kind::Enum(table), Val::Enum(v)) => {
            table.iter().find(|(_, x)| x == v).map(|(n, _)| n.to_string()).unwrap_or_default()
        }
        (Kind::Flags(table), Val::Flags(v)) => {
            if *v == 0 {
                return table.iter().find(|(_, x)| *x == 0).map(|(n, _)| n.to_string()).unwrap_or_default();
            }
            table.iter().filter(|(_, bit)| *bit != 0 && v & bit != 0).map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
        }
        (_, Val::Str(s)) => s.clone(),
        (_, Val::Save(points)) => points.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" "),
        (_, Val::Obuf(l)) => OBUF_CLASSES
            .iter()
            .zip(l)
            .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
            .collect::<Vec<_>>()
            .join(" "),
        (_, Val::Oom(v)) => v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" "),
        (_, Val::Notify(f)) => notify::format(*f),
        (_, Val::Bind(addrs)) => addrs.join(" "),
        (_, Val::ReplicaOf(None)) => String::new(),
        (_, Val::ReplicaOf(Some((h, p)))) => format!("{h} {p}"),
        (_, Val::Percentiles(v)) => v.iter().map(|f| trim_double(*f)).collect::<Vec<_>>().join(" "),
        (_, v) => format!("{v:?}"),
    }
}

fn quote(s: &str) -> String {
    ferrokv_resp::args::quoted(s.as_bytes())
}

/// The directive lines CONFIG REWRITE writes for this value, and whether they must be
/// written even if the file does not mention the directive (value differs from default).
pub fn format_rewrite(name: &str, kind: Kind, val: &Val, default: &Val) -> (Vec<String>, bool) {
    let differs = val != default;
    let lines = match (kind, val) {
        (Kind::Num { fmt, .. }, Val::Num(n)) => {
            if fmt & PERCENT != 0 && *n < 0 {
                vec![format!("{name} {}%", -n)]
            } else if fmt & MEMORY != 0 {
                vec![format!("{name} {}", format_memory(*n))]
            } else {
                vec![format!("{name} {}", format_get(kind, val))]
            }
        }
        (Kind::Str { empty_is_null }, Val::Str(s)) => {
            if empty_is_null && s.is_empty() {
                return (Vec::new(), false);
            }
            vec![format!("{name} {}", quote(s))]
        }
        (Kind::Dir, Val::Str(s)) => return (vec![format!("{name} {}", quote(s))], true),
        (_, Val::Save(points)) => {
            let lines = if points.is_empty() {
                vec![format!("{name} \"\"")]
            } else {
                points.iter().map(|(s, c)| format!("{name} {s} {c}")).collect()
            };
            return (lines, true);
        }
        (_, Val::Obuf(l)) => {
            let Val::Obuf(d) = default else { unreachable!("default of same kind") };
            let lines: Vec<String> = ["normal", "replica", "pubsub"]
                .iter()
                .zip(l.iter().zip(d))
                .filter(|(_, (l, d))| l != d)
                .map(|(c, (l, _))| {
                    format!(
                        "{name} {c} {} {} {}",
                        format_memory(l.hard as i64),
                        format_memory(l.soft as i64),
                        l.soft_seconds
                    )
                })
                .collect();
            let any = !lines.is_empty();
            return (lines, any);
        }
        (_, Val::Notify(f)) => vec![format!("{name} {}", quote(&notify::format(*f)))],
        (_, Val::ReplicaOf(None)) => return (Vec::new(), false),
        (_, Val::ReplicaOf(Some((h, p)))) => return (vec![format!("{name} {h} {p}")], true),
        _ => vec![format!("{name} {}", format_get(kind, val))],
    };
    (lines, differs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100MB"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(format_memory(1 << 20), "1mb");
        assert_eq!(format_memory(1000), "1000");
    }

    #[test]
    fn notify_flags_round_trip() {
        assert_eq!(notify::format(notify::parse("KEA").unwrap()), "AKE");
        assert_eq!(notify::format(notify::parse("Ex").unwrap()), "xE");
        assert!(notify::parse("Q").is_none());
    }

    #[test]
    fn numeric_errors_are_redis_texts() {
        let k = Kind::Num { min: 0, max: 65535, fmt: 0 };
        assert_eq!(parse(k, &["70000"], None), Err("argument must be between 0 and 65535 inclusive".into()));
        assert_eq!(parse(k, &["x"], None), Err("argument couldn't be parsed into an integer".into()));
        let m = Kind::Num { min: 0, max: i64::MAX, fmt: MEMORY };
        assert_eq!(parse(m, &["2mb"], None), Ok(Val::Num(2 << 20)));
        assert_eq!(parse(m, &["abc"], None), Err("argument must be a memory value".into()));
        let pct = Kind::Num { min: -100, max: i64::MAX, fmt: MEMORY | PERCENT };
        assert_eq!(parse(pct, &["5%"], None), Ok(Val::Num(-5)));
    }

    #[test]
    fn output_buffer_limits_update_one_class() {
        let cur = parse(Kind::ClientOutputBufferLimit, &["normal", "0", "0", "0"], None).unwrap();
        let v = parse(Kind::ClientOutputBufferLimit, &["pubsub", "64mb", "16mb", "90"], Some(&cur)).unwrap();
        assert_eq!(
            format_get(Kind::ClientOutputBufferLimit, &v),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 90"
        );
    }
}
