//! The commands that read or change sentinel state — SENTINEL and its subcommands, ROLE,
//! the sentinel section of INFO, and PUBLISH (how other sentinels deliver hellos) — with
//! Redis's reply shapes and error texts. Connection-level commands live in the driver.

use crate::env::Level;
use crate::hello::CHANNEL;
use crate::instance::{flag, Instance, Kind};
use crate::master::Master;
use crate::sentinel::Sentinel;
use crate::{election, failover, selection};
use ferrokv_resp::ReplyBuf;

const HELP: &[&str] = &[
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
    "HELP",
    "    Prints this help.",
];

pub fn is_executable(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: access() only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

fn parse_i64(a: &[u8]) -> Option<i64> {
    ferrokv_resp::parse_i64(a)
}

fn bulk_num(out: &mut ReplyBuf, n: i64) {
    out.bulk(n.to_string().as_bytes());
}

/// One instance as SENTINEL MASTER/REPLICAS/SENTINELS show it: a map with Redis's fields
/// in Redis's order, every value a bulk string.
fn reply_instance(out: &mut ReplyBuf, s: &Sentinel, i: &Instance, m: Option<&Master>, now: i64) {
    let hn = s.env.settings.announce_hostnames;
    let mut f: Vec<(&str, String)> = vec![
        ("name", i.name.clone()),
        ("ip", i.addr.announced(hn).to_string()),
        ("port", i.addr.port.to_string()),
        ("runid", i.runid.clone().unwrap_or_default()),
        ("flags", i.flags_text()),
        ("link-pending-commands", i.link.pending_commands.to_string()),
        ("link-refcount", "1".into()),
    ];
    if let Some(m) = m.filter(|m| m.in_failover()) {
        f.push(("failover-state", m.failover_state.as_str().into()));
    }
    let since = |t: i64| (now - t).to_string();
    f.push(("last-ping-sent", if i.link.act_ping_time != 0 { since(i.link.act_ping_time) } else { "0".into() }));
    f.push(("last-ok-ping-reply", since(i.link.last_avail_time)));
    f.push(("last-ping-reply", since(i.link.last_pong_time)));
    if i.has(flag::S_DOWN) {
        f.push(("s-down-time", since(i.s_down_since)));
    }
    if i.has(flag::O_DOWN) {
        f.push(("o-down-time", since(i.o_down_since)));
    }
    f.push(("down-after-milliseconds", i.down_after.to_string()));
    if i.kind != Kind::Sentinel {
        f.push(("info-refresh", if i.info_refresh != 0 { since(i.info_refresh) } else { "0".into() }));
        let role = if i.role_reported == crate::instance::Role::Master { "master" } else { "slave" };
        f.push(("role-reported", role.into()));
        f.push(("role-reported-time", since(i.role_reported_time)));
    }
    if let Some(m) = m {
        f.push(("config-epoch", m.config_epoch.to_string()));
        f.push(("num-slaves", m.replicas.len().to_string()));
        f.push(("num-other-sentinels", m.sentinels.len().to_string()));
        f.push(("quorum", m.quorum.to_string()));
        f.push(("failover-timeout", m.failover_timeout.to_string()));
        f.push(("parallel-syncs", m.parallel_syncs.to_string()));
        if let Some(p) = &m.notification_script {
            f.push(("notification-script", p.clone()));
        }
        if let Some(p) = &m.client_reconfig_script {
            f.push(("client-reconfig-script", p.clone()));
        }
        // ferrokv only, and only for a master in sync-replication mode.
        if let Some(sync) = m.sync.as_ref().filter(|_| i.kind == Kind::Master && m.sync_replicas().is_some()) {
            f.push(("sync-replicas", sync.replicas.to_string()));
            f.push(("sync-replicas-lease-ms", sync.lease_ms.to_string()));
            f.push(("sync-fenced", (sync.fenced as i64).to_string()));
        }
        if let Some(sf) = m.sync_failover.as_ref().filter(|_| i.kind == Kind::Master) {
            f.push(("frozen-slaves", sf.frozen.len().to_string()));
            f.push(("frozen-slaves-needed", sf.required.to_string()));
        }
    }
    if i.kind == Kind::Replica {
        f.push(("master-link-down-time", i.master_link_down_time.to_string()));
        f.push(("master-link-status", if i.replica.master_link_up { "ok" } else { "err" }.into()));
        f.push(("master-host", i.replica.master_host.clone().unwrap_or_else(|| "?".into())));
        f.push(("master-port", i.replica.master_port.to_string()));
        f.push(("slave-priority", i.replica.priority.to_string()));
        f.push(("slave-repl-offset", i.replica.repl_offset.to_string()));
        f.push(("replica-announced", (i.replica.announced as i64).to_string()));
        // ferrokv replicas only, and only while it is so.
        if i.replica.sync_frozen {
            f.push(("sync-frozen", "1".into()));
        }
        if i.replica.empty_master_refused {
            f.push(("empty-master-refused", "1".into()));
        }
    }
    if i.kind == Kind::Sentinel {
        f.push(("last-hello-message", since(i.last_hello_time)));
        f.push(("voted-leader", i.leader.clone().unwrap_or_else(|| "?".into())));
        f.push(("voted-leader-epoch", i.leader_epoch.to_string()));
    }
    out.map(f.len());
    for (k, v) in f {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
}

impl Sentinel {
    /// Runs SENTINEL, ROLE or PUBLISH. False if `args` is none of these.
    pub fn command(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf, now: i64) -> bool {
        let Some(name) = args.first() else {
            return false;
        };
        match name.to_ascii_lowercase().as_slice() {
            b"sentinel" => self.sentinel_command(args, out, now),
            b"role" => {
                out.array(2);
                out.bulk(b"sentinel");
                out.array(self.masters.len());
                for n in self.masters.keys() {
                    out.bulk(n.as_bytes());
                }
            }
            b"publish" => {
                if args.len() != 3 {
                    out.error("ERR wrong number of arguments for 'publish' command");
                } else if args[1] != CHANNEL.as_bytes() {
                    out.error("ERR Only HELLO messages are accepted by Sentinel instances.");
                } else {
                    let payload = text(&args[2]);
                    if !payload.contains(&self.env.myid) {
                        crate::discovery::process_hello(&mut self.env, &mut self.masters, &payload, now);
                    }
                    out.int(1);
                }
            }
            _ => return false,
        }
        self.finish();
        true
    }

    /// The `# Sentinel` section of INFO.
    pub fn info_section(&self, now: i64) -> String {
        let env = &self.env;
        let mut s = String::from("# Sentinel\r\n");
        s.push_str(&format!("sentinel_masters:{}\r\n", self.masters.len()));
        s.push_str(&format!("sentinel_tilt:{}\r\n", env.tilt as i32));
        let since = if env.tilt { (now - env.tilt_start) / 1000 } else { -1 };
        s.push_str(&format!("sentinel_tilt_since_seconds:{since}\r\n"));
        s.push_str("sentinel_running_scripts:0\r\n");
        s.push_str("sentinel_scripts_queue_length:0\r\n");
        s.push_str(&format!("sentinel_simulate_failure_flags:{}\r\n", env.simfailure));
        for (n, m) in self.masters.values().enumerate() {
            let status = if m.inst.has(flag::O_DOWN) {
                "odown"
            } else if m.inst.has(flag::S_DOWN) {
                "sdown"
            } else {
                "ok"
            };
            s.push_str(&format!(
                "master{n}:name={},status={status},address={}:{},slaves={},sentinels={}\r\n",
                m.name(),
                m.inst.addr.announced(env.settings.announce_hostnames),
                m.inst.addr.port,
                m.replicas.len(),
                m.sentinels.len() + 1
            ));
        }
        s
    }

    fn flush_reply(&mut self, out: &mut ReplyBuf) {
        match self.flush_config() {
            Ok(()) => out.ok(),
            Err(_) => out.error("ERR Failed to save config file. Check server logs."),
        }
    }

    fn sentinel_command(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf, now: i64) {
        let Some(sub) = args.get(1) else {
            out.error("ERR wrong number of arguments for 'sentinel' command");
            return;
        };
        let sub_l = text(sub).to_ascii_lowercase();
        let n = args.len();
        let arity_err = |out: &mut ReplyBuf| {
            out.error(&format!("ERR wrong number of arguments for 'sentinel|{sub_l}' command"));
        };
        let no_master = |out: &mut ReplyBuf| out.error("ERR No such master with that name");
        match sub_l.as_str() {
            "help" if n == 2 => {
                out.array(HELP.len());
                for l in HELP {
                    out.simple(l);
                }
            }
            "masters" => {
                if n != 2 {
                    return arity_err(out);
                }
                out.array(self.masters.len());
                for m in self.masters.values() {
                    reply_instance(out, self, &m.inst, Some(m), now);
                }
            }
            "master" => {
                if n != 3 {
                    return arity_err(out);
                }
                match self.masters.get(&text(&args[2])) {
                    Some(m) => reply_instance(out, self, &m.inst, Some(m), now),
                    None => no_master(out),
                }
            }
            "slaves" | "replicas" | "sentinels" => {
                if n != 3 {
                    return arity_err(out);
                }
                let Some(m) = self.masters.get(&text(&args[2])) else {
                    return no_master(out);
                };
                let list: Vec<&Instance> = if sub_l == "sentinels" {
                    m.sentinels.values().collect()
                } else {
                    m.replicas.values().filter(|r| r.replica.announced).collect()
                };
                out.array(list.len());
                for i in list {
                    reply_instance(out, self, i, None, now);
                }
            }
            "myid" => {
                if n != 2 {
                    return arity_err(out);
                }
                out.bulk(self.env.myid.as_bytes());
            }
            "is-master-down-by-addr" => {
                if n != 6 {
                    return arity_err(out);
                }
                self.is_master_down_by_addr(args, out, now);
            }
            "reset" => {
                if n != 3 {
                    return arity_err(out);
                }
                let pattern = args[2].clone();
                let names: Vec<String> = self
                    .masters
                    .keys()
                    .filter(|k| ferrokv_keyspace::glob::glob_match(&pattern, k.as_bytes(), false))
                    .cloned()
                    .collect();
                for name in &names {
                    if let Some(m) = self.masters.get_mut(name) {
                        failover::reset(&mut self.env, m, failover::RESET_GENERATE_EVENT, now);
                    }
                }
                out.int(names.len() as i64);
            }
            "get-master-addr-by-name" => {
                if n != 3 {
                    return arity_err(out);
                }
                match self.masters.get(&text(&args[2])) {
                    None => out.null_array(),
                    Some(m) => {
                        let a = m.current_addr();
                        out.array(2);
                        out.bulk(a.announced(self.env.settings.announce_hostnames).as_bytes());
                        out.bulk(a.port.to_string().as_bytes());
                    }
                }
            }
            "failover" => {
                // COORDINATED (as proposed for Redis, redis/redis#13118): a planned
                // switchover through the master's FAILOVER command, losing no write.
                let coordinated = n == 4 && text(&args[3]).eq_ignore_ascii_case("coordinated");
                if n != 3 && !coordinated {
                    return arity_err(out);
                }
                let Some(m) = self.masters.get_mut(&text(&args[2])) else {
                    return no_master(out);
                };
                if m.in_failover() {
                    return out.error("-INPROG Failover already in progress");
                }
                if selection::select(&self.env, m, now).is_none() {
                    return out.error("-NOGOODSLAVE No suitable replica to promote");
                }
                let name = m.name().to_string();
                self.env.log(Level::Warning, format!("Executing user requested FAILOVER of '{name}'"));
                failover::start(&mut self.env, m, now);
                m.inst.flags |= flag::FORCE_FAILOVER;
                m.coordinated = coordinated;
                out.ok();
            }
            "pending-scripts" => {
                if n != 2 {
                    return arity_err(out);
                }
                out.array(0);
            }
            "monitor" => {
                if n != 6 {
                    return arity_err(out);
                }
                let Some(quorum) = parse_i64(&args[5]) else {
                    return out.error("ERR Invalid quorum");
                };
                let Some(port) = parse_i64(&args[4]) else {
                    return out.error("ERR Invalid port");
                };
                if quorum <= 0 {
                    return out.error("ERR Quorum must be 1 or greater.");
                }
                let host = text(&args[3]);
                let resolvable = crate::addr::is_ip(&host)
                    || (self.env.settings.resolve_hostnames && self.env.resolver.resolve(&host).is_some());
                if !resolvable {
                    return out.error("ERR Invalid IP address or hostname specified");
                }
                let name = text(&args[2]);
                match self.add_master(&name, &host, port, quorum, now) {
                    Err(e) => out.error(&e),
                    Ok(()) => {
                        self.flush_reply(out);
                        if let Some(m) = self.masters.get(&name) {
                            let desc = self.env.describe(&m.inst, None);
                            self.env.event(Level::Warning, "+monitor", format!("{desc} quorum {}", m.quorum));
                        }
                    }
                }
            }
            "flushconfig" => {
                if n != 2 {
                    return arity_err(out);
                }
                self.flush_reply(out);
            }
            "remove" => {
                if n != 3 {
                    return arity_err(out);
                }
                let name = text(&args[2]);
                let Some(m) = self.masters.get(&name) else {
                    return no_master(out);
                };
                let desc = self.env.describe(&m.inst, None);
                self.env.event(Level::Warning, "-monitor", desc);
                self.remove_master(&name);
                self.flush_reply(out);
            }
            "ckquorum" => {
                if n != 3 {
                    return arity_err(out);
                }
                let Some(m) = self.masters.get(&text(&args[2])) else {
                    return no_master(out);
                };
                let usable = m.usable_sentinels();
                let voters = m.sentinels.len() + 1;
                let no_quorum = usable < m.quorum as usize;
                let no_auth = usable < voters / 2 + 1;
                if !no_quorum && !no_auth {
                    out.simple(&format!(
                        "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
                    ));
                } else {
                    let mut e = format!("NOQUORUM {usable} usable Sentinels. ");
                    if no_quorum {
                        e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
                    }
                    if no_auth {
                        if no_quorum {
                            e.push_str(". ");
                        }
                        e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
                    }
                    out.error(&e);
                }
            }
            "set" => {
                if n < 3 {
                    return arity_err(out);
                }
                self.set_command(args, out, now);
            }
            "config" => {
                if n < 3 {
                    return arity_err(out);
                }
                let op = text(&args[2]).to_ascii_lowercase();
                if op == "set" && n == 5 {
                    self.config_set(args, out);
                } else if op == "get" && n == 4 {
                    self.config_get(&args[3], out);
                } else {
                    out.error("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.");
                }
            }
            "info-cache" => self.info_cache(args, out, now),
            "simulate-failure" => {
                let mut flags = 0;
                for a in &args[2..] {
                    match text(a).to_ascii_lowercase().as_str() {
                        "crash-after-election" => {
                            flags |= crate::env::SIMFAILURE_CRASH_AFTER_ELECTION;
                            self.env.log(Level::Warning, "Failure simulation: this Sentinel will crash after being successfully elected as failover leader".into());
                        }
                        "crash-after-promotion" => {
                            flags |= crate::env::SIMFAILURE_CRASH_AFTER_PROMOTION;
                            self.env.log(Level::Warning, "Failure simulation: this Sentinel will crash after promoting the selected replica to master".into());
                        }
                        "help" => {
                            out.array(2);
                            out.bulk(b"crash-after-election");
                            out.bulk(b"crash-after-promotion");
                            return;
                        }
                        _ => return out.error("ERR Unknown failure simulation specified"),
                    }
                }
                self.env.simfailure = flags;
                out.ok();
            }
            "debug" => {
                if n == 2 {
                    let fields = self.env.timing.fields();
                    out.map(fields.len());
                    for (k, v) in fields {
                        out.bulk(k.as_bytes());
                        bulk_num(out, v);
                    }
                } else {
                    self.debug_set(args, out);
                }
            }
            _ => out.error(&format!("ERR unknown subcommand '{}'. Try SENTINEL HELP.", text(sub))),
        }
    }

    fn is_master_down_by_addr(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf, now: i64) {
        let Some(port) = parse_i64(&args[3]) else {
            return out.error("ERR value is not an integer or out of range");
        };
        let Some(req_epoch) = parse_i64(&args[4]) else {
            return out.error("ERR value is not an integer or out of range");
        };
        let ip = text(&args[2]);
        let runid = text(&args[5]);
        let name = self
            .masters
            .iter()
            .find(|(_, m)| m.inst.addr.port as i64 == port && m.inst.addr.matches_host(&ip, self.env.resolver.as_ref()))
            .map(|(k, _)| k.clone());
        let mut down = false;
        let mut vote: (Option<String>, u64) = (None, 0);
        if let Some(m) = name.as_ref().and_then(|k| self.masters.get_mut(k)) {
            // In TILT our view is not to be trusted: never report a master down.
            down = !self.env.tilt && m.inst.has(flag::S_DOWN);
            if runid != "*" {
                vote = election::vote(&mut self.env, m, req_epoch.max(0) as u64, &runid, now);
            }
        }
        out.array(3);
        out.int(down as i64);
        out.bulk(vote.0.as_deref().unwrap_or("*").as_bytes());
        out.int(vote.1 as i64);
    }

    fn set_command(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf, _now: i64) {
        let name = text(&args[2]);
        if !self.masters.contains_key(&name) {
            return out.error("ERR No such master with that name");
        }
        let deny_scripts = self.env.settings.deny_scripts_reconfig;
        let mut changes = 0;
        let mut j = 3;
        let mut failed = false;
        while j < args.len() {
            let option = text(&args[j]).to_ascii_lowercase();
            let more = args.len() - 1 - j;
            let start = j;
            let Some(m) = self.masters.get_mut(&name) else {
                return;
            };
            let positive = |a: &[u8]| parse_i64(a).filter(|v| *v > 0);
            let mut redacted = false;
            let bad = |out: &mut ReplyBuf, arg: &[u8]| {
                out.error(&format!("ERR Invalid argument '{}' for SENTINEL SET '{}'", text(arg), text(&args[start])))
            };
            match option.as_str() {
                "down-after-milliseconds" | "failover-timeout" | "parallel-syncs" | "quorum" if more > 0 => {
                    j += 1;
                    let Some(v) = positive(&args[j]) else {
                        bad(out, &args[j]);
                        failed = true;
                        break;
                    };
                    match option.as_str() {
                        "down-after-milliseconds" => {
                            m.inst.down_after = v;
                            for i in m.replicas.values_mut().chain(m.sentinels.values_mut()) {
                                i.down_after = v;
                            }
                        }
                        "failover-timeout" => m.failover_timeout = v,
                        "parallel-syncs" => m.parallel_syncs = v,
                        _ => m.quorum = v.min(u32::MAX as i64) as u32,
                    }
                }
                "master-reboot-down-after-period" if more > 0 => {
                    j += 1;
                    let Some(v) = parse_i64(&args[j]).filter(|v| *v >= 0) else {
                        bad(out, &args[j]);
                        failed = true;
                        break;
                    };
                    m.reboot_down_after = v;
                }
                "notification-script" | "client-reconfig-script" if more > 0 => {
                    j += 1;
                    if deny_scripts {
                        out.error("ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your Sentinel configuration");
                        failed = true;
                        break;
                    }
                    let v = text(&args[j]);
                    if !v.is_empty() && !is_executable(&v) {
                        out.error(if option == "notification-script" {
                            "ERR Notification script seems non existing or non executable"
                        } else {
                            "ERR Client reconfiguration script seems non existing or non executable"
                        });
                        failed = true;
                        break;
                    }
                    let v = Some(v).filter(|v| !v.is_empty());
                    if option == "notification-script" {
                        m.notification_script = v;
                    } else {
                        m.client_reconfig_script = v;
                    }
                }
                "auth-pass" | "auth-user" if more > 0 => {
                    j += 1;
                    let v = Some(text(&args[j])).filter(|v| !v.is_empty());
                    if option == "auth-pass" {
                        m.auth_pass = v;
                        redacted = true;
                    } else {
                        m.auth_user = v;
                    }
                    // New credentials take effect on new connections.
                    self.env.close_instance_links(&mut m.inst);
                    for i in m.replicas.values_mut() {
                        self.env.close_instance_links(i);
                    }
                }
                "rename-command" if more > 1 => {
                    let from = args[j + 1].clone();
                    let to = args[j + 2].clone();
                    j += 2;
                    if from.is_empty() || to.is_empty() {
                        bad(out, if to.is_empty() { &to } else { &from });
                        failed = true;
                        break;
                    }
                    let key = text(&from).to_ascii_lowercase();
                    m.renamed.remove(&key);
                    if !text(&to).eq_ignore_ascii_case(&key) {
                        m.renamed.insert(key, text(&to));
                    }
                }
                _ => {
                    out.error(&format!(
                        "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                        text(&args[start])
                    ));
                    failed = true;
                    break;
                }
            }
            changes += 1;
            let desc = self.env.describe(&self.masters[&name].inst, None);
            let shown: Vec<String> =
                args[start + 1..=j].iter().map(|a| if redacted { "******".to_string() } else { text(a) }).collect();
            self.env.event(Level::Warning, "+set", format!("{desc} {} {}", text(&args[start]), shown.join(" ")));
            j += 1;
        }
        if failed {
            if changes > 0 {
                let _ = self.flush_config();
            }
        } else if changes > 0 {
            self.flush_reply(out);
        } else {
            out.error("ERR wrong number of arguments for 'sentinel|set' command");
        }
    }

    fn config_set(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf) {
        let option = text(&args[3]).to_ascii_lowercase();
        let val = text(&args[4]);
        let badfmt = |out: &mut ReplyBuf| {
            out.error(&format!("ERR Invalid value '{val}' to SENTINEL CONFIG SET '{}'", text(&args[3])))
        };
        let yes_no = |v: &str| match v.to_ascii_lowercase().as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        let settings = &mut self.env.settings;
        let mut drop_sentinel_links = false;
        match option.as_str() {
            "resolve-hostnames" => match yes_no(&val) {
                Some(v) => settings.resolve_hostnames = v,
                None => return badfmt(out),
            },
            "announce-hostnames" => match yes_no(&val) {
                Some(v) => settings.announce_hostnames = v,
                None => return badfmt(out),
            },
            "announce-ip" => settings.announce_ip = Some(val.clone()).filter(|v| !v.is_empty()),
            "announce-port" => match parse_i64(val.as_bytes()).filter(|p| (0..=65535).contains(p)) {
                Some(p) => settings.announce_port = p as u16,
                None => return badfmt(out),
            },
            "sentinel-user" => {
                settings.sentinel_user = Some(val.clone()).filter(|v| !v.is_empty());
                drop_sentinel_links = true;
            }
            "sentinel-pass" => {
                settings.sentinel_pass = Some(val.clone()).filter(|v| !v.is_empty());
                drop_sentinel_links = true;
            }
            _ => {
                return out.error(&format!("ERR Invalid argument '{}' to SENTINEL CONFIG SET", text(&args[3])));
            }
        }
        self.flush_reply(out);
        if drop_sentinel_links {
            for m in self.masters.values_mut() {
                for s in m.sentinels.values_mut() {
                    self.env.close_instance_links(s);
                }
            }
        }
    }

    fn config_get(&self, pattern: &[u8], out: &mut ReplyBuf) {
        let st = &self.env.settings;
        let yn = |b: bool| if b { "yes".to_string() } else { "no".to_string() };
        let all = [
            ("resolve-hostnames", yn(st.resolve_hostnames)),
            ("announce-hostnames", yn(st.announce_hostnames)),
            ("announce-ip", st.announce_ip.clone().unwrap_or_default()),
            ("announce-port", st.announce_port.to_string()),
            ("sentinel-user", st.sentinel_user.clone().unwrap_or_default()),
            ("sentinel-pass", st.sentinel_pass.clone().unwrap_or_default()),
        ];
        let hits: Vec<&(&str, String)> =
            all.iter().filter(|(k, _)| ferrokv_keyspace::glob::glob_match(pattern, k.as_bytes(), true)).collect();
        out.map(hits.len());
        for (k, v) in hits {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
    }

    fn info_cache(&self, args: &[Vec<u8>], out: &mut ReplyBuf, now: i64) {
        let wanted: Vec<&Master> = if args.len() > 2 {
            let mut v: Vec<&Master> = Vec::new();
            for a in &args[2..] {
                if let Some(m) = self.masters.get(&text(a)) {
                    if !v.iter().any(|x| x.name() == m.name()) {
                        v.push(m);
                    }
                }
            }
            v
        } else {
            self.masters.values().collect()
        };
        out.array(wanted.len() * 2);
        for m in wanted {
            out.bulk(m.name().as_bytes());
            out.array(m.replicas.len() + 1);
            for i in std::iter::once(&m.inst).chain(m.replicas.values()) {
                out.array(2);
                out.int(if m.inst.info_refresh != 0 { now - i.info_refresh } else { 0 });
                match &i.info {
                    Some(t) => out.bulk(t.as_bytes()),
                    None => out.null(),
                }
            }
        }
    }

    fn debug_set(&mut self, args: &[Vec<u8>], out: &mut ReplyBuf) {
        let mut j = 2;
        let mut staged = self.env.timing.clone();
        while j < args.len() {
            let option = text(&args[j]);
            let Some(slot) = staged.field_mut(&option).filter(|_| j + 1 < args.len()) else {
                return out.error(&format!("ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'"));
            };
            j += 1;
            match parse_i64(&args[j]).filter(|v| *v > 0) {
                Some(v) => *slot = v,
                None => {
                    return out
                        .error(&format!("ERR Invalid argument '{}' for SENTINEL DEBUG '{option}'", text(&args[j])))
                }
            }
            j += 1;
        }
        self.env.timing = staged;
        out.ok();
    }
}
