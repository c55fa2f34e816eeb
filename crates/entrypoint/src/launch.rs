//! The thin side-effecting part: read the process environment, write the generated config
//! files, ask the sentinel, wait (bounded) for the master, then say what to run. Every
//! decision is made by the pure modules; this only does what they decided.

use crate::dispatch::{dispatch, Command};
use crate::env::{Env, EnvError, SENTINEL_VARS, SERVER_VARS};
use crate::health::Target;
use crate::plain::{sentinel_conf, with_protected_mode_default, SentinelConf};
use crate::server_env::{MasterSource, ServerPlan};
use crate::{probe, sentinel_env, server_env};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which program of the binary to run, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    Server(Vec<String>),
    Sentinel(Vec<String>),
    Cli(Vec<String>),
    /// Nothing to run: exit with this status (the health check, or a refused configuration).
    Exit(i32),
}

/// How long a replica waits for its master (or a sentinel) before starting anyway: the
/// server keeps retrying its link, so this only orders a fresh start nicely.
const MASTER_WAIT: Duration = Duration::from_secs(30);
const SENTINEL_WAIT: Duration = Duration::from_secs(10);
const CONFIGURED_MASTER_SENTINEL_WAIT: Duration = Duration::from_secs(2);
/// How long a sentinel waits for the master's hostname to resolve (Docker registers a
/// container's name when it starts; an unresolvable monitor line would stop the sentinel).
const RESOLVE_WAIT: Duration = Duration::from_secs(30);

fn say(msg: &str) {
    eprintln!("ferrokv docker-entrypoint: {msg}");
}

struct Dirs {
    /// The data volume (`/data`): dumps, AOF, the sentinel's config.
    data: PathBuf,
    /// Generated server config and the health check's state (`/etc/ferrokv`).
    conf: PathBuf,
}

impl Dirs {
    fn from_env() -> Dirs {
        let var = |name: &str, default: &str| {
            std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| default.into())
        };
        Dirs { data: var("REDIS_DATA_DIR", "/data"), conf: var("FERROKV_CONF_DIR", "/etc/ferrokv") }
    }

    fn health_file(&self) -> PathBuf {
        self.conf.join("health")
    }
}

fn read_env(known: &[&str]) -> Result<Env, Vec<EnvError>> {
    let raw = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .collect::<Vec<_>>();
    Env::resolve(raw, known, &|p: &Path| fs::read_to_string(p))
}

/// Any variable of the server role (or its `_FILE`) set to something. REDIS_DATA_DIR only
/// moves files, so it alone does not ask for a bitnami-style configuration.
fn env_configured() -> bool {
    SERVER_VARS.iter().filter(|v| **v != "REDIS_DATA_DIR").any(|v| {
        std::env::var_os(v).is_some_and(|x| !x.is_empty())
            || std::env::var_os(format!("{v}_FILE")).is_some_and(|x| !x.is_empty())
    })
}

/// Writes a file only its owner can read (generated configs hold passwords).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

fn record_health(dirs: &Dirs, target: Option<Target>) {
    let path = dirs.health_file();
    let result = match target {
        Some(t) => write_private(&path, &t.to_text()),
        None => fs::remove_file(&path).or(Ok(())),
    };
    if let Err(e) = result {
        say(&format!("cannot write {}: {e} (the health check will assume port 6379)", path.display()));
    }
}

fn refuse(errors: &[EnvError]) -> Launch {
    for e in errors {
        say(&format!("invalid configuration: {e}"));
    }
    Launch::Exit(1)
}

