//! `--cluster`: redis-cli's cluster manager, for the subcommands `create`, `check`,
//! `info` and `help`. The logic that decides (the layout of a new cluster, reading
//! CLUSTER NODES, whether nodes agree) is pure, in [`plan`] and [`nodes`]; this module
//! and [`create`] and [`check`] talk to the nodes, one blocking connection each, with
//! the client's `-a`/`--user`/`--tls` options, and print what redis-cli prints (to
//! stdout, coloured when TERM names an xterm, as redis-cli does).

pub mod check;
pub mod create;
pub mod nodes;
pub mod plan;

use crate::conn::{os_error_text, Conn, Target};
use crate::options::{ClusterOptions, ConnInfo, Options};
use crate::session::emit;
use ferrokv_resp::Frame;
use std::time::Duration;

/// No reply from a node may take longer than this: a node that stopped answering makes
/// the manager fail instead of hanging.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

const INVALID_HOST_ARG: &str = "[ERR] Invalid arguments: you need to pass either a valid address (ie. 120.0.0.1:7000) or space separated IP and port (ie. 120.0.0.1 7000)";

/// Runs `--cluster <command>`; returns the exit status.
pub fn main(opts: &Options) -> i32 {
    let c = &opts.cluster;
    let Some(name) = c.command.as_deref() else { return 1 };
    // The subcommands and their arity (negative: at least that many arguments).
    let arity = match name {
        "create" => -2,
        "check" | "info" => -1,
        "help" => 0,
        "fix" | "reshard" | "rebalance" | "add-node" | "del-node" | "call" | "set-timeout" | "import" | "backup" => {
            eprintln!("--cluster {name} is not supported by ferrokv cli (supported: create, check, info, help).");
            return 1;
        }
        _ => {
            eprintln!("Unknown --cluster subcommand");
            return 1;
        }
    };
    let argc = c.args.len() as i64;
    if (arity >= 0 && argc != arity) || (arity < 0 && argc < -arity) {
        eprintln!("[ERR] Wrong number of arguments for specified --cluster sub command");
        return 1;
    }
    let ctx = Ctx { conn: opts.conn.clone(), log: Log::from_env(), cluster: c.clone() };
    let ok = match name {
        "create" => create::run(&ctx),
        "check" => check::run_check(&ctx),
        "info" => check::run_info(&ctx),
        _ => {
            eprint!("{}", help());
            true
        }
    };
    if ok {
        0
    } else {
        1
    }
}

