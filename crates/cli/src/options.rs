//! The command line, parsed the way redis-cli parses it: options come first, each takes
//! its value from the next argument (`-a pass`, `-n 2`, `-r -1`), and the first argument
//! that is not an option starts the command. Numbers are read leniently, as C's `atoi`
//! and `atof` read them (`-p abc` is port 0), because scripts written for redis-cli rely
//! on what it accepts. Hand-written because clap would treat `-r -1` as two options.

use crate::conn::Target;
use crate::format::{Delimiters, OutputMode};
use crate::uri;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// Where and as whom to connect; `-u` fills several fields at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub host: String,
    pub port: i64,
    /// A unix socket overrides host and port.
    pub socket: Option<PathBuf>,
    pub user: Option<Vec<u8>>,
    pub auth: Option<Vec<u8>>,
    /// The database to select after connecting.
    pub dbnum: i64,
    /// `--tls` (or `-u rediss://`) and its options.
    pub tls: Option<TlsOptions>,
}

/// redis-cli's TLS options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    pub sni: Option<String>,
    pub cacert: Option<String>,
    pub cacertdir: Option<String>,
    pub insecure: bool,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
}

impl Default for ConnInfo {
    fn default() -> Self {
        ConnInfo { host: "127.0.0.1".into(), port: 6379, socket: None, user: None, auth: None, dbnum: 0, tls: None }
    }
}

impl ConnInfo {
    pub fn target(&self) -> Target {
        match &self.socket {
            Some(path) => Target::Unix(path.clone()),
            None => Target::Tcp { host: self.host.clone(), port: self.port },
        }
    }
}

/// What the process does besides sending commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A one-shot command, or the interactive prompt when there is none.
    Commands,
    Scan,
    Pipe,
    Stat,
    Latency {
        history: bool,
    },
    BigKeys,
    /// `--cluster <command>`: the cluster manager.
    Cluster,
}

/// `--cluster <command> [args]` and the `--cluster-*` options that go with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterOptions {
    pub command: Option<String>,
    pub args: Vec<String>,
    /// `--cluster-replicas`: replicas per master for `create`.
    pub replicas: i64,
    /// `--cluster-yes` (or REDISCLI_CLUSTER_YES=1): no confirmation prompts.
    pub yes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub conn: ConnInfo,
    /// How many times to send the command; negative means forever.
    pub repeat: i64,
    /// Pause after each command (`-i`), also the period of --stat, --scan, --latency.
    pub interval: Duration,
    pub output: OutputMode,
    /// Print RESP3 pushes that arrive outside pub/sub (default: when stdout is a terminal).
    pub push_output: bool,
    pub delims: Delimiters,
    pub resp2: bool,
    pub resp3: bool,
    /// `-x`: the last argument is read from stdin.
    pub stdin_last_arg: bool,
    /// `-X tag`: the argument equal to `tag` is replaced by stdin.
    pub stdin_tag: Option<Vec<u8>>,
    pub askpass: bool,
    pub no_auth_warning: bool,
    /// `-e`: an error reply makes the exit status 1.
    pub exit_on_error: bool,
    /// `--quoted-input`: each argument is written with redis-cli's quoting rules.
    pub quoted_input: bool,
    /// `-c`: follow MOVED and ASK redirections to the node they name.
    pub follow_redirects: bool,
    pub mode: Mode,
    pub pattern: Option<Vec<u8>>,
    /// `--pipe`: give up this many seconds after the last reply (0: wait forever).
    pub pipe_timeout: i64,
    /// TLS options seen on the command line, merged into `conn.tls` if TLS is on.
    pub tls_options: Option<TlsOptions>,
    pub cluster: ClusterOptions,
}

impl Options {
    /// The defaults; raw output unless stdout is a terminal.
    pub fn new(stdout_is_tty: bool) -> Options {
        Options {
            conn: ConnInfo::default(),
            repeat: 1,
            interval: Duration::ZERO,
            output: if stdout_is_tty { OutputMode::Standard } else { OutputMode::Raw },
            push_output: stdout_is_tty,
            delims: Delimiters::default(),
            resp2: false,
            resp3: false,
            stdin_last_arg: false,
            stdin_tag: None,
            askpass: false,
            no_auth_warning: false,
            exit_on_error: false,
            quoted_input: false,
            follow_redirects: false,
            mode: Mode::Commands,
            pattern: None,
            pipe_timeout: 30,
            tls_options: None,
            cluster: ClusterOptions::default(),
        }
    }

