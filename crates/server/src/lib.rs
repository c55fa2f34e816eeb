//! The server process: configuration loading, logging, listeners, one tokio task per
//! connection, the cron task, signals and shutdown. Everything with side effects lives
//! here; the engine it drives is pure.
//!
//! The engine sits behind one mutex. A connection task parses a whole read's worth of
//! requests outside the lock, then runs them under it in one go, so the lock is taken once
//! per read, not per command, and the engine state stays single-threaded in semantics:
//! commands are atomic and totally ordered, as in Redis.

pub mod busy_poll;
pub mod cluster;
pub mod conn;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod metrics_endpoint;
pub mod metrics_http;
pub mod migrate;
pub mod persist;
pub mod replication;
pub mod signal;
pub mod tls;

use ferrokv_config::{pid, CommandLine, Config, Pid, Val};
use ferrokv_engine::persistence::{Purpose, SnapshotSink};
use ferrokv_engine::replication::replica::MasterChange;
use ferrokv_engine::replication::shutdown::ShutdownStart;
use ferrokv_engine::{ClientId, CpuInfo, Engine, Host, MemoryInfo, ServerInfo, ShutdownRequest};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// State shared by all tasks.
pub struct Shared {
    pub engine: Mutex<Engine>,
    keepalive: Arc<AtomicI64>,
    pub persist: Arc<persist::Persist>,
    pub repl: Arc<replication::Repl>,
    pub tls: Arc<tls::TlsState>,
    /// MIGRATE's cached connections to its targets.
    pub migrate: Arc<migrate::MigrateSockets>,
}

impl Shared {
    pub fn keepalive_secs(&self) -> i64 {
        self.keepalive.load(Ordering::Relaxed)
    }
}

/// Requests from the engine (via [`ServerHost`]) to the main task.
enum Control {
    Listeners(Vec<listener::Bound>),
    TlsListeners(Vec<listener::Bound>),
    Shutdown(ShutdownRequest),
    Master(MasterChange),
}

/// The engine's view of the outside world.
struct ServerHost {
    control: mpsc::UnboundedSender<Control>,
    lazyfree: std::sync::mpsc::Sender<Box<dyn Send>>,
    keepalive: Arc<AtomicI64>,
    persist: Arc<persist::Persist>,
    repl: Arc<replication::Repl>,
    tls: Arc<tls::TlsState>,
    migrate: Arc<migrate::MigrateSockets>,
    /// Wakes the cluster bus driver when a command queued bus output.
    cluster_wake: Arc<tokio::sync::Notify>,
    /// The command thread's spin before sleeping (none with io-threads).
    busy_poll: Option<busy_poll::BusyPoll>,
}

fn bind_addrs(cfg: &Config) -> Vec<String> {
    match cfg.get(pid("bind")) {
        Val::Bind(v) => v.clone(),
        _ => vec!["*".into()],
    }
}

impl Host for ServerHost {
    fn migrate_cached_sockets(&self) -> usize {
        self.migrate.count()
    }

    fn migrate_blocking(
        &mut self,
        job: &ferrokv_engine::commands::migrate::MigrateJob,
    ) -> ferrokv_engine::commands::migrate::MigrateIo {
        migrate::run_blocking(job)
    }

    fn read_aof_files(&mut self, cfg: &Config) -> Result<Vec<(String, Vec<u8>)>, String> {
        if let Some(aof) = self.persist.aof() {
            aof.flush_and_sync();
        }
        persist::read_aof_files(cfg)
    }

