//! The tokio driver: everything with side effects. It loads `sentinel.conf`, owns the
//! sockets (links to instances, our own listener on 26379), the clock (a timer ticking the
//! state machine at a random 10-19 Hz, as Redis does to keep sentinels out of lockstep)
//! and the config file the state is saved to.

mod acl_cmd;
mod client;
pub mod config_file;
mod hub;
mod info;
mod link;
mod observe;
mod server_cmds;

use crate::addr::Resolver;
use crate::sentinel::Sentinel;
use ferrokv_config::{pid, CommandLine, LoadError, Val};
use ferrokv_tls::rustls::ServerConfig;
use ferrokv_tls::tokio_rustls::TlsAcceptor;
use hub::{now_ms, Hub, Shared, Stats};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Resolves through the system resolver (getaddrinfo), preferring IPv4 like most setups.
struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Option<String> {
        let addrs: Vec<SocketAddr> = (host, 0).to_socket_addrs().ok()?.collect();
        addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).map(|a| a.ip().to_string())
    }
}

pub(crate) fn format_addr(ip: &str, port: u16) -> String {
    crate::addr::format_host_port(ip, port)
}

pub(crate) fn format_sockaddr(a: &SocketAddr) -> String {
    format_addr(&a.ip().to_canonical().to_string(), a.port())
}

/// True when redis-server style arguments ask for sentinel mode (`--sentinel`).
pub fn requested(args: &[String]) -> bool {
    CommandLine::parse(args).sentinel
}

fn usage() -> &'static str {
    "Usage: ferrokv sentinel /path/to/sentinel.conf [options]\n       ferrokv server /path/to/sentinel.conf --sentinel [options]\n\nThe config file is required and must be writable: Sentinel saves its state there.\n"
}

fn fatal(msg: String) -> i32 {
    eprintln!("{}", LoadError { source: None, line: 0, text: String::new(), msg });
    1
}