    /// A password given on the command line is visible to other users (ps, history).
    pub fn warn_about_password(&self) -> bool {
        !self.no_auth_warning && self.conn.auth.is_some()
    }
}

/// The outcome of parsing.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run {
        options: Box<Options>,
        command: Vec<Vec<u8>>,
    },
    Usage,
    Version,
    /// A message for stderr, then exit status 1.
    Fail(String),
}

/// Options redis-cli has that this client does not implement (yet): refused by name
/// rather than "unrecognized", so the user knows it is a known gap.
const UNSUPPORTED: &[&str] = &[
    "--csv",
    "--json",
    "--quoted-json",
    "--rdb",
    "--functions-rdb",
    "--replica",
    "--slave",
    "--memkeys",
    "--memkeys-samples",
    "--hotkeys",
    "--eval",
    "--ldb",
    "--ldb-sync-mode",
    "--lru-test",
    "--intrinsic-latency",
    "--latency-dist",
    "--verbose",
];

pub fn parse(args: &[Vec<u8>], stdout_is_tty: bool) -> Parsed {
    let mut o = Options::new(stdout_is_tty);
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_slice();
        let has_value = i + 1 < args.len();
        let value = || args.get(i + 1).map(Vec::as_slice).unwrap_or_default();
        let text = || String::from_utf8_lossy(value()).into_owned();
        if arg == b"--cluster" {
            // The subcommand, then its arguments up to the next option.
            if !has_value || o.cluster.command.is_some() {
                return Parsed::Fail(usage(&crate::version()).trim_end().to_string());
            }
            o.cluster.command = Some(text());
            o.mode = Mode::Cluster;
            i = take_cluster_args(args, i + 2, &mut o.cluster);
            continue;
        }
        // Options with a value consume it; the match tells whether it did.
        let took_value = match arg {
            b"-h" if has_value => {
                o.conn.host = text();
                true
            }
            b"-h" | b"--help" => return Parsed::Usage,
            b"-v" | b"--version" => return Parsed::Version,
            b"-x" => {
                o.stdin_last_arg = true;
                false
            }
            b"-X" if has_value => {
                o.stdin_tag = Some(value().to_vec());
                true
            }
            b"-p" if has_value => {
                o.conn.port = atoi(value());
                true
            }
            b"-s" if has_value => {
                // Paths are bytes on unix: a non-UTF-8 socket path stays intact.
                o.conn.socket = Some(PathBuf::from(std::ffi::OsStr::from_bytes(value())));
                true
            }
            b"-r" if has_value => {
                o.repeat = atoi(value());
                true
            }
            b"-i" if has_value => {
                let seconds = atof(value());
                o.interval = if seconds > 0.0 && seconds.is_finite() {
                    Duration::from_micros((seconds * 1e6) as u64)
                } else {
                    Duration::ZERO
                };
                true
            }
            b"-n" if has_value => {
                o.conn.dbnum = atoi(value());
                true
            }
            b"--no-auth-warning" => {
                o.no_auth_warning = true;
                false
            }
            b"--askpass" => {
                o.askpass = true;
                false
            }
            b"-a" | b"--pass" if has_value => {
                o.conn.auth = Some(value().to_vec());
                true
            }
            b"--tls" => {
                o.conn.tls.get_or_insert_with(TlsOptions::default);
                false
            }
            b"--insecure" => {
                o.tls_options.get_or_insert_with(TlsOptions::default).insecure = true;
                false
            }
            b"--sni"
            | b"--cacert"
            | b"--cacertdir"
            | b"--cert"
            | b"--key"
            | b"--tls-ciphers"
            | b"--tls-ciphersuites"
                if has_value =>
            {
                // redis-cli takes these without --tls too; they matter only with it.
                let t = o.tls_options.get_or_insert_with(TlsOptions::default);
                let field = match arg {
                    b"--sni" => &mut t.sni,
                    b"--cacert" => &mut t.cacert,
                    b"--cacertdir" => &mut t.cacertdir,
                    b"--cert" => &mut t.cert,
                    b"--key" => &mut t.key,
                    b"--tls-ciphers" => &mut t.ciphers,
                    _ => &mut t.ciphersuites,
                };
                *field = Some(text());
                true
            }
            b"--user" if has_value => {
                o.conn.user = Some(value().to_vec());
                true
            }
            b"-u" if has_value => {
                if let Err(msg) = uri::apply(value(), &mut o.conn) {
                    return Parsed::Fail(msg);
                }
                true
            }
            b"--raw" => {
                o.output = OutputMode::Raw;
                false
            }
            b"--no-raw" => {
                o.output = OutputMode::Standard;
                false
            }
            b"--quoted-input" => {
                o.quoted_input = true;
                false
            }
            b"--latency" => {
                o.mode = Mode::Latency { history: false };
                false
            }
            b"--latency-history" => {
                o.mode = Mode::Latency { history: true };
                false
            }
            b"--stat" => {
                o.mode = Mode::Stat;
                false
            }
            b"--scan" => {
                o.mode = Mode::Scan;
                false
            }
            b"--pattern" if has_value => {
                o.pattern = Some(value().to_vec());
                true
            }
            b"--quoted-pattern" if has_value => {
                match ferrokv_resp::args::split_args(value()) {
                    Ok(mut parts) if parts.len() == 1 => o.pattern = parts.pop(),
                    _ => return Parsed::Fail("Invalid quoted string specified for --quoted-pattern.".into()),
                }
                true
            }
            b"--pipe" => {
                o.mode = Mode::Pipe;
                false
            }
            b"--pipe-timeout" if has_value => {
                o.pipe_timeout = atoi(value());
                true
            }
            b"--bigkeys" => {
                o.mode = Mode::BigKeys;
                false
            }
            b"--cluster-replicas" if has_value => {
                o.cluster.replicas = atoi(value());
                true
            }
            b"--cluster-yes" => {
                o.cluster.yes = true;
                false
            }
            b"-d" if has_value => {
                o.delims.element = value().to_vec();
                true
            }
            b"-D" if has_value => {
                o.delims.reply = value().to_vec();
                true
            }
            b"-e" => {
                o.exit_on_error = true;
                false
            }
            b"-c" => {
                o.follow_redirects = true;
                false
            }
            b"-2" | b"--resp2" => {
                o.resp2 = true;
                false
            }
            b"-3" | b"--resp3" => {
                o.resp3 = true;
                false
            }
            b"--show-pushes" if has_value => {
                match value().first().map(u8::to_ascii_lowercase) {
                    Some(b'n') => o.push_output = false,
                    Some(b'y') => o.push_output = true,
                    _ => eprintln!("Unknown --show-pushes value '{}' (valid: '[y]es', '[n]o')", text()),
                }
                true
            }
            _ if arg.first() == Some(&b'-') => {
                let name = String::from_utf8_lossy(arg);
                if UNSUPPORTED.contains(&name.as_ref()) || name.starts_with("--cluster-") {
                    return Parsed::Fail(format!("Option '{name}' is not supported by ferrokv cli."));
                }
                return Parsed::Fail(format!("Unrecognized option or bad number of args for: '{name}'"));
            }
            // Options may come between `--cluster <command>` and its arguments.
            _ if o.cluster.command.is_some() && o.cluster.args.is_empty() => {
                i = take_cluster_args(args, i, &mut o.cluster);
                continue;
            }
            // The command starts here.
            _ => break,
        };
        i += if took_value { 2 } else { 1 };
    }
    if o.resp2 && o.resp3 {
        return Parsed::Fail("Options -2 and -3 are mutually exclusive.".into());
    }
    if o.follow_redirects && o.conn.socket.is_some() {
        return Parsed::Fail("Options -c and -s are mutually exclusive.".into());
    }
    if o.stdin_last_arg && o.stdin_tag.is_some() {
        return Parsed::Fail("Options -x and -X are mutually exclusive.".into());
    }
    if o.conn.tls.is_some() {
        o.conn.tls = Some(o.tls_options.take().unwrap_or_default());
    }
    Parsed::Run { options: Box::new(o), command: args[i..].to_vec() }
}