    fn apply_config(&mut self, cfg: &Config, changed: &[Pid]) -> Result<(), String> {
        if changed.contains(&pid("port")) || changed.contains(&pid("bind")) {
            let bound =
                listener::bind_tcp(&bind_addrs(cfg), cfg.int(pid("port")) as u16, cfg.int(pid("tcp-backlog")) as i32)
                    .map_err(|_| {
                    if changed.contains(&pid("port")) {
                        "Unable to listen on this port. Check server logs.".to_string()
                    } else {
                        "Failed to bind to specified addresses.".to_string()
                    }
                })?;
            let _ = self.control.send(Control::Listeners(bound));
        }
        self.tls.reconfigure(cfg, changed)?;
        if changed.contains(&pid("tls-port")) || changed.contains(&pid("bind")) {
            let port = cfg.int(pid("tls-port")) as u16;
            let bound = listener::bind_tcp(&bind_addrs(cfg), port, cfg.int(pid("tcp-backlog")) as i32)
                .map_err(|_| "Unable to listen on this port. Check server logs.".to_string())?;
            let _ = self.control.send(Control::TlsListeners(bound));
        }
        if changed.contains(&pid("dir")) {
            std::env::set_current_dir(cfg.str(pid("dir"))).map_err(|e| e.to_string())?;
        }
        if changed.contains(&pid("loglevel")) {
            logging::set_level(&cfg.get_formatted(pid("loglevel")));
        }
        if let Some(bp) = self.busy_poll.as_ref().filter(|_| changed.contains(&pid("busy-poll-us"))) {
            bp.set_max(Duration::from_micros(cfg.int(pid("busy-poll-us")) as u64));
        }
        if changed.contains(&pid("tcp-keepalive")) {
            self.keepalive.store(cfg.int(pid("tcp-keepalive")), Ordering::Relaxed);
        }
        if changed.contains(&pid("maxclients")) {
            raise_fd_limit(cfg.int(pid("maxclients")) as u64);
        }
        if changed.contains(&pid("appendonly")) && cfg.bool(pid("appendonly")) && self.persist.aof().is_none() {
            persist::check_aof_can_start(cfg).map_err(|e| {
                log::warn!("{e}");
                "Unable to turn on AOF. Check server logs.".to_string()
            })?;
        }
        if changed.contains(&pid("appendfsync")) {
            // At once: the next write acknowledged must already follow the new policy.
            if let Some(aof) = self.persist.aof() {
                aof.set_policy(persist::fsync_policy(cfg));
            }
        }
        if changed.contains(&pid("aof-timestamp-enabled")) {
            if let Some(aof) = self.persist.aof() {
                aof.set_timestamps(cfg.bool(pid("aof-timestamp-enabled")));
            }
        }
        Ok(())
    }

    fn rewrite_config(&mut self, cfg: &Config) -> Result<(), String> {
        let path = cfg.config_file.as_ref().ok_or("The server is running without a config file")?;
        ferrokv_config::rewrite::rewrite_file(cfg, path).map_err(|e| e.to_string())
    }