/// Runs a sentinel with redis-server's arguments (`sentinel.conf [--directive value ...]`).
pub fn main(args: &[String]) -> i32 {
    if let Some(first) = args.first().map(String::as_str) {
        match first {
            "-v" | "--version" => {
                println!("{}", ferrokv_server::version_line());
                return 0;
            }
            "-h" | "--help" => {
                print!("{}", usage());
                return 0;
            }
            _ => {}
        }
    }
    let cl = CommandLine::parse(args);
    if cl.config_file.as_deref().is_none_or(|f| f == "-") {
        eprintln!("Sentinel needs config file on disk to save state. Exiting...");
        return 1;
    }
    let mut cfg = match ferrokv_config::load(&cl, true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // Before the log opens: a relative `logfile` is in this sentinel's own `dir`.
    if let Err(e) = ferrokv_server::enter_dir(&mut cfg) {
        eprintln!("{e}");
        return 1;
    }
    let Some(config_path) = cfg.config_file.clone() else {
        eprintln!("Sentinel needs config file on disk to save state. Exiting...");
        return 1;
    };
    let logfile = cfg.str(pid("logfile")).to_string();
    if let Err(e) = ferrokv_server::logging::init(Some(&logfile), &cfg.get_formatted(pid("loglevel"))) {
        return fatal(format!("Can't open the log file: {e}"));
    }
    ferrokv_server::logging::set_role(ferrokv_server::logging::ROLE_SENTINEL);
    if let Err(msg) = config_file::check_writable(&config_path) {
        log::warn!("{msg}");
        eprintln!("{msg}");
        return 1;
    }
    let port = cfg.int(pid("port")) as u16;
    // TLS as in Redis's sentinel: its own `tls-port` for clients and other sentinels, and
    // with `tls-replication yes` TLS to the instances it monitors and to other sentinels.
    let tls_port = cfg.int(pid("tls-port")) as u16;
    let metrics_port = cfg.int(pid("metrics-port")) as u16;
    let tls_replication = cfg.bool(pid("tls-replication"));
    let tls_settings = ferrokv_server::tls::settings(&cfg);
    let tls_server = if tls_port != 0 {
        match ferrokv_tls::server_config(&tls_settings, now_ms() / 1000) {
            Ok(c) => Some(c),
            Err(e) => return fatal(format!("Failed to configure TLS. Check logs for more info. {e}")),
        }
    } else {
        None
    };
    let tls_client = if tls_replication {
        match ferrokv_tls::client_config(&tls_settings, ferrokv_tls::ServerCheck::CaChain) {
            Ok(c) => Some(c),
            Err(e) => return fatal(format!("Failed to configure TLS. Check logs for more info. {e}")),
        }
    } else {
        None
    };
    if port == 0 && tls_port == 0 {
        return fatal("Configured to not listen anywhere, exiting.".into());
    }
    let now = now_ms();
    // From the OS's randomness (fastrand seeds its global generator from std's RandomState):
    // the time and the pid were the same for sentinels started together in containers
    // (each is pid 1), which then picked the same Sentinel ID and saw each other as one.
    let seed = fastrand::u64(..) ^ (now as u64);
    // Users: the default one with `requirepass` as its password, then the file's `user`
    // lines (as Redis loads them at startup).
    let mut acl = crate::acl::new_acl();
    let requirepass = Some(cfg.str(pid("requirepass")).to_string()).filter(|p| !p.is_empty());
    acl.set_default_password(requirepass.as_deref().map(str::as_bytes));
    let acl_file = cfg.str(pid("aclfile")).to_string();
    if !acl_file.is_empty() && !cfg.users.is_empty() {
        return fatal(ferrokv_acl::BOTH_USERS_AND_FILE.into());
    }
    for args in &cfg.users {
        if let Err(e) = acl.load_user(args) {
            log::warn!("{e}");
            return fatal(format!("Failed loading ACLs: {e}"));
        }
    }
    // (Redis 7.0's sentinel loads the `aclfile` at startup as a server does.)
    if !acl_file.is_empty() {
        let loaded = acl_cmd::read_acl_file(&acl_file)
            .and_then(|text| acl.load_file(&acl_file, &text).map_err(|e| e.to_string()));
        if let Err(e) = loaded {
            return fatal(format!("Aborting Redis startup because of ACL errors: {e}"));
        }
    }
    let acl = Arc::new(Mutex::new(acl));
    let persist = config_file::FilePersist { path: config_path.clone(), cfg: cfg.clone(), acl: acl.clone() };
    let mut core = Sentinel::new(now, seed, Box::new(persist));
    core.set_resolver(Box::new(SystemResolver));
    // Other sentinels learn our port from our hello messages: the TLS one when they reach
    // us over TLS (as Redis announces it).
    core.env.settings.port = if tls_replication && tls_port != 0 { tls_port } else { port };
    core.env.settings.requirepass = requirepass;
    let mut lines = cfg.sentinel_lines.clone();
    lines.sort_by_key(|l| crate::persist::phase(&l.args));
    for l in &lines {
        if let Err(msg) = crate::persist::apply(&mut core, &l.args, now) {
            let text = format!("sentinel {}", l.args.join(" "));
            eprintln!("{}", LoadError { source: Some(l.file.clone()), line: l.line, text, msg });
            return 1;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fatal(format!("Failed to start the runtime: {e}")),
    };
    let bind = match cfg.get(pid("bind")) {
        Val::Bind(v) => v.clone(),
        _ => vec!["*".into()],
    };
    let pidfile = cfg.str(pid("pidfile")).to_string();
    let backlog = cfg.int(pid("tcp-backlog")) as i32;
    let code = rt.block_on(async move {
        let run_id: String = (0..40).map(|_| char::from(b"0123456789abcdef"[fastrand::usize(0..16)])).collect();
        let hub = Hub {
            core,
            links: HashMap::new(),
            clients: HashMap::new(),
            next_client: 0,
            stats: Stats { started_ms: now_ms(), ..Stats::default() },
            shutdown: Arc::new(Notify::new()),
            acl,
            config_file: config_path,
            acl_file,
            run_id,
            port,
            tls_client,
            observed: Default::default(),
        };
        let ports = Ports { port, tls_port, tls: tls_server, metrics_port };
        serve(Arc::new(Mutex::new(hub)), bind, ports, backlog, pidfile).await
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// The listening side: `port` (0: none) and `tls-port` with its context.
struct Ports {
    port: u16,
    tls_port: u16,
    tls: Option<Arc<ServerConfig>>,
    /// `metrics-port` (0: off): /metrics, /health and the topology page.
    metrics_port: u16,
}

async fn serve(shared: Shared, bind: Vec<String>, ports: Ports, backlog: i32, pidfile: String) -> i32 {
    let Ports { port, tls_port, tls, metrics_port } = ports;
    let pid_num = std::process::id();
    log::warn!("oO0OoO0OoO0Oo ferrokv is starting oO0OoO0OoO0Oo");
    log::warn!(
        "ferrokv version={}, redis_version={}, bits=64, pid={pid_num}, just started",
        env!("CARGO_PKG_VERSION"),
        ferrokv_config::REDIS_VERSION
    );
    log::warn!("Configuration loaded");
    let bound = match ferrokv_server::listener::bind_tcp(&bind, port, backlog) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("{e}");
            return 1;
        }
    };
    let tls_bound = match ferrokv_server::listener::bind_tcp(&bind, tls_port, backlog) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("{e}");
            return 1;
        }
    };
    let metrics_listeners = match ferrokv_server::metrics_http::bind(&bind, metrics_port) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("Metrics port: {e}");
            return 1;
        }
    };
    if !pidfile.is_empty() {
        if let Err(e) = std::fs::write(&pidfile, format!("{pid_num}\n")) {
            log::warn!("Failed to write PID file: {e}");
        }
    }
    if metrics_port != 0 {
        let handler = Arc::new(observe::SentinelMetrics { shared: shared.clone() });
        let limits = ferrokv_server::metrics_http::Limits::default();
        if let Err(e) = ferrokv_server::metrics_http::spawn(metrics_listeners, handler, limits) {
            log::warn!("Failed to start the metrics endpoint: {e}");
            return 1;
        }
        log::info!("Metrics on port {metrics_port} (/metrics, /health; the topology page at /).");
    }
    log::info!("Running mode=sentinel, port={port}.");
    {
        let mut hub = shared.lock();
        hub.core.start(now_ms());
        hub.dispatch(&shared);
    }
    let listeners = bound.into_iter().map(|b| (b, None)).chain(tls_bound.into_iter().map(|b| (b, tls.clone())));
    for (b, tls) in listeners {
        match tokio::net::TcpListener::from_std(b.listener) {
            Ok(l) => {
                tokio::spawn(accept(shared.clone(), l, tls));
            }
            Err(e) => {
                log::warn!("Failed listening on port {port} (tcp), aborting: {e}");
                return 1;
            }
        }
    }
    tokio::spawn(timer(shared.clone()));
    log::info!("Ready to accept connections tcp");
    let shutdown = shared.lock().shutdown.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    tokio::select! {
        _ = shutdown.notified() => {}
        _ = async { sigterm.as_mut().expect("guarded").recv().await }, if sigterm.is_some() => {
            log::warn!("Received SIGTERM scheduling shutdown...");
        }
        _ = async { sigint.as_mut().expect("guarded").recv().await }, if sigint.is_some() => {
            log::warn!("Received SIGINT scheduling shutdown...");
        }
    }
    {
        let mut hub = shared.lock();
        let _ = hub.core.flush_config();
        hub.dispatch(&shared);
    }
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    log::warn!("Sentinel is now ready to exit, bye bye...");
    0
}