/// Decides and prepares what the container runs. Exec'd programs never return here.
pub fn prepare(args: &[String]) -> Launch {
    let dirs = Dirs::from_env();
    match dispatch(args, env_configured()) {
        Command::Healthcheck => healthcheck(&dirs),
        Command::Cli { args } => Launch::Cli(args),
        Command::Exec { program, args } => {
            let err = std::process::Command::new(&program).args(&args).exec();
            say(&format!("cannot run '{program}': {err} (the image's programs are in /usr/local/bin and /bin)"));
            Launch::Exit(127)
        }
        Command::ServerQuery { args } => Launch::Server(args),
        Command::Server { args } => plain_server(&dirs, &args),
        Command::Sentinel { args } => plain_sentinel(&dirs, &args),
        Command::EnvServer { args } => env_server(&dirs, &args),
        Command::EnvSentinel { args } => env_sentinel(&dirs, &args),
    }
}

fn healthcheck(dirs: &Dirs) -> Launch {
    let target = fs::read_to_string(dirs.health_file()).map(|t| Target::parse(&t)).unwrap_or_default();
    match probe::ping("127.0.0.1", target.port, target.password.as_deref(), target.tls.as_ref()) {
        Ok(()) => Launch::Exit(0),
        Err(e) => {
            println!("unhealthy: port {}: {e}", target.port);
            Launch::Exit(1)
        }
    }
}

fn plain_server(dirs: &Dirs, args: &[String]) -> Launch {
    let conf_text = args.first().filter(|a| !a.starts_with('-')).and_then(|p| fs::read_to_string(p).ok());
    let args = with_protected_mode_default(args, conf_text.as_deref());
    record_health(dirs, Target::from_args(&args, false));
    Launch::Server(args)
}

/// True if the file can be rewritten where it is: Sentinel replaces it through a temporary
/// file in the same directory.
fn rewritable(path: &Path) -> bool {
    let file_ok = OpenOptions::new().append(true).open(path).is_ok();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probe = dir.join(format!(".ferrokv-write-test-{}", std::process::id()));
    let dir_ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    file_ok && dir_ok
}

fn plain_sentinel(dirs: &Dirs, args: &[String]) -> Launch {
    let Some(conf) = args.first().filter(|a| !a.starts_with('-')).cloned() else {
        // Let the sentinel print its own message about the missing file.
        return Launch::Sentinel(args.to_vec());
    };
    let copy = dirs.data.join("sentinel.conf");
    let copy_str = copy.to_string_lossy().into_owned();
    let mut args = args.to_vec();
    match sentinel_conf(&conf, rewritable(Path::new(&conf)), &copy_str, copy.exists() && conf != copy_str) {
        SentinelConf::InPlace => {}
        SentinelConf::Persisted(path) => {
            say(&format!("using {path}, saved by an earlier run (delete it to start again from {conf})"));
            args[0] = path;
        }
        SentinelConf::CopyTo(path) => {
            let copied = fs::read_to_string(&conf).and_then(|text| write_private(&copy, &text));
            if let Err(e) = copied {
                say(&format!("cannot copy {conf} to {path}: {e}"));
                return Launch::Exit(1);
            }
            say(&format!("{conf} is read-only: running from a copy in {path}, where the sentinel saves its state"));
            args[0] = path;
        }
    }
    record_health(dirs, Target::from_args(&args, true));
    Launch::Sentinel(args)
}

/// Where this replica replicates from: the sentinel's answer if it gives one, else
/// REDIS_MASTER_HOST. None means this node is the current master (it was promoted before
/// it restarted), so it must start as a master.
fn find_master(src: &MasterSource, plan: &ServerPlan) -> Result<Option<(String, u16)>, String> {
    if let Some(s) = &src.sentinel {
        // A configured master asks briefly: when the whole setup starts, no sentinel runs yet.
        let wait = if src.configured_master { CONFIGURED_MASTER_SENTINEL_WAIT } else { SENTINEL_WAIT };
        let asked = probe::retry(wait, || {
            probe::master_from_sentinel(&s.host, s.port, &s.master_name, s.tls.as_ref()).and_then(|m| {
                m.ok_or_else(|| {
                    std::io::Error::other(format!("the sentinel knows no master named '{}'", s.master_name))
                })
            })
        });
        match asked {
            Ok((host, port)) => {
                say(&format!("sentinel {}:{} says the master is {host}:{port}", s.host, s.port));
                let mine = probe::own_addresses();
                let theirs = probe::resolve(&host, port).unwrap_or_default();
                let is_me = port == plan.port && theirs.iter().any(|a| mine.contains(&a.ip()));
                if is_me {
                    say("that is this container: starting as the master");
                    return Ok(None);
                }
                return Ok(Some((host, port)));
            }
            Err(e) if src.configured_master => {
                say(&format!("no answer from sentinel {}:{} ({e}): starting as the master", s.host, s.port));
                return Ok(None);
            }
            Err(e) => match &src.host {
                Some(h) => {
                    say(&format!("sentinel {}:{} did not answer ({e}); using REDIS_MASTER_HOST={h}", s.host, s.port))
                }
                None => return Err(format!("REDIS_SENTINEL_HOST: sentinel {}:{} did not answer: {e}", s.host, s.port)),
            },
        }
    }
    let host = src.host.clone().ok_or("REDIS_MASTER_HOST: not set")?;
    Ok(Some((host, src.port)))
}