    fn shutdown(&mut self, req: ShutdownRequest) -> Result<(), String> {
        self.control.send(Control::Shutdown(req)).map_err(|e| e.to_string())
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn memory(&self) -> MemoryInfo {
        MemoryInfo {
            used: memory::allocated(),
            peak: memory::peak(),
            rss: memory::rss(),
            total_system: memory::total_system_memory(),
        }
    }

    fn used_memory(&self) -> u64 {
        memory::allocated_fast()
    }

    fn cpu(&self) -> CpuInfo {
        let (sys, user) = memory::cpu_seconds();
        CpuInfo { sys, user }
    }

    fn write_cluster_config(&mut self, path: &str, text: &str, fsync: bool) -> Result<(), String> {
        // With fsync: a temporary file renamed over it, and the directory fsynced too (a
        // vote or epoch must not come back older after a power loss). Without: in place
        // when small, as Redis 7.0 writes nodes.conf, since a rename costs milliseconds.
        let path = std::path::Path::new(path);
        let bytes = text.as_bytes();
        let written = if fsync { Ok(false) } else { persist::sink::overwrite_small(path, bytes) };
        match written {
            Ok(true) => Ok(()),
            Ok(false) => persist::sink::replace_file(path, bytes, fsync).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
    fn free_later(&mut self, garbage: Box<dyn Send>) {
        let _ = self.lazyfree.send(garbage);
    }

    fn cluster_wake(&mut self) {
        self.cluster_wake.notify_one();
    }

    fn open_snapshot(&mut self, purpose: Purpose, cfg: &Config) -> std::io::Result<Box<dyn SnapshotSink>> {
        self.persist.open_snapshot(purpose, cfg)
    }

    fn snapshot_started(&mut self) {
        self.persist.kick.notify_one();
    }

    fn feed(&mut self, bytes: Vec<u8>) -> u64 {
        self.persist.feed(bytes)
    }

    fn aof_enabled(&mut self, on: bool, cfg: &Config) {
        self.persist.aof_enabled(on, cfg);
    }

    fn aof_fsync_state(&self) -> (u64, Option<u64>) {
        match self.persist.aof() {
            Some(aof) => (aof.end(), aof.fsynced()),
            None => (0, None),
        }
    }

    fn open_replica_sink(&mut self, replicas: &[ClientId], cfg: &Config) -> std::io::Result<Box<dyn SnapshotSink>> {
        if cfg.bool(pid("repl-diskless-sync")) {
            let persist = self.persist.clone();
            return self.repl.open_sink(replicas, Box::new(move || persist.report_done(Purpose::Replication, Ok(()))));
        }
        let targets = self.repl.open_streams(replicas);
        let path = persist::Persist::dbfilename(cfg);
        let saves = matches!(cfg.get(pid("save")), Val::Save(points) if !points.is_empty());
        let no_persistence = !cfg.bool(pid("appendonly")) && !saves;
        let delete = cfg.bool(pid("rdb-del-sync-files")) && no_persistence;
        let after = Box::new(move || replication::hand_file_to(targets, path, delete));
        self.persist.open_disk_replication(cfg, after)
    }

    fn replication_advanced(&mut self, offset: u64) {
        self.repl.advanced.send_replace(offset);
    }

    fn sync_committed(&mut self, epoch: u64, offset: u64) {
        self.repl.committed.send_replace((epoch, offset));
    }

    fn replication_frozen(&mut self) {
        self.repl.freeze.notify_waiters();
    }

    fn master_changed(&mut self, change: MasterChange) {
        // Redis marks its log lines S while it has a master, M otherwise.
        logging::set_role(match change {
            MasterChange::Follow(..) => logging::ROLE_REPLICA,
            MasterChange::Stop => logging::ROLE_MASTER,
        });
        let _ = self.control.send(Control::Master(change));
    }
}

/// Applies `dir` as Redis does while it reads its configuration: the process moves there
/// before anything opens a file, so a relative `logfile` or `pidfile` lands in that
/// directory (two servers or sentinels started from one place with their own `dir` do
/// not share one log), and `dir` becomes the absolute path (CONFIG GET, rewrites).
pub fn enter_dir(cfg: &mut Config) -> Result<(), String> {
    let dir = cfg.str(pid("dir")).to_string();
    if !dir.is_empty() {
        std::env::set_current_dir(&dir).map_err(|e| format!("Can't chdir to '{dir}': {e}"))?;
    }
    if let Ok(cwd) = std::env::current_dir() {
        cfg.set_internal(pid("dir"), Val::Str(cwd.display().to_string()));
    }
    Ok(())
}

/// Raises the open-files limit to fit `maxclients` plus the server's own descriptors.
fn raise_fd_limit(maxclients: u64) {
    let want = maxclients + 32;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= want {
            return;
        }
        let target = want.min(lim.rlim_max);
        lim.rlim_cur = target;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 || target < want {
            log::warn!(
                "You requested maxclients of {maxclients} requiring at least {want} max file descriptors, but the limit is {target}."
            );
        }
    }
}

/// `disable-thp yes` (the default, as in Redis): transparent huge pages make RSS grow in
/// 2 MiB steps and copy-on-write costly; the allocator's madvise would otherwise enable them.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        log::debug!("Could not disable transparent huge pages: {}", std::io::Error::last_os_error());
    }
}

fn usage() -> String {
    "Usage: ferrokv server [/path/to/redis.conf] [options] [-]\n       ferrokv server - (read config from stdin)\n       ferrokv server -v or --version\n       ferrokv server -h or --help\n\nExamples:\n       ferrokv server (run the server with default config)\n       ferrokv server /etc/redis/6379.conf\n       ferrokv server --port 7777\n       ferrokv server --port 7777 --replicaof 127.0.0.1 8888\n       ferrokv server /etc/myredis.conf --loglevel verbose -\n       ferrokv server /etc/myredis.conf --loglevel verbose\n".into()
}