/// Accepts clients; on `tls-port` (`tls` set) each one's task runs the TLS handshake
/// first, under the same timeout as the server's.
async fn accept(shared: Shared, listener: tokio::net::TcpListener, tls: Option<Arc<ServerConfig>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let fd = stream.as_raw_fd() as i64;
                let addr = stream.peer_addr().map(|a| format_sockaddr(&a)).unwrap_or_default();
                let laddr = stream.local_addr().map(|a| format_sockaddr(&a)).unwrap_or_default();
                let shared = shared.clone();
                match tls.clone() {
                    None => {
                        tokio::spawn(client::serve(shared, stream, fd, addr, laddr));
                    }
                    Some(config) => {
                        tokio::spawn(async move {
                            let handshake = TlsAcceptor::from(config).accept(stream);
                            match tokio::time::timeout(ferrokv_server::tls::HANDSHAKE_TIMEOUT, handshake).await {
                                Ok(Ok(tls)) => client::serve(shared, tls, fd, addr, laddr).await,
                                Ok(Err(e)) => log::debug!("Error accepting a client connection: {e} (addr={addr})"),
                                Err(_) => log::debug!(
                                    "Error accepting a client connection: TLS handshake timed out (addr={addr})"
                                ),
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                log::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Sentinel's timer. The period varies at random between 52 and 100 ms (Redis's hz of
/// 10-19), so sentinels started together do not keep asking for votes at the same instant.
async fn timer(shared: Shared) {
    loop {
        let hz = 10 + fastrand::u64(0..10);
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        let mut hub = shared.lock();
        hub.core.tick(now_ms());
        hub.dispatch(&shared);
    }
}
