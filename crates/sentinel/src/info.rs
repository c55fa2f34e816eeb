//! The parts of an instance's INFO reply Sentinel acts on. Only these fields are read, so
//! any server that prints them as Redis does can be monitored.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfoReport {
    pub run_id: Option<String>,
    pub role: Option<crate::instance::Role>,
    /// `slaveN:` lines of a master: the replicas' addresses.
    pub replicas: Vec<(String, i64)>,
    pub master_host: Option<String>,
    pub master_port: Option<i64>,
    pub master_link_up: Option<bool>,
    /// Milliseconds; 0 when the field is absent (the link is up).
    pub master_link_down_ms: i64,
    pub priority: Option<i64>,
    pub repl_offset: Option<u64>,
    pub announced: Option<bool>,
    /// The instance's replication history (`master_replid`, `master_replid2`,
    /// `second_repl_offset`): on a master, whose offsets its replicas' offsets continue.
    pub replid: Option<String>,
    /// None when the field is absent or all zeros (no previous history).
    pub replid2: Option<String>,
    pub second_repl_offset: Option<i64>,
    /// ferrokv masters in synchronous-replication mode (`sync-replicas`): absent on Redis.
    pub sync_replicas: Option<u32>,
    pub sync_lease_ms: Option<i64>,
    pub sync_acking: Option<u32>,
    pub sync_committed_offset: Option<u64>,
    pub sync_fenced: Option<bool>,
    /// ferrokv replicas: frozen by REPLFREEZE.
    pub sync_frozen: Option<bool>,
    /// ferrokv replicas: refusing the full sync of a master that came back empty.
    pub empty_master_refused: Option<bool>,
}

/// Leading integer of `s` the way C's atoi reads it (junk after the digits is ignored).
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add((b - b'0') as i64);
    }
    if neg {
        -n
    } else {
        n
    }
}

fn replica_line(value: &str) -> Option<(String, i64)> {
    if value.contains("ip=") {
        let mut ip = None;
        let mut port = None;
        for field in value.split(',') {
            if let Some(v) = field.strip_prefix("ip=") {
                ip = Some(v.to_string());
            } else if let Some(v) = field.strip_prefix("port=") {
                port = Some(atoi(v));
            }
        }
        Some((ip?, port?))
    } else {
        // Pre-2.8 format: `slave0:<ip>,<port>,<state>`.
        let mut it = value.split(',');
        let ip = it.next()?.to_string();
        let port = atoi(it.next()?);
        it.next()?;
        Some((ip, port))
    }
}