pub fn version_line() -> String {
    format!(
        "Redis server v={} sha=00000000:0 malloc=mimalloc bits=64 build=ferrokv-{}",
        ferrokv_config::REDIS_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// Runs `ferrokv server` with redis-server's arguments. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    if let Some(first) = args.first() {
        match first.as_str() {
            "-v" | "--version" => {
                println!("{}", version_line());
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
    let mut cfg = match ferrokv_config::load(&cl, false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if let Err(e) = enter_dir(&mut cfg) {
        eprintln!("{e}");
        return 1;
    }
    if cfg.sentinel_mode {
        eprintln!("Sentinel mode is not available in this build of ferrokv yet.");
        return 1;
    }
    if cfg.bool(pid("disable-thp")) {
        disable_transparent_huge_pages();
    }
    let logfile = cfg.str(pid("logfile")).to_string();
    // A replica by configuration logs as one from its first line (`replicaof` at startup).
    let configured_replica = matches!(cfg.get(pid("replicaof")), Val::ReplicaOf(Some(_)));
    logging::set_role(if configured_replica { logging::ROLE_REPLICA } else { logging::ROLE_MASTER });
    if let Err(e) = logging::init(Some(&logfile), &cfg.get_formatted(pid("loglevel"))) {
        eprintln!(
            "{}",
            ferrokv_config::LoadError {
                source: None,
                line: 0,
                text: String::new(),
                msg: format!("Can't open the log file: {e}")
            }
        );
        return 1;
    }
    // Like Redis, one thread runs every command by default: the engine sits behind one lock,
    // and measured on two cores a second worker thread only added cross-thread wake-ups and
    // lock hand-offs (P1 throughput fell ~10%, context switches per request doubled).
    // `io-threads N` (N > 1) spreads socket reads, parsing and reply writes over N threads.
    // On the one command thread, `busy-poll-us` spins briefly before each sleep (busy_poll.rs);
    // with io-threads the workers share one epoll instance and sleep as tokio has them.
    let io_threads = cfg.int(pid("io-threads"));
    let park_spin =
        (io_threads <= 1).then(|| busy_poll::BusyPoll::new(Duration::from_micros(cfg.int(pid("busy-poll-us")) as u64)));
    let epolls_before = park_spin.as_ref().map(|_| busy_poll::epoll_fds()).unwrap_or_default();
    let rt = if io_threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(io_threads as usize).enable_all().build()
    } else {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if let Some(bp) = &park_spin {
            bp.install(&mut builder);
        }
        builder.enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Failed to start the runtime: {e}");
            return 1;
        }
    };
    if let Some(bp) = &park_spin {
        if bp.attach(&epolls_before, &busy_poll::epoll_fds()) {
            log::debug!("busy-poll-us: watching the runtime's epoll instance before sleeping");
        } else {
            log::debug!("busy-poll-us: the runtime's epoll instance was not found; no spinning before sleeps");
        }
    }
    let code = rt.block_on(serve(cfg, cl.config_file.is_none(), park_spin));
    // Connections are dropped with the runtime; nothing else needs to finish.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// A replica drops its link after `repl-timeout` seconds without a byte from its master,
/// and a quiet master sends only its PING every `repl-ping-replica-period` seconds: with a
/// timeout that is not longer than the period, every quiet link times out and resyncs.
/// (Redis's redis.conf says so next to repl-timeout; the server says it when it starts.)
fn replication_timing_warning(cfg: &Config) -> Option<String> {
    let timeout = cfg.int(pid("repl-timeout"));
    let period = cfg.int(pid("repl-ping-replica-period"));
    (timeout <= period).then(|| {
        format!(
            "WARNING: repl-timeout ({timeout}) is not greater than repl-ping-replica-period ({period}): a replica whose master is quiet will time out (MASTER timeout) and resync every {period} seconds or so. Set repl-timeout above repl-ping-replica-period (the defaults are 60 and 10)."
        )
    })
}

async fn serve(cfg: Config, no_config_file: bool, busy_poll: Option<busy_poll::BusyPoll>) -> i32 {
    let pid_num = std::process::id();
    log::info!("oO0OoO0OoO0Oo ferrokv is starting oO0OoO0OoO0Oo");
    log::info!(
        "ferrokv version={}, redis_version={}, bits=64, pid={pid_num}, just started",
        env!("CARGO_PKG_VERSION"),
        ferrokv_config::REDIS_VERSION
    );
    if no_config_file {
        log::warn!("Warning: no config file specified, using the default config. In order to specify a config file use ferrokv server /path/to/redis.conf");
    } else {
        log::info!("Configuration loaded");
    }
    if let Some(warning) = replication_timing_warning(&cfg) {
        log::warn!("{warning}");
    }
    raise_fd_limit(cfg.int(pid("maxclients")) as u64);
    let port = cfg.int(pid("port")) as u16;
    let bound = match listener::bind_tcp(&bind_addrs(&cfg), port, cfg.int(pid("tcp-backlog")) as i32) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("{e}");
            return 1;
        }
    };
    let unixsocket = cfg.str(pid("unixsocket")).to_string();
    let unix = if unixsocket.is_empty() {
        None
    } else {
        match listener::bind_unix(&unixsocket, cfg.int(pid("unixsocketperm")) as u32) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!("{e}");
                return 1;
            }
        }
    };
    let tls_state = Arc::new(tls::TlsState::default());
    if let Err(e) = tls_state.configure(&cfg) {
        log::warn!("Failed to configure TLS. Check logs for more info. {e}");
        return 1;
    }
    let tls_port = cfg.int(pid("tls-port")) as u16;
    let tls_bound = match listener::bind_tcp(&bind_addrs(&cfg), tls_port, cfg.int(pid("tcp-backlog")) as i32) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("{e}");
            return 1;
        }
    };
    let metrics_port = cfg.int(pid("metrics-port")) as u16;
    let metrics_listeners = match metrics_http::bind(&bind_addrs(&cfg), metrics_port) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("Metrics port: {e}");
            return 1;
        }
    };
    if port == 0 && tls_port == 0 && unix.is_none() {
        log::warn!("Configured to not listen anywhere, exiting.");
        return 1;
    }
    let pidfile = cfg.str(pid("pidfile")).to_string();
    if !pidfile.is_empty() {
        if let Err(e) = std::fs::write(&pidfile, format!("{pid_num}\n")) {
            log::warn!("Failed to write PID file: {e}");
        }
    }
    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let (lazy_tx, lazy_rx) = std::sync::mpsc::channel::<Box<dyn Send>>();
    // Frees big values (FLUSHALL ASYNC, UNLINK) off the command path.
    std::thread::Builder::new()
        .name("lazyfree".into())
        .spawn(move || {
            for garbage in lazy_rx {
                drop(garbage);
            }
        })
        .ok();
    let keepalive = Arc::new(AtomicI64::new(cfg.int(pid("tcp-keepalive"))));
    let (persist, snapshot_done) = persist::Persist::new();
    let repl = replication::Repl::new();
    let migrate_sockets = Arc::new(migrate::MigrateSockets::default());
    let cluster_wake = Arc::new(tokio::sync::Notify::new());
    let cluster_boot = if cfg.bool(pid("cluster-enabled")) {
        match cluster::boot(&cfg) {
            Ok(b) => Some(b),
            Err(e) => {
                log::warn!("{e}");
                return 1;
            }
        }
    } else {
        None
    };
    let host = ServerHost {
        cluster_wake: cluster_wake.clone(),
        control: control_tx,
        lazyfree: lazy_tx,
        keepalive: keepalive.clone(),
        persist: persist.clone(),
        repl: repl.clone(),
        tls: tls_state.clone(),
        migrate: migrate_sockets.clone(),
        busy_poll,
    };
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let info = ServerInfo { executable: exe, pid: pid_num, tcp_port: port };
    let mut engine = match Engine::new(cfg, Box::new(host), info, conn::now_ms()) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("Fatal error: {e}");
            return 1;
        }
    };
    let mut bus_listeners = Vec::new();
    if let Some((mode, listeners)) = cluster_boot {
        engine.attach_cluster(mode);
        bus_listeners = listeners;
    }
    let cluster_mode = engine.cluster.is_some();
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        keepalive,
        persist,
        repl,
        tls: tls_state,
        migrate: migrate_sockets,
    });
    // Before loading, so /health answers "loading" meanwhile.
    if metrics_port != 0 {
        let handler = Arc::new(metrics_endpoint::ServerMetrics::new(shared.clone()));
        if let Err(e) = metrics_http::spawn(metrics_listeners, handler, metrics_http::Limits::default()) {
            log::warn!("Failed to start the metrics endpoint: {e}");
            return 1;
        }
        log::info!("Metrics on port {metrics_port} (/metrics, /health).");
    }
    // Clients may connect while the dataset loads; they get -LOADING until it is whole.
    shared.engine.lock().begin_loading(0, conn::now_ms());
    // As Redis: the banner and "Server initialized" come before the data loads, so a tool
    // watching the log sees a server that is loading (or failing to), not a silent one.
    log::info!(
        "ferrokv {} (Redis {} compatible) {} mode, Port: {port}, PID: {pid_num}",
        env!("CARGO_PKG_VERSION"),
        ferrokv_config::REDIS_VERSION,
        if cluster_mode { "cluster" } else { "standalone" }
    );
    log::info!("Running mode={}, port={port}.", if cluster_mode { "cluster" } else { "standalone" });
    log::warn!("Server initialized");

    let mut tcp_tasks: Vec<JoinHandle<()>> = Vec::new();
    for b in bound {
        match tokio::net::TcpListener::from_std(b.listener) {
            Ok(l) => tcp_tasks.push(tokio::spawn(listener::accept_tcp(shared.clone(), l, false))),
            Err(e) => {
                log::warn!("Failed listening on port {port} (tcp), aborting: {e}");
                return 1;
            }
        }
    }
    let mut tls_tasks: Vec<JoinHandle<()>> = Vec::new();
    for b in tls_bound {
        match tokio::net::TcpListener::from_std(b.listener) {
            Ok(l) => tls_tasks.push(tokio::spawn(listener::accept_tcp(shared.clone(), l, true))),
            Err(e) => {
                log::warn!("Failed listening on port {tls_port} (tls), aborting: {e}");
                return 1;
            }
        }
    }
    if let Some(l) = unix {
        tokio::spawn(listener::accept_unix(shared.clone(), l, unixsocket.clone()));
    }
    tokio::spawn(persist::snapshot_driver(shared.clone()));
    tokio::spawn(persist::completions(shared.clone(), snapshot_done));
    let loader = shared.clone();
    match tokio::task::spawn_blocking(move || persist::startup(&loader)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            log::warn!("{e}");
            return 1;
        }
        Err(e) => {
            log::warn!("Loading failed: {e}");
            return 1;
        }
    }
    {
        let mut e = shared.engine.lock();
        if let Some((host, port)) = e.configured_master() {
            e.follow_master(&host, port, conn::now_ms());
        }
    }
    tokio::spawn(cron(shared.clone()));
    tokio::spawn(sync_timer(shared.clone()));
    if cluster_mode {
        tokio::spawn(cluster::run(shared.clone(), bus_listeners, cluster_wake));
    }

    // Redis 7.0's lines (7.2 added the transport to the first one).
    if port != 0 || tls_port != 0 {
        log::info!("Ready to accept connections");
    }
    if !unixsocket.is_empty() {
        log::info!("The server is now ready to accept connections at {unixsocket}");
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    loop {
        tokio::select! {
            msg = control_rx.recv() => match msg {
                Some(Control::Listeners(bound)) => {
                    for t in tcp_tasks.drain(..) {
                        t.abort();
                    }
                    for b in bound {
                        if let Ok(l) = tokio::net::TcpListener::from_std(b.listener) {
                            tcp_tasks.push(tokio::spawn(listener::accept_tcp(shared.clone(), l, false)));
                        }
                    }
                }
                Some(Control::TlsListeners(bound)) => {
                    for t in tls_tasks.drain(..) {
                        t.abort();
                    }
                    for b in bound {
                        if let Ok(l) = tokio::net::TcpListener::from_std(b.listener) {
                            tls_tasks.push(tokio::spawn(listener::accept_tcp(shared.clone(), l, true)));
                        }
                    }
                }
                Some(Control::Master(change)) => {
                    if let Some(old) = shared.repl.link.lock().take() {
                        old.abort();
                    }
                    if let MasterChange::Follow(host, port) = change {
                        let task = tokio::spawn(replication::link::run(shared.clone(), host, port));
                        *shared.repl.link.lock() = Some(task);
                    }
                }
                Some(Control::Shutdown(_req)) => {
                    // The engine already waited for replicas and saved (or failed and
                    // went on serving).
                    break;
                }
                None => break,
            },
            _ = async { sigterm.as_mut().expect("guarded").recv().await }, if sigterm.is_some() => {
                log::warn!("Received SIGTERM scheduling shutdown...");
                if signal_shutdown(&shared, true) {
                    break;
                }
            }
            _ = async { sigint.as_mut().expect("guarded").recv().await }, if sigint.is_some() => {
                log::warn!("Received SIGINT scheduling shutdown...");
                if signal_shutdown(&shared, false) {
                    break;
                }
            }
        }
    }
    if let Some(aof) = shared.persist.aof() {
        log::info!("Calling fsync() on the AOF file.");
        aof.stop();
    }
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    if !unixsocket.is_empty() {
        let _ = std::fs::remove_file(&unixsocket);
    }
    log::warn!("ferrokv is now ready to exit, bye bye...");
    0
}