fn env_server(dirs: &Dirs, args: &[String]) -> Launch {
    let env = match read_env(SERVER_VARS) {
        Ok(e) => e,
        Err(errors) => return refuse(&errors),
    };
    let plan = match server_env::translate(&env, &dirs.data.to_string_lossy()) {
        Ok(p) => p,
        Err(errors) => return refuse(&errors),
    };
    for w in &plan.warnings {
        say(w);
    }
    let master = match &plan.master {
        None => None,
        Some(src) => match find_master(src, &plan) {
            Ok(m) => m,
            Err(e) => {
                say(&e);
                return Launch::Exit(1);
            }
        },
    };
    if let Some((host, port)) = &master {
        say(&format!("replica of {host}:{port}"));
        if let Err(e) = probe::wait_for_port(host, *port, MASTER_WAIT) {
            say(&format!("master {host}:{port} not reachable yet ({e}); starting anyway, the replica keeps retrying"));
        }
    }
    let text = plan.render(master.as_ref().map(|(h, p)| (h.as_str(), *p)));
    let conf = dirs.conf.join("redis.conf");
    if let Err(e) = write_private(&conf, &text) {
        say(&format!("cannot write {}: {e}", conf.display()));
        return Launch::Exit(1);
    }
    let mut server_args = vec![conf.to_string_lossy().into_owned()];
    server_args.extend(plan.extra_args.iter().cloned());
    server_args.extend(args.iter().cloned());
    let target = Target::from_args(&server_args, false).unwrap_or(Target {
        port: plan.port,
        password: plan.password,
        tls: None,
    });
    record_health(dirs, Some(target));
    Launch::Server(server_args)
}

fn env_sentinel(dirs: &Dirs, args: &[String]) -> Launch {
    let conf = dirs.data.join("sentinel.conf");
    if conf.exists() {
        say(&format!(
            "using {}, saved by an earlier run (delete it to regenerate from REDIS_* variables)",
            conf.display()
        ));
    } else {
        let env = match read_env(SENTINEL_VARS) {
            Ok(e) => e,
            Err(errors) => return refuse(&errors),
        };
        let plan = match sentinel_env::translate(&env, &dirs.data.to_string_lossy()) {
            Ok(p) => p,
            Err(errors) => return refuse(&errors),
        };
        if let Err(e) = probe::retry(RESOLVE_WAIT, || probe::resolve(&plan.master_host, 0)) {
            say(&format!("REDIS_MASTER_HOST: '{}' does not resolve: {e}", plan.master_host));
            return Launch::Exit(1);
        }
        if let Err(e) = write_private(&conf, &plan.text) {
            say(&format!("cannot write {}: {e}", conf.display()));
            return Launch::Exit(1);
        }
    }
    let mut sentinel_args = vec![conf.to_string_lossy().into_owned()];
    sentinel_args.extend(args.iter().cloned());
    record_health(dirs, Target::from_args(&sentinel_args, true));
    Launch::Sentinel(sentinel_args)
}
