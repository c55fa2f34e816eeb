//! The sentinel state as `sentinel …` config lines, in both directions: rendering what
//! must survive a restart (masters and their settings, known replicas and sentinels,
//! epochs, our id), and applying such lines when the config file is loaded.

use crate::master::{DEFAULT_FAILOVER_TIMEOUT, DEFAULT_PARALLEL_SYNCS};
use crate::sentinel::Sentinel;
use ferrokv_config::rewrite::OwnedLine;

/// A config word, quoted only when it has to be.
fn word(s: &str) -> String {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        s.to_string()
    } else {
        ferrokv_resp::args::quoted(s.as_bytes())
    }
}

pub fn state_lines(s: &Sentinel) -> Vec<String> {
    let env = &s.env;
    let hn = env.settings.announce_hostnames;
    let mut out = vec![format!("sentinel myid {}", env.myid)];
    if !env.settings.deny_scripts_reconfig {
        out.push("sentinel deny-scripts-reconfig no".into());
    }
    // Before the masters, so hostnames in the lines below can be read back.
    if env.settings.resolve_hostnames {
        out.push("sentinel resolve-hostnames yes".into());
    }
    if env.settings.announce_hostnames {
        out.push("sentinel announce-hostnames yes".into());
    }
    for m in s.masters.values() {
        let name = word(m.name());
        let cur = m.current_addr();
        out.push(format!("sentinel monitor {name} {} {} {}", cur.announced(hn), cur.port, m.quorum));
        if m.inst.down_after != crate::master::DEFAULT_DOWN_AFTER {
            out.push(format!("sentinel down-after-milliseconds {name} {}", m.inst.down_after));
        }
        if m.failover_timeout != DEFAULT_FAILOVER_TIMEOUT {
            out.push(format!("sentinel failover-timeout {name} {}", m.failover_timeout));
        }
        if m.parallel_syncs != DEFAULT_PARALLEL_SYNCS {
            out.push(format!("sentinel parallel-syncs {name} {}", m.parallel_syncs));
        }
        if let Some(p) = &m.notification_script {
            out.push(format!("sentinel notification-script {name} {}", word(p)));
        }
        if let Some(p) = &m.client_reconfig_script {
            out.push(format!("sentinel client-reconfig-script {name} {}", word(p)));
        }
        if let Some(p) = &m.auth_pass {
            out.push(format!("sentinel auth-pass {name} {}", word(p)));
        }
        if let Some(u) = &m.auth_user {
            out.push(format!("sentinel auth-user {name} {}", word(u)));
        }
        if m.reboot_down_after != 0 {
            out.push(format!("sentinel master-reboot-down-after-period {name} {}", m.reboot_down_after));
        }
        out.push(format!("sentinel config-epoch {name} {}", m.config_epoch));
        out.push(format!("sentinel leader-epoch {name} {}", m.leader_epoch));
        for r in m.replicas.values() {
            // Mid-failover the promoted replica is already the "current" master: record
            // the old master in its place, which is what it will become.
            let a = if r.addr.same(cur) { &m.inst.addr } else { &r.addr };
            out.push(format!("sentinel known-replica {name} {} {}", a.announced(hn), a.port));
        }
        for sen in m.sentinels.values() {
            if let Some(id) = &sen.runid {
                out.push(format!("sentinel known-sentinel {name} {} {} {id}", sen.addr.announced(hn), sen.addr.port));
            }
        }
        for (from, to) in &m.renamed {
            out.push(format!("sentinel rename-command {name} {} {}", word(from), word(to)));
        }
    }
    out.push(format!("sentinel current-epoch {}", env.current_epoch));
    if let Some(ip) = &env.settings.announce_ip {
        out.push(format!("sentinel announce-ip {}", ferrokv_resp::args::quoted(ip.as_bytes())));
    }
    if env.settings.announce_port != 0 {
        out.push(format!("sentinel announce-port {}", env.settings.announce_port));
    }
    if let Some(u) = &env.settings.sentinel_user {
        out.push(format!("sentinel sentinel-user {}", word(u)));
    }
    if let Some(p) = &env.settings.sentinel_pass {
        out.push(format!("sentinel sentinel-pass {}", word(p)));
    }
    out
}

/// Directives that must be applied before any `sentinel monitor` (they change how the
/// following lines are read), as Redis orders them when loading.
const PRE_MONITOR: &[&str] = &[
    "announce-ip",
    "announce-port",
    "deny-scripts-reconfig",
    "sentinel-user",
    "sentinel-pass",
    "current-epoch",
    "myid",
    "resolve-hostnames",
    "announce-hostnames",
];

/// 0: global settings, 1: `monitor`, 2: per-master lines. Loading in this order lets a
/// file list them in any order.
pub fn phase(args: &[String]) -> u8 {
    match args.first().map(|a| a.to_ascii_lowercase()) {
        Some(a) if PRE_MONITOR.contains(&a.as_str()) => 0,
        Some(a) if a == "monitor" => 1,
        _ => 2,
    }
}

fn yes_no(v: &str, what: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("Please specify yes or no for the {what} option.")),
    }
}