/// A signal asked for shutdown: wait for replicas and save as SHUTDOWN would (the engine
/// tells the main loop when it is done waiting). True: exit now. False: the shutdown waits
/// for replicas, or failed and the server keeps running (as Redis does).
fn signal_shutdown(shared: &Shared, sigterm: bool) -> bool {
    match shared.engine.lock().signal_shutdown(sigterm, conn::now_ms()) {
        ShutdownStart::Exiting => true,
        ShutdownStart::Waiting => false,
        ShutdownStart::Failed => {
            let name = if sigterm { "SIGTERM" } else { "SIGINT" };
            log::warn!(
                "{name} received but errors trying to shut down the server, check the logs for more information"
            );
            false
        }
    }
}

/// Synchronous replication's clock: keeps the lease renewed (a GETACK every 100 ms) even
/// when `hz` is low, whatever the traffic. Costs a lock every 25 ms, nothing otherwise.
async fn sync_timer(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let mut e = shared.engine.lock();
        if e.sync_active() {
            e.set_monotonic_now(conn::mono_ms());
            e.sync_tick();
            e.flush_feed();
        }
    }
}

/// Redis's serverCron: housekeeping `hz` times a second, then a time-boxed slice of
/// active expiry (at most a quarter of the period, a millisecond per lock hold so clients
/// are never stalled for long).
async fn cron(shared: Arc<Shared>) {
    loop {
        let hz = shared.engine.lock().hot.hz.max(1) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        let now = conn::now_ms();
        {
            let mut e = shared.engine.lock();
            if let Some(aof) = shared.persist.aof() {
                let a = &mut e.persist.aof;
                a.write_error = aof.error().map(|e| persist::strerror_text(&e));
                a.current_size = aof.current_size.load(Ordering::Relaxed);
                a.base_size = aof.base_size.load(Ordering::Relaxed);
                a.buffer_length = aof.buffered();
            }
            e.set_monotonic_now(conn::mono_ms());
            e.cron(now);
            e.flush_feed();
        }
        let budget = Duration::from_micros(250_000 / hz);
        let started = Instant::now();
        loop {
            let more = {
                let mut e = shared.engine.lock();
                let more = e.active_expire(conn::now_ms(), 1000);
                e.flush_feed();
                more
            };
            if !more || started.elapsed() >= budget {
                break;
            }
            tokio::task::yield_now().await;
        }
        memory::allocated();
    }
}