pub fn parse(info: &str) -> InfoReport {
    let mut r = InfoReport::default();
    for line in info.split("\r\n").flat_map(|l| l.split('\n')) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            // A peer controls this text: slice only on a character boundary.
            "run_id" => r.run_id = value.get(..40).map(str::to_string).or(r.run_id),
            "role" if value.starts_with("master") => r.role = Some(crate::instance::Role::Master),
            "role" if value.starts_with("slave") => r.role = Some(crate::instance::Role::Replica),
            "master_host" => r.master_host = Some(value.to_string()),
            "master_port" => r.master_port = Some(atoi(value)),
            "master_link_status" => r.master_link_up = Some(value.eq_ignore_ascii_case("up")),
            "master_link_down_since_seconds" => r.master_link_down_ms = atoi(value).saturating_mul(1000),
            "slave_priority" | "replica_priority" => r.priority = Some(atoi(value)),
            "slave_repl_offset" => r.repl_offset = Some(atoi(value).max(0) as u64),
            "replica_announced" => r.announced = Some(atoi(value) != 0),
            "master_replid" => r.replid = Some(value.to_string()),
            "master_replid2" => r.replid2 = Some(value.to_string()).filter(|v| v.bytes().any(|b| b != b'0')),
            "second_repl_offset" => r.second_repl_offset = Some(atoi(value)),
            "sync_replicas" => r.sync_replicas = Some(atoi(value).clamp(0, u32::MAX as i64) as u32),
            "sync_replicas_lease_ms" => r.sync_lease_ms = Some(atoi(value).max(0)),
            "sync_replicas_acking" => r.sync_acking = Some(atoi(value).clamp(0, u32::MAX as i64) as u32),
            "sync_committed_offset" => r.sync_committed_offset = Some(atoi(value).max(0) as u64),
            "sync_fenced" => r.sync_fenced = Some(atoi(value) != 0),
            "sync_frozen" => r.sync_frozen = Some(atoi(value) != 0),
            "empty_master_refused" => r.empty_master_refused = Some(atoi(value) != 0),
            k if k.len() > 5 && k.starts_with("slave") && k[5..].bytes().all(|b| b.is_ascii_digit()) => {
                if let Some(rep) = replica_line(value) {
                    r.replicas.push(rep);
                }
            }
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Role;

    #[test]
    fn master_info() {
        let info = "# Server\r\nrun_id:0123456789012345678901234567890123456789\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\nslave1:10.0.0.2,7002,online\r\nmaster_repl_offset:42\r\n";
        let r = parse(info);
        assert_eq!(r.run_id.as_deref(), Some("0123456789012345678901234567890123456789"));
        assert_eq!(r.role, Some(Role::Master));
        // Byte 40 inside a multi-byte character: ignored, not a panic.
        assert_eq!(parse(&format!("run_id:{}é\r\n", "0".repeat(39))).run_id, None);
        assert_eq!(r.replicas, vec![("127.0.0.1".into(), 7001), ("10.0.0.2".into(), 7002)]);
    }

    #[test]
    fn replica_info() {
        let info = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:3\r\nslave_repl_offset:99\r\nslave_priority:0\r\nreplica_announced:1\r\n";
        let r = parse(info);
        assert_eq!(r.role, Some(Role::Replica));
        assert_eq!(r.master_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.master_port, Some(7000));
        assert_eq!(r.master_link_up, Some(false));
        assert_eq!(r.master_link_down_ms, 3000);
        assert_eq!(r.repl_offset, Some(99));
        assert_eq!(r.priority, Some(0));
        assert_eq!(r.announced, Some(true));
    }

    #[test]
    fn sync_replication_fields_of_a_ferrokv_master() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:aaaa\r\nmaster_replid2:bbbb\r\nmaster_repl_offset:700\r\nsecond_repl_offset:501\r\nsync_replicas:2\r\nsync_replicas_lease_ms:750\r\nsync_replicas_acking:1\r\nsync_committed_offset:640\r\nsync_fenced:1\r\n";
        let r = parse(info);
        assert_eq!(r.replid.as_deref(), Some("aaaa"));
        assert_eq!(r.replid2.as_deref(), Some("bbbb"));
        assert_eq!(r.second_repl_offset, Some(501));
        assert_eq!(r.sync_replicas, Some(2));
        assert_eq!(r.sync_lease_ms, Some(750));
        assert_eq!(r.sync_acking, Some(1));
        assert_eq!(r.sync_committed_offset, Some(640));
        assert_eq!(r.sync_fenced, Some(true));
        // A master with no previous history prints forty zeros and -1.
        let r = parse(&format!("master_replid2:{}\r\nsecond_repl_offset:-1\r\n", "0".repeat(40)));
        assert_eq!(r.replid2, None);
        assert_eq!(r.second_repl_offset, Some(-1));
        // Redis prints none of the sync fields.
        let r = parse("role:master\r\nmaster_replid:aaaa\r\n");
        assert_eq!((r.sync_replicas, r.sync_lease_ms, r.sync_fenced), (None, None, None));
    }

    #[test]
    fn sync_replication_fields_of_a_ferrokv_replica() {
        let r = parse("role:slave\r\nsync_frozen:1\r\nempty_master_refused:1\r\n");
        assert_eq!((r.sync_frozen, r.empty_master_refused), (Some(true), Some(true)));
        let r = parse("role:slave\r\nsync_frozen:0\r\nempty_master_refused:0\r\n");
        assert_eq!((r.sync_frozen, r.empty_master_refused), (Some(false), Some(false)));
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(atoi("x"), 0);
    }
}