fn epoch(v: &str) -> u64 {
    v.bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, b| n.saturating_mul(10).saturating_add((b - b'0') as u64))
}

/// Applies one `sentinel …` line (without the leading `sentinel`). Errors are Redis's.
pub fn apply(s: &mut Sentinel, args: &[String], now: i64) -> Result<(), String> {
    let atoi = crate::info::atoi;
    let sub = args.first().map(|a| a.to_ascii_lowercase()).unwrap_or_default();
    let n = args.len();
    let no_master = || "No such master with specified name.".to_string();
    match (sub.as_str(), n) {
        ("monitor", 5) => s.add_master(&args[1], &args[2], atoi(&args[3]), atoi(&args[4]), now),
        ("down-after-milliseconds", 3) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let v = atoi(&args[2]);
            if v <= 0 {
                return Err("negative or zero time parameter.".into());
            }
            m.inst.down_after = v;
            for i in m.replicas.values_mut().chain(m.sentinels.values_mut()) {
                i.down_after = v;
            }
            Ok(())
        }
        ("failover-timeout", 3) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let v = atoi(&args[2]);
            if v <= 0 {
                return Err("negative or zero time parameter.".into());
            }
            m.failover_timeout = v;
            Ok(())
        }
        ("parallel-syncs", 3) => {
            s.masters.get_mut(&args[1]).ok_or_else(no_master)?.parallel_syncs = atoi(&args[2]);
            Ok(())
        }
        ("notification-script", 3) | ("client-reconfig-script", 3) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            if !crate::commands::is_executable(&args[2]) {
                return Err(if sub == "notification-script" {
                    "Notification script seems non existing or non executable.".into()
                } else {
                    "Client reconfiguration script seems non existing or non executable.".into()
                });
            }
            if sub == "notification-script" {
                m.notification_script = Some(args[2].clone());
            } else {
                m.client_reconfig_script = Some(args[2].clone());
            }
            Ok(())
        }
        ("auth-pass", 3) => {
            s.masters.get_mut(&args[1]).ok_or_else(no_master)?.auth_pass = Some(args[2].clone());
            Ok(())
        }
        ("auth-user", 3) => {
            s.masters.get_mut(&args[1]).ok_or_else(no_master)?.auth_user = Some(args[2].clone());
            Ok(())
        }
        ("current-epoch", 2) => {
            s.env.current_epoch = s.env.current_epoch.max(epoch(&args[1]));
            Ok(())
        }
        ("myid", 2) => {
            if args[1].len() != 40 {
                return Err("Malformed Sentinel id in myid option.".into());
            }
            s.env.myid = args[1].clone();
            Ok(())
        }
        ("config-epoch", 3) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            m.config_epoch = epoch(&args[2]);
            s.env.current_epoch = s.env.current_epoch.max(m.config_epoch);
            Ok(())
        }
        ("leader-epoch", 3) => {
            s.masters.get_mut(&args[1]).ok_or_else(no_master)?.leader_epoch = epoch(&args[2]);
            Ok(())
        }
        ("known-slave" | "known-replica", 4) => {
            let resolve = s.env.settings.resolve_hostnames;
            let addr = crate::addr::Addr::new(&args[2], atoi(&args[3]), resolve, true, s.env.resolver.as_ref())
                .map_err(|e| e.message().to_string())?;
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let name = addr.name(s.env.settings.announce_hostnames);
            if m.replicas.contains_key(&name) {
                return Err("Duplicate hostname and port for replica.".into());
            }
            let r = crate::instance::Instance::new(
                crate::instance::Kind::Replica,
                name.clone(),
                addr,
                m.inst.down_after,
                now,
            );
            m.replicas.insert(name, r);
            Ok(())
        }
        ("known-sentinel", 4) => Ok(()),
        ("known-sentinel", 5) => {
            let resolve = s.env.settings.resolve_hostnames;
            let addr = crate::addr::Addr::new(&args[2], atoi(&args[3]), resolve, true, s.env.resolver.as_ref())
                .map_err(|e| e.message().to_string())?;
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let id = args[4].clone();
            if m.sentinels.contains_key(&id) {
                return Err("Duplicate runid for sentinel.".into());
            }
            let mut si = crate::instance::Instance::new(
                crate::instance::Kind::Sentinel,
                id.clone(),
                addr,
                m.inst.down_after,
                now,
            );
            si.runid = Some(id.clone());
            m.sentinels.insert(id, si);
            Ok(())
        }
        ("rename-command", 4) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let key = args[2].to_ascii_lowercase();
            if m.renamed.contains_key(&key) {
                return Err("Same command renamed multiple times with rename-command.".into());
            }
            m.renamed.insert(key, args[3].clone());
            Ok(())
        }
        ("announce-ip", 2) => {
            if !args[1].is_empty() {
                s.env.settings.announce_ip = Some(args[1].clone());
            }
            Ok(())
        }
        ("announce-port", 2) => {
            s.env.settings.announce_port = atoi(&args[1]).clamp(0, 65535) as u16;
            Ok(())
        }
        ("deny-scripts-reconfig", 2) => {
            s.env.settings.deny_scripts_reconfig = yes_no(&args[1], "deny-scripts-reconfig")?;
            Ok(())
        }
        ("sentinel-user", 2) => {
            s.env.settings.sentinel_user = Some(args[1].clone()).filter(|v| !v.is_empty());
            Ok(())
        }
        ("sentinel-pass", 2) => {
            s.env.settings.sentinel_pass = Some(args[1].clone()).filter(|v| !v.is_empty());
            Ok(())
        }
        ("resolve-hostnames", 2) => {
            s.env.settings.resolve_hostnames = yes_no(&args[1], "resolve-hostnames")?;
            Ok(())
        }
        ("announce-hostnames", 2) => {
            s.env.settings.announce_hostnames = yes_no(&args[1], "announce-hostnames")?;
            Ok(())
        }
        ("master-reboot-down-after-period", 3) => {
            let m = s.masters.get_mut(&args[1]).ok_or_else(no_master)?;
            let v = atoi(&args[2]);
            if v < 0 {
                return Err("negative time parameter.".into());
            }
            m.reboot_down_after = v;
            Ok(())
        }
        _ => Err("Unrecognized sentinel configuration statement.".into()),
    }
}