fn help() -> String {
    "Cluster Manager Commands:
  create         host1:port1 ... hostN:portN
                 --cluster-replicas <arg>
  check          <host:port> or <host> <port> - separated by either colon or space
  info           <host:port> or <host> <port> - separated by either colon or space
  help           

For check and info you can specify the host and port of any working node in the cluster.

Cluster Manager Options:
  --cluster-yes  Automatic yes to cluster commands prompts

(ferrokv cli implements create, check, info and help of redis-cli's cluster manager.)
"
    .to_string()
}

/// What every step needs: how to connect, how to print, the subcommand's options.
pub struct Ctx {
    pub conn: ConnInfo,
    pub log: Log,
    pub cluster: ClusterOptions,
}

/// redis-cli's cluster manager messages: stdout, each level in its colour when enabled.
pub struct Log {
    colors: bool,
}

impl Log {
    /// redis-cli colours its cluster manager output when TERM contains "xterm", whether
    /// or not stdout is a terminal.
    pub fn from_env() -> Log {
        Log { colors: std::env::var("TERM").is_ok_and(|t| t.contains("xterm")) }
    }

    fn print(&self, code: &str, text: &str) {
        let out = if self.colors { format!("\x1b[{code}{text}\x1b[0m") } else { text.to_string() };
        let _ = emit(out.as_bytes());
    }

    pub fn info(&self, text: &str) {
        self.print("29;1m", text);
    }
    pub fn warn(&self, text: &str) {
        self.print("33;1m", text);
    }
    pub fn err(&self, text: &str) {
        self.print("31;1m", text);
    }
    pub fn ok(&self, text: &str) {
        self.print("32;1m", text);
    }
}

/// Plain output (plans, node lists, the dots while waiting).
pub fn out(text: &str) {
    let _ = emit(text.as_bytes());
}

/// Why a command to a node failed.
#[derive(Debug)]
pub enum Failure {
    /// The node replied with an error.
    Reply(String),
    /// The connection failed or the reply was not what the command returns.
    Io(String),
}

/// A connection to one node of the cluster.
pub struct Link {
    pub host: String,
    pub port: u16,
    conn: Conn,
}

impl Link {
    /// Connects and authenticates as the options say; reports a failure as redis-cli
    /// does and returns None.
    pub fn open(ctx: &Ctx, host: &str, port: u16) -> Option<Link> {
        let target = Target::Tcp { host: host.to_string(), port: i64::from(port) };
        let conn = match Conn::connect(&target) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Could not connect to Redis at {host}:{port}: {}", os_error_text(&e));
                return None;
            }
        };
        let _ = conn.set_read_timeout(Some(REPLY_TIMEOUT));
        let mut link = Link { host: host.to_string(), port, conn };
        if let Some(auth) = ctx.conn.auth.clone() {
            let reply = match ctx.conn.user.clone() {
                Some(user) => link.call(&[b"AUTH", &user, &auth]),
                None => link.call(&[b"AUTH", &auth]),
            };
            if let Err(e) = reply {
                link.report(&ctx.log, &e);
                return None;
            }
        }
        Some(link)
    }

    /// The IP address this connection reached.
    pub fn peer_ip(&self) -> Option<String> {
        self.conn.peer_addr().map(|a| a.ip().to_string())
    }

    /// `host:port` as given (or as CLUSTER NODES shows it).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Sends a command; an error reply is a `Failure::Reply`.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Frame, Failure> {
        match self.conn.call(args) {
            Ok(Frame::Error(e)) => Err(Failure::Reply(String::from_utf8_lossy(&e).into_owned())),
            Ok(reply) => Ok(reply),
            Err(e) => Err(Failure::Io(e.to_string())),
        }
    }

    /// A command whose reply is text (INFO, CLUSTER NODES, OK).
    pub fn text(&mut self, args: &[&[u8]]) -> Result<String, Failure> {
        match self.call(args)? {
            Frame::Verbatim { text, .. } => Ok(String::from_utf8_lossy(&text).into_owned()),
            reply => match reply.as_bytes() {
                Some(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                None => Err(Failure::Io(format!("unexpected reply to {}", String::from_utf8_lossy(args[0])))),
            },
        }
    }

    /// Prints a failure the way redis-cli prints a node's error reply.
    pub fn report(&self, log: &Log, failure: &Failure) {
        match failure {
            Failure::Reply(e) => log.err(&format!("Node {} replied with error:\n{e}\n", self.addr())),
            Failure::Io(e) => log.err(&format!("[ERR] Node {}: {e}\n", self.addr())),
        }
    }

    /// INFO's `cluster_enabled:1`.
    pub fn is_cluster(&mut self, log: &Log) -> bool {
        match self.text(&[b"INFO"]) {
            Ok(info) => {
                let enabled = nodes::info_field(&info, "cluster_enabled") == Some("1");
                if !enabled {
                    log.err(&format!("[ERR] Node {} is not configured as a cluster node.\n", self.addr()));
                }
                enabled
            }
            Err(e) => {
                let msg = match e {
                    Failure::Reply(e) | Failure::Io(e) => e,
                };
                log.err(&format!("[ERR] Node {} {msg}\n", self.addr()));
                false
            }
        }
    }

    /// The node's CLUSTER NODES, read.
    pub fn cluster_nodes(&mut self) -> Result<Vec<nodes::NodeLine>, Failure> {
        let text = self.text(&[b"CLUSTER", b"NODES"])?;
        nodes::parse_cluster_nodes(&text).map_err(Failure::Io)
    }
}

/// The node's own line of its CLUSTER NODES.
pub fn myself(lines: &[nodes::NodeLine]) -> Option<&nodes::NodeLine> {
    lines.iter().find(|l| l.is_myself())
}

/// Whether every node sees the same slot owners (redis-cli's consistency test).
pub fn config_consistent(links: Vec<&mut Link>) -> bool {
    if links.len() <= 1 {
        return true;
    }
    let mut first: Option<String> = None;
    for link in links {
        let Some(sig) = link.cluster_nodes().ok().and_then(|l| nodes::config_signature(&l)) else { return false };
        match &first {
            None => first = Some(sig),
            Some(f) if *f != sig => return false,
            Some(_) => {}
        }
    }
    true
}

/// `host:port`, or `host port` as two arguments (check, info).
pub fn host_port_args(args: &[String]) -> Option<(String, u16)> {
    let (host, port) = match args {
        [addr] => {
            let (host, port, _) = nodes::parse_address(addr)?;
            (host, port)
        }
        [host, port, ..] => (host.clone(), crate::options::atoi(port.as_bytes()).clamp(0, 65535) as u16),
        [] => return None,
    };
    (port != 0 && !host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_arguments() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(host_port_args(&s(&["h:7000"])), Some(("h".into(), 7000)));
        assert_eq!(host_port_args(&s(&["h", "7000"])), Some(("h".into(), 7000)));
        assert_eq!(host_port_args(&s(&["h"])), None);
        assert_eq!(host_port_args(&s(&["h:0"])), None);
    }
}
