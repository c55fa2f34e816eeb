//! The commands a Sentinel serves besides SENTINEL itself: PING, AUTH, HELLO, CLIENT,
//! INFO, COMMAND, ACL (in `acl_cmd`), the SUBSCRIBE family, QUIT and SHUTDOWN, with
//! Redis's replies. Sentinel state commands (SENTINEL, ROLE, PUBLISH) go to the state
//! machine. Every command passes the ACL check of the user the client is logged in as.

use super::hub::{now_ms, ClientId, Hub, Shared};
use ferrokv_resp::ReplyBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Close,
    Shutdown,
}

pub struct Session {
    pub id: ClientId,
    pub authenticated: bool,
    pub resp3: bool,
    /// The ACL user (`default` until AUTH says otherwise).
    pub user: String,
    /// Close once this reply is written (the user was deleted).
    pub close_after_reply: bool,
}

impl Session {
    pub fn new(id: ClientId, authenticated: bool) -> Session {
        Session { id, authenticated, resp3: false, user: "default".into(), close_after_reply: false }
    }
}

/// name, arity, flags: what COMMAND reports for the commands a sentinel knows.
const COMMANDS: &[(&str, i64, &[&str])] = &[
    ("acl", -2, &[]),
    ("auth", -2, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]),
    ("client", -2, &[]),
    ("command", -1, &["loading", "stale"]),
    ("hello", -1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]),
    ("info", -1, &["loading", "stale"]),
    ("ping", -1, &["fast"]),
    ("psubscribe", -2, &["pubsub", "noscript", "loading", "stale"]),
    ("publish", 3, &["pubsub", "loading", "stale", "fast"]),
    ("punsubscribe", -1, &["pubsub", "noscript", "loading", "stale"]),
    ("quit", -1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]),
    ("role", 1, &["noscript", "loading", "stale", "fast"]),
    ("sentinel", -2, &["admin", "sentinel", "only_sentinel"]),
    ("shutdown", -1, &["admin", "noscript", "loading", "stale", "no_multi", "sentinel", "allow_busy"]),
    ("subscribe", -2, &["pubsub", "noscript", "loading", "stale"]),
    ("unsubscribe", -1, &["pubsub", "noscript", "loading", "stale"]),
];

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

fn arity_ok(name: &str, argc: usize) -> Option<bool> {
    COMMANDS.iter().find(|(n, _, _)| *n == name).map(|(_, a, _)| {
        let a = *a;
        if a >= 0 {
            argc as i64 == a
        } else {
            argc as i64 >= -a
        }
    })
}

