//! `ferrokv cli`: a client compatible with redis-cli 7.0 — its options, its output byte
//! for byte, its interactive prompt — for ferrokv, Redis and Sentinel alike (it only
//! speaks RESP).
//!
//! Layout: [`options`] and [`uri`] read the command line; [`conn`] is one blocking
//! connection ([`reply_boundary`] finds where replies end); [`format`] turns replies into
//! text; [`session`] sends commands and tracks the connection's state; [`oneshot`] runs
//! a command from the command line, [`repl`] the prompt (lines from [`line_reader`], with
//! [`help`] for hints and completion, [`history`] and [`prompt`]); [`modes`] holds
//! --scan, --pipe, --stat, --latency and --bigkeys; [`cluster`] is the cluster manager
//! (`--cluster create|check|info`).

pub mod cluster;
pub mod conn;
pub mod format;
pub mod help;
pub mod history;
mod interrupt;
pub mod line_reader;
pub mod modes;
pub mod oneshot;
pub mod options;
mod password;
pub mod prompt;
pub mod repl;
pub mod reply_boundary;
pub mod session;
pub mod uri;

use options::{Mode, Parsed};
use session::{Exit, Session};
use std::io::IsTerminal;

/// The version line: the redis-cli release whose behaviour this follows, then ours
/// (scripts that parse `redis-cli --version` keep working).
pub fn version() -> String {
    format!("redis-cli {} (ferrokv {})", ferrokv_config::REDIS_VERSION, env!("CARGO_PKG_VERSION"))
}

/// Runs the client with its arguments (without the program name); returns the exit
/// status.
pub fn main(args: &[Vec<u8>]) -> i32 {
    let stdout_is_tty = std::io::stdout().is_terminal();
    // FAKETTY makes redis-cli format for a terminal while its output is captured.
    let formatted = stdout_is_tty || std::env::var_os("FAKETTY").is_some();
    match options::parse(args, formatted) {
        Parsed::Usage => {
            print!("{}", options::usage(&version()));
            0
        }
        Parsed::Version => {
            println!("{}", version());
            0
        }
        Parsed::Fail(msg) => {
            eprintln!("{msg}");
            1
        }
        Parsed::Run { options, command } => match run(*options, command) {
            Ok(code) => code,
            Err(Exit(code)) => code,
        },
    }
}

fn run(mut opts: options::Options, command: Vec<Vec<u8>>) -> Result<i32, Exit> {
    if opts.warn_about_password() {
        eprintln!("Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.");
    }
    if opts.conn.auth.is_none() {
        if let Some(auth) = std::env::var_os("REDISCLI_AUTH") {
            opts.conn.auth = Some(std::os::unix::ffi::OsStrExt::as_bytes(auth.as_os_str()).to_vec());
        }
    }
    if opts.askpass {
        opts.conn.auth = Some(password::ask("Please input password: ").map_err(|e| {
            eprintln!("Cannot read the password: {e}");
            Exit(1)
        })?);
    }
    if let Some(tls) = &opts.conn.tls {
        conn::use_tls(tls_client(tls).map_err(|e| {
            eprintln!("Could not negotiate a TLS connection: {e}");
            Exit(1)
        })?);
    }
    let mode = opts.mode;
    if mode == Mode::Cluster {
        if std::env::var_os("REDISCLI_CLUSTER_YES").is_some_and(|v| v == "1") {
            opts.cluster.yes = true;
        }
        return Ok(cluster::main(&opts));
    }
    let mut s = Session::new(opts);
    match mode {
        Mode::Commands if command.is_empty() => {
            // At the prompt a failed connection is reported, and retried by each command.
            s.connect(false);
            repl::run(&mut s)?;
            Ok(0)
        }
        Mode::Commands => {
            s.connect(true);
            oneshot::run(&mut s, command)
        }
        special => {
            if !s.connect(false) {
                return Ok(1);
            }
            match special {
                Mode::Scan => modes::scan::run(&mut s)?,
                Mode::Pipe => modes::pipe::run(&mut s)?,
                Mode::Stat => modes::stat::run(&mut s)?,
                Mode::Latency { history } => modes::latency::run(&mut s, history)?,
                Mode::BigKeys => modes::bigkeys::run(&mut s)?,
                Mode::Commands | Mode::Cluster => {}
            }
            Ok(0)
        }
    }
}

/// Where Debian (and most distributions) keep the system's trusted CAs: redis-cli uses
/// OpenSSL's default paths when neither --cacert nor --cacertdir is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn tls_client(o: &options::TlsOptions) -> Result<conn::TlsClient, String> {
    let mut settings = ferrokv_tls::TlsSettings {
        ca_cert_file: o.cacert.clone().unwrap_or_default(),
        ca_cert_dir: o.cacertdir.clone().unwrap_or_default(),
        cert_file: o.cert.clone().unwrap_or_default(),
        key_file: o.key.clone().unwrap_or_default(),
        ciphers: o.ciphers.clone().unwrap_or_default(),
        ciphersuites: o.ciphersuites.clone().unwrap_or_default(),
        ..Default::default()
    };
    if settings.ca_cert_file.is_empty() && settings.ca_cert_dir.is_empty() && !o.insecure {
        settings.ca_cert_file = SYSTEM_CA_BUNDLE.into();
    }
    if settings.cert_file.is_empty() != settings.key_file.is_empty() {
        return Err("--cert and --key go together".into());
    }
    let check = if o.insecure { ferrokv_tls::ServerCheck::Insecure } else { ferrokv_tls::ServerCheck::CaChain };
    Ok(conn::TlsClient { config: ferrokv_tls::client_config(&settings, check)?, sni: o.sni.clone() })
}