/// The `sentinel <option>` lines whose old lines the state replaces: Redis rewrites each
/// option's lines where the file had them, appends the rest after the rewrite signature
/// and blanks the old lines it no longer needs (a master or a replica that is gone).
pub const OWNED_KEYS: &[&str] = &[
    "sentinel myid",
    "sentinel deny-scripts-reconfig",
    "sentinel resolve-hostnames",
    "sentinel announce-hostnames",
    "sentinel monitor",
    "sentinel down-after-milliseconds",
    "sentinel failover-timeout",
    "sentinel parallel-syncs",
    "sentinel notification-script",
    "sentinel client-reconfig-script",
    "sentinel auth-pass",
    "sentinel auth-user",
    "sentinel master-reboot-down-after-period",
    "sentinel config-epoch",
    "sentinel leader-epoch",
    "sentinel known-replica",
    "sentinel known-sentinel",
    "sentinel rename-command",
    "sentinel current-epoch",
    "sentinel announce-ip",
    "sentinel announce-port",
    "sentinel sentinel-user",
    "sentinel sentinel-pass",
];

/// Settings [`state_lines`] leaves out at their default, which a file that has them keeps
/// (rewritten in place with the default), as Redis does.
const DEFAULT_LINES: &[&str] =
    &["sentinel deny-scripts-reconfig yes", "sentinel resolve-hostnames no", "sentinel announce-hostnames no"];

fn option_key(line: &str) -> String {
    line.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// [`state_lines`] as lines for the config rewrite: each must be written (appended if the
/// file has no line of its option left), the default settings only replace a line.
pub fn owned_lines(lines: &[String]) -> Vec<OwnedLine> {
    let mut out: Vec<OwnedLine> =
        lines.iter().map(|l| OwnedLine { key: option_key(l), line: l.clone(), force: true }).collect();
    for d in DEFAULT_LINES {
        let key = option_key(d);
        if !out.iter().any(|o| o.key == key) {
            out.push(OwnedLine { key, line: d.to_string(), force: false });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_config::rewrite::rewritten_content_with;

    #[test]
    fn the_state_is_rewritten_where_the_file_had_it() {
        let mut cfg = ferrokv_config::Config::defaults();
        cfg.sentinel_mode = true;
        cfg.set_internal(ferrokv_config::pid("port"), ferrokv_config::Val::Num(5000));
        cfg.set_internal(ferrokv_config::pid("dir"), ferrokv_config::Val::Str("/d".into()));
        let old = "# mine\nport 5000\nsentinel monitor m 127.0.0.1 6379 2\n# timing\nsentinel down-after-milliseconds m 1000\nsentinel resolve-hostnames no\nsentinel known-replica m 10.0.0.9 6379\nlogfile \"\"\n";
        let lines: Vec<String> =
            ["sentinel myid x", "sentinel monitor m 127.0.0.1 6380 2", "sentinel config-epoch m 1"]
                .map(String::from)
                .into();
        let new = rewritten_content_with(&cfg, old, &owned_lines(&lines), OWNED_KEYS);
        // In place: the monitor line, the kept default; blanked: the timing no longer set and
        // the replica gone; appended after the signature: what the file did not have.
        let want = "# mine\nport 5000\nsentinel monitor m 127.0.0.1 6380 2\n# timing\n\nsentinel resolve-hostnames no\n\nlogfile \"\"\n\n# Generated by CONFIG REWRITE\ndir \"/d\"\nsentinel myid x\nsentinel config-epoch m 1\n";
        assert_eq!(new, want);
        let again = rewritten_content_with(&cfg, &new, &owned_lines(&lines), OWNED_KEYS);
        assert_eq!(rewritten_content_with(&cfg, &again, &owned_lines(&lines), OWNED_KEYS), again);
    }

    #[test]
    fn phases_order_loading() {
        let a = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(phase(&a("myid abc")), 0);
        assert_eq!(phase(&a("monitor m 1 2 3")), 1);
        assert_eq!(phase(&a("known-replica m 1 2")), 2);
    }
}