pub fn execute(hub: &mut Hub, shared: &Shared, sess: &mut Session, argv: &[Vec<u8>], out: &mut ReplyBuf) -> Action {
    let Some(first) = argv.first() else {
        return Action::Continue;
    };
    let name = text(first).to_ascii_lowercase();
    hub.stats.commands += 1;
    let now = now_ms();
    if let Some(c) = hub.clients.get_mut(&sess.id) {
        // CLIENT LIST names container commands with their subcommand, as Redis does.
        c.last_cmd = match argv.get(1) {
            Some(sub) if matches!(name.as_str(), "acl" | "client" | "sentinel" | "command") => {
                format!("{name}|{}", text(sub).to_ascii_lowercase())
            }
            _ => name.clone(),
        };
        c.last_interaction_ms = now;
    }
    let Some(arity) = arity_ok(&name, argv.len()) else {
        let mut args = String::new();
        for a in argv.iter().skip(1) {
            args.push_str(&format!("'{}' ", text(&a[..a.len().min(128)])));
        }
        out.error(&format!("ERR unknown command '{}', with args beginning with: {args}", text(first)));
        return Action::Continue;
    };
    if !arity {
        out.error(&format!("ERR wrong number of arguments for '{name}' command"));
        return Action::Continue;
    }
    if !sess.authenticated && !matches!(name.as_str(), "auth" | "hello" | "quit") {
        out.error("NOAUTH Authentication required.");
        return Action::Continue;
    }
    if let Some(err) = super::acl_cmd::check_permission(hub, sess, argv) {
        out.error(&err);
        return Action::Continue;
    }
    let subscribed = hub.clients.get(&sess.id).is_some_and(|c| c.subscriptions() > 0);
    if subscribed
        && !sess.resp3
        && !matches!(name.as_str(), "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit")
    {
        out.error(&format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
        return Action::Continue;
    }
    match name.as_str() {
        "ping" => ping(argv, out, subscribed && !sess.resp3),
        "quit" => {
            out.ok();
            return Action::Close;
        }
        "auth" => auth(hub, sess, argv, out),
        "acl" => {
            super::acl_cmd::acl(hub, sess, argv, out);
            if sess.close_after_reply {
                return Action::Close;
            }
        }
        "hello" => hello(hub, sess, argv, out),
        "client" => return client(hub, sess, argv, out),
        "info" => out.bulk(super::info::render(hub, argv, now).as_bytes()),
        "command" => command(argv, out),
        "subscribe" | "psubscribe" => subscribe(hub, sess, argv, out, name == "psubscribe"),
        "unsubscribe" | "punsubscribe" => unsubscribe(hub, sess, argv, out, name == "punsubscribe"),
        "shutdown" => {
            let _ = hub.core.flush_config();
            hub.dispatch(shared);
            log::warn!("User requested shutdown...");
            return Action::Shutdown;
        }
        _ => {
            hub.core.command(argv, out, now);
        }
    }
    Action::Continue
}

fn ping(argv: &[Vec<u8>], out: &mut ReplyBuf, subscribed_resp2: bool) {
    if argv.len() > 2 {
        return out.error("ERR wrong number of arguments for 'ping' command");
    }
    if subscribed_resp2 {
        out.array(2);
        out.bulk(b"pong");
        out.bulk(argv.get(1).map(Vec::as_slice).unwrap_or(b""));
    } else if let Some(m) = argv.get(1) {
        out.bulk(m);
    } else {
        out.simple("PONG");
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(hub: &mut Hub, sess: &mut Session, argv: &[Vec<u8>], out: &mut ReplyBuf) {
    if argv.len() > 3 {
        return out.error("ERR syntax error");
    }
    if argv.len() == 2 && hub.acl.lock().default_needs_no_auth() {
        return out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    let (user, pass) = if argv.len() == 3 { (text(&argv[1]), &argv[2]) } else { ("default".into(), &argv[1]) };
    if super::acl_cmd::authenticate(hub, sess, &argv[0], &user, pass) {
        out.ok();
    } else {
        out.error(WRONGPASS);
    }
}

fn hello(hub: &mut Hub, sess: &mut Session, argv: &[Vec<u8>], out: &mut ReplyBuf) {
    let mut proto = if sess.resp3 { 3 } else { 2 };
    let mut i = 1;
    if let Some(v) = argv.get(1) {
        match ferrokv_resp::parse_i64(v) {
            Some(p @ (2 | 3)) => proto = p,
            Some(_) => return out.error("NOPROTO unsupported protocol version"),
            None => return out.error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut setname = None;
    while i < argv.len() {
        let opt = text(&argv[i]).to_ascii_lowercase();
        if opt == "auth" && i + 2 < argv.len() {
            if !super::acl_cmd::authenticate(hub, sess, &argv[0], &text(&argv[i + 1]), &argv[i + 2]) {
                return out.error(WRONGPASS);
            }
            i += 3;
        } else if opt == "setname" && i + 1 < argv.len() {
            setname = Some(text(&argv[i + 1]));
            i += 2;
        } else {
            return out.error(&format!("ERR Syntax error in HELLO option '{}'", text(&argv[i])));
        }
    }
    if !sess.authenticated {
        return out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    sess.resp3 = proto == 3;
    out.set_resp3(sess.resp3);
    if let Some(c) = hub.clients.get_mut(&sess.id) {
        c.resp3 = sess.resp3;
        if let Some(n) = setname {
            c.name = n;
        }
    }
    // In sentinel mode Redis leaves out the `role` field.
    out.map(6);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(ferrokv_config::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(proto);
    out.bulk(b"id");
    out.int(sess.id as i64);
    out.bulk(b"mode");
    out.bulk(b"sentinel");
    out.bulk(b"modules");
    out.array(0);
}

/// The client's CLIENT LIST line (also the ACL LOG's client-info).
pub(super) fn client_line(hub: &Hub, id: ClientId, now: i64) -> String {
    let Some(c) = hub.clients.get(&id) else {
        return String::new();
    };
    format!(
        "id={id} addr={} laddr={} fd={} name={} age={} idle={} flags=N db=0 sub={} psub={} ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
        c.addr,
        c.laddr,
        c.fd,
        c.name,
        (now - c.created_ms) / 1000,
        (now - c.last_interaction_ms) / 1000,
        c.channels.len(),
        c.patterns.len(),
        c.last_cmd,
        c.user,
        if c.resp3 { 3 } else { 2 }
    )
}

fn client(hub: &mut Hub, sess: &mut Session, argv: &[Vec<u8>], out: &mut ReplyBuf) -> Action {
    let sub = text(&argv[1]).to_ascii_lowercase();
    let now = now_ms();
    match (sub.as_str(), argv.len()) {
        ("id", 2) => out.int(sess.id as i64),
        ("getname", 2) => match hub.clients.get(&sess.id).map(|c| c.name.clone()).filter(|n| !n.is_empty()) {
            Some(n) => out.bulk(n.as_bytes()),
            None => out.null(),
        },
        ("setname", 3) => {
            if argv[2].iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                out.error("ERR Client names cannot contain spaces, newlines or special characters.");
            } else {
                if let Some(c) = hub.clients.get_mut(&sess.id) {
                    c.name = text(&argv[2]);
                }
                out.ok();
            }
        }
        ("info", 2) => {
            let line = client_line(hub, sess.id, now) + "\n";
            out.verbatim(line.as_bytes(), "txt");
        }
        ("list", _) => {
            let mut ids: Vec<ClientId> = hub.clients.keys().copied().collect();
            ids.sort_unstable();
            let text: String = ids.iter().map(|&i| client_line(hub, i, now) + "\n").collect();
            out.verbatim(text.as_bytes(), "txt");
        }
        ("kill", 3) => {
            let target = text(&argv[2]);
            match hub.clients.iter().find(|(_, c)| c.addr == target).map(|(k, _)| *k) {
                Some(k) => {
                    kill(hub, k);
                    out.ok();
                    if k == sess.id {
                        return Action::Close;
                    }
                }
                None => out.error("ERR No such client"),
            }
        }
        ("kill", n) if n >= 4 && n % 2 == 0 => {
            let mut victims: Vec<ClientId> = hub.clients.keys().copied().collect();
            let mut skipme = true;
            for pair in argv[2..].chunks(2) {
                let (k, v) = (text(&pair[0]).to_ascii_lowercase(), text(&pair[1]));
                match k.as_str() {
                    "id" => match v.parse::<u64>() {
                        Ok(i) => victims.retain(|x| *x == i),
                        Err(_) => {
                            out.error("ERR client-id should be greater than 0");
                            return Action::Continue;
                        }
                    },
                    "addr" => victims.retain(|x| hub.clients.get(x).is_some_and(|c| c.addr == v)),
                    "laddr" => victims.retain(|x| hub.clients.get(x).is_some_and(|c| c.laddr == v)),
                    "type" => match v.to_ascii_lowercase().as_str() {
                        "normal" => victims.retain(|x| hub.clients.get(x).is_some_and(|c| c.subscriptions() == 0)),
                        "pubsub" => victims.retain(|x| hub.clients.get(x).is_some_and(|c| c.subscriptions() > 0)),
                        "master" | "replica" | "slave" => victims.clear(),
                        _ => {
                            out.error(&format!("ERR Unknown client type '{v}'"));
                            return Action::Continue;
                        }
                    },
                    "skipme" => match v.to_ascii_lowercase().as_str() {
                        "yes" => skipme = true,
                        "no" => skipme = false,
                        _ => {
                            out.error("ERR syntax error");
                            return Action::Continue;
                        }
                    },
                    "user" => {
                        if !hub.acl.lock().exists(&v) {
                            out.error(&format!("ERR No such user '{v}'"));
                            return Action::Continue;
                        }
                        victims.retain(|x| hub.clients.get(x).is_some_and(|c| c.user == v));
                    }
                    _ => {
                        out.error("ERR syntax error");
                        return Action::Continue;
                    }
                }
            }
            if skipme {
                victims.retain(|x| *x != sess.id);
            }
            for v in &victims {
                kill(hub, *v);
            }
            out.int(victims.len() as i64);
            if victims.contains(&sess.id) {
                return Action::Close;
            }
        }
        ("help", 2) => {
            let help = [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "ID",
                "INFO",
                "KILL <ip:port> | <option> <value> [<option> <value> [...]]",
                "LIST",
                "SETNAME <name>",
                "HELP",
            ];
            out.array(help.len());
            for h in help {
                out.simple(h);
            }
        }
        _ => out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            text(&argv[1])
        )),
    }
    Action::Continue
}

pub(super) fn kill(hub: &mut Hub, id: ClientId) {
    if let Some(c) = hub.clients.get_mut(&id) {
        c.killed = true;
        c.kill.notify_one();
    }
}

fn command(argv: &[Vec<u8>], out: &mut ReplyBuf) {
    let sub = argv.get(1).map(|s| text(s).to_ascii_lowercase());
    let entry = |out: &mut ReplyBuf, (name, arity, flags): &(&str, i64, &[&str])| {
        out.array(10);
        out.bulk(name.as_bytes());
        out.int(*arity);
        out.set(flags.len());
        for f in flags.iter() {
            out.simple(f);
        }
        out.int(0);
        out.int(0);
        out.int(0);
        out.set(0);
        out.set(0);
        out.array(0);
        out.array(0);
    };
    match sub.as_deref() {
        None => {
            out.array(COMMANDS.len());
            for c in COMMANDS {
                entry(out, c);
            }
        }
        Some("count") => out.int(COMMANDS.len() as i64),
        Some("info") => {
            out.array(argv.len() - 2);
            for a in &argv[2..] {
                let n = text(a).to_ascii_lowercase();
                match COMMANDS.iter().find(|c| c.0 == n) {
                    Some(c) => entry(out, c),
                    None => out.null_array(),
                }
            }
        }
        Some("docs") => out.map(0),
        Some("list") => {
            out.array(COMMANDS.len());
            for c in COMMANDS {
                out.bulk(c.0.as_bytes());
            }
        }
        Some(_) => out.error(&format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            text(argv.get(1).map(Vec::as_slice).unwrap_or(b""))
        )),
    }
}

fn subscribe(hub: &mut Hub, sess: &Session, argv: &[Vec<u8>], out: &mut ReplyBuf, pattern: bool) {
    let Some(c) = hub.clients.get_mut(&sess.id) else {
        return;
    };
    for ch in &argv[1..] {
        if pattern {
            c.patterns.insert(ch.clone());
        } else {
            c.channels.insert(ch.clone());
        }
        out.push(3);
        out.bulk(if pattern { b"psubscribe" } else { b"subscribe" });
        out.bulk(ch);
        out.int(c.subscriptions() as i64);
    }
}

fn unsubscribe(hub: &mut Hub, sess: &Session, argv: &[Vec<u8>], out: &mut ReplyBuf, pattern: bool) {
    let Some(c) = hub.clients.get_mut(&sess.id) else {
        return;
    };
    let kind: &[u8] = if pattern { b"punsubscribe" } else { b"unsubscribe" };
    let names: Vec<Vec<u8>> = if argv.len() > 1 {
        argv[1..].to_vec()
    } else if pattern {
        c.patterns.iter().cloned().collect()
    } else {
        c.channels.iter().cloned().collect()
    };
    if names.is_empty() {
        out.push(3);
        out.bulk(kind);
        out.null();
        out.int(c.subscriptions() as i64);
        return;
    }
    for ch in names {
        if pattern {
            c.patterns.remove(&ch);
        } else {
            c.channels.remove(&ch);
        }
        out.push(3);
        out.bulk(kind);
        out.bulk(&ch);
        out.int(c.subscriptions() as i64);
    }
}