/// Takes the arguments from `start` up to the next one that starts with `-`; returns
/// where parsing goes on.
fn take_cluster_args(args: &[Vec<u8>], start: usize, c: &mut ClusterOptions) -> usize {
    let end =
        args[start.min(args.len())..].iter().position(|a| a.first() == Some(&b'-')).map_or(args.len(), |n| start + n);
    c.args = args[start.min(end)..end].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    end
}

/// C's `atoi`/`strtoll`: optional blanks and sign, then digits up to the first other
/// byte; no digits reads as 0.
pub fn atoi(s: &[u8]) -> i64 {
    let s = trim_leading_space(s);
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        let d = i64::from(b - b'0');
        n = if negative { n.saturating_mul(10).saturating_sub(d) } else { n.saturating_mul(10).saturating_add(d) };
    }
    n
}

/// C's `atof`: the longest prefix that reads as a number; nothing numeric reads as 0.
pub fn atof(s: &[u8]) -> f64 {
    let s = std::str::from_utf8(trim_leading_space(s)).unwrap_or("");
    (1..=s.len())
        .rev()
        .filter(|&end| s.is_char_boundary(end))
        .find_map(|end| s[..end].parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn trim_leading_space(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    &s[start..]
}

/// The help text of `--help`.
pub fn usage(version: &str) -> String {
    format!(
        "{version}

Usage: ferrokv cli [OPTIONS] [cmd [arg [arg ...]]]
       (also runs as any link named *-cli, e.g. redis-cli)
  -h <hostname>      Server hostname (default: 127.0.0.1).
  -p <port>          Server port (default: 6379).
  -s <socket>        Server unix socket (overrides hostname and port).
  -a <password>      Password to authenticate with. The REDISCLI_AUTH environment
                     variable is safer (the argument wins if both are given).
  --user <username>  ACL user name, sent as 'AUTH username password'. Needs -a.
  --pass <password>  Same as -a.
  --askpass          Read the password from the terminal, masked (ignores -a
                     and REDISCLI_AUTH).
  -u <uri>           Server URI: redis://[[user:]password@]host[:port][/db]
                     (rediss:// for TLS).
  --tls              Connect with TLS.
  --sni <host>       Server name indication for TLS.
  --cacert <file>    CA certificate file to verify the server with.
  --cacertdir <dir>  Directory of trusted CA certificates.
  --insecure         Do not verify the server's certificate.
  --cert <file>      Client certificate to authenticate with.
  --key <file>       Private key file for --cert.
  --tls-ciphers <list>       TLS 1.2 cipher suites (OpenSSL names).
  --tls-ciphersuites <list>  TLS 1.3 cipher suites.
  -r <repeat>        Send the command this many times (-1: forever).
  -i <interval>      Wait <interval> seconds after each command (decimals allowed);
                     also the period of --scan, --stat and --latency.
  -n <db>            Database number.
  -2, --resp2        Use RESP2 (the default).
  -3, --resp3        Switch to RESP3 with HELLO 3 after connecting.
  -x                 Read the last argument from stdin.
  -X <tag>           Replace the argument <tag> with stdin.
  -d <delimiter>     Between the elements of a reply in raw output (default: \\n).
  -D <delimiter>     After each reply in raw output (default: \\n).
  -e                 Exit with status 1 when the server replies with an error.
  -c                 Cluster mode: follow -MOVED and -ASK redirections.
  --raw              Raw output (the default when stdout is not a terminal).
  --no-raw           Formatted output even when stdout is not a terminal.
  --quoted-input     Read each argument as a quoted string (\"a\\x00b\").
  --show-pushes <yn> Print RESP3 push messages (default: when stdout is a terminal).
  --no-auth-warning  No warning about a password given on the command line.
  --stat             Print rolling statistics about the server.
  --latency          Sample PING latency continuously; with raw output, sample for
                     one second (or -i) and print one line.
  --latency-history  Like --latency, starting over every 15 seconds (or -i).
  --bigkeys          Scan the keyspace for the biggest key of each type.
  --scan             List the keys with SCAN (see --pattern).
  --pattern <pat>    The SCAN pattern for --scan and --bigkeys (default: *).
  --quoted-pattern <pat>  The same, written with quotes for binary patterns.
  --pipe             Send the RESP commands read from stdin (mass insertion).
  --pipe-timeout <n> With --pipe, give up after <n> seconds without a reply once
                     all data is sent (default: 30, 0: wait forever).
  --cluster <command> [args...] [opts...]
                     Cluster manager: create and check clusters (--cluster help).
  --cluster-replicas <n>  Replicas per master for --cluster create.
  --cluster-yes      No confirmation prompt (also REDISCLI_CLUSTER_YES=1).
  --help             Print this help and exit.
  --version          Print the version and exit.

Examples:
  cat /etc/passwd | ferrokv cli -x set mypasswd
  ferrokv cli -r 100 lpush mylist x
  ferrokv cli -r 100 -i 1 info | grep used_memory_human:
  ferrokv cli --scan --pattern '*:12345*'
  ferrokv cli -u redis://default:secret@127.0.0.1:6379/2 dbsize
  ferrokv cli --cluster create 10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6379 \\
      10.0.0.4:6379 10.0.0.5:6379 10.0.0.6:6379 --cluster-replicas 1
  ferrokv cli --cluster check 10.0.0.1:6379

Without a command, ferrokv cli starts an interactive prompt; type \"help\" there.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn run(list: &[&str]) -> (Options, Vec<String>) {
        match parse(&args(list), false) {
            Parsed::Run { options, command } => {
                (*options, command.into_iter().map(|c| String::from_utf8(c).unwrap()).collect())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_then_command() {
        let (o, cmd) = run(&["-h", "example", "-p", "7000", "-n", "2", "-r", "-1", "set", "-a", "b"]);
        assert_eq!((o.conn.host.as_str(), o.conn.port, o.conn.dbnum, o.repeat), ("example", 7000, 2, -1));
        assert_eq!(cmd, ["set", "-a", "b"]);
        assert_eq!(o.output, OutputMode::Raw);
    }

    #[test]
    fn tls_options_in_any_order() {
        let (o, cmd) = run(&["--cacert", "ca.pem", "--tls", "--sni", "db.example", "--insecure", "ping"]);
        let tls = o.conn.tls.expect("tls on");
        assert_eq!(
            (tls.cacert.as_deref(), tls.sni.as_deref(), tls.insecure),
            (Some("ca.pem"), Some("db.example"), true)
        );
        assert_eq!(cmd, ["ping"]);
        // Without --tls the TLS options change nothing.
        assert_eq!(run(&["--cacert", "ca.pem", "ping"]).0.conn.tls, None);
        assert!(run(&["-u", "rediss://h:7000", "ping"]).0.conn.tls.is_some());
    }

    #[test]
    fn lenient_numbers() {
        assert_eq!(atoi(b"12abc"), 12);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b" -5"), -5);
        assert_eq!(atof(b"0.25s"), 0.25);
        assert_eq!(atof(b"x"), 0.0);
        assert_eq!(run(&["-i", "0.1"]).0.interval, Duration::from_millis(100));
    }

    #[test]
    fn output_flags_and_modes() {
        let (o, _) = run(&["--no-raw", "--scan", "--pattern", "k*", "-3"]);
        assert_eq!((o.output, o.mode, o.resp3), (OutputMode::Standard, Mode::Scan, true));
        assert_eq!(o.pattern.as_deref(), Some(&b"k*"[..]));
        assert_eq!(run(&["--quoted-pattern", "\"a\\x00\""]).0.pattern.as_deref(), Some(&b"a\0"[..]));
    }

    #[test]
    fn errors_and_exits() {
        assert_eq!(
            parse(&args(&["--bogus"]), false),
            Parsed::Fail("Unrecognized option or bad number of args for: '--bogus'".into())
        );
        assert_eq!(
            parse(&args(&["-p"]), false),
            Parsed::Fail("Unrecognized option or bad number of args for: '-p'".into())
        );
        assert_eq!(parse(&args(&["-h"]), false), Parsed::Usage);
        assert_eq!(
            parse(&args(&["-2", "-3"]), false),
            Parsed::Fail("Options -2 and -3 are mutually exclusive.".into())
        );
        assert!(matches!(parse(&args(&["--csv"]), false), Parsed::Fail(m) if m.contains("not supported")));
        assert_eq!(parse(&args(&["--version", "--bogus"]), false), Parsed::Version);
    }

    #[test]
    fn password_warning() {
        assert!(run(&["-a", "x"]).0.warn_about_password());
        assert!(!run(&["-a", "x", "--no-auth-warning"]).0.warn_about_password());
        assert!(run(&["-u", "redis://:pw@h:1"]).0.warn_about_password());
    }

    #[test]
    fn cluster_manager_arguments() {
        let (o, cmd) = run(&["--cluster", "create", "h:1", "h:2", "h:3", "--cluster-replicas", "1", "-a", "pw"]);
        assert_eq!(o.mode, Mode::Cluster);
        assert_eq!(o.cluster.command.as_deref(), Some("create"));
        assert_eq!(o.cluster.args, ["h:1", "h:2", "h:3"]);
        assert_eq!((o.cluster.replicas, o.cluster.yes, o.conn.auth.as_deref()), (1, false, Some(&b"pw"[..])));
        assert!(cmd.is_empty());
        // Options may come first, and between the subcommand and its arguments.
        let (o, _) = run(&["--cluster-yes", "--cluster", "check", "--user", "u", "h", "7000"]);
        assert_eq!(
            (o.cluster.command.as_deref(), o.cluster.args.as_slice(), o.cluster.yes),
            (Some("check"), &["h".to_string(), "7000".to_string()][..], true)
        );
        assert!(matches!(parse(&args(&["--cluster"]), false), Parsed::Fail(m) if m.contains("Usage")));
        assert!(matches!(parse(&args(&["--cluster", "check", "--cluster", "info"]), false), Parsed::Fail(_)));
        assert!(
            matches!(parse(&args(&["--cluster-from", "x"]), false), Parsed::Fail(m) if m.contains("not supported"))
        );
    }
}
