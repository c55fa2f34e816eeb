//! The `ferrokv` binary. Subcommands select the role; invoked through a link whose name
//! ends in `-server` (`ferrokv-server`, `redis-server`) it behaves as the server, through
//! one ending in `-sentinel` as a sentinel, and through one ending in `-cli`
//! (`ferrokv-cli`, `redis-cli`) as the client, and through `*-check-rdb` / `*-check-aof`
//! as the file checkers, so scripts written for Redis run it unchanged.
//! `ferrokv docker-entrypoint` is the container image's entrypoint (see the
//! `ferrokv-entrypoint` crate): it prepares a configuration, then runs the role here, in
//! this process, so the server stays PID 1.

use ferrokv_server::memory::CountingAlloc;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: CountingAlloc<mimalloc::MiMalloc> = CountingAlloc(mimalloc::MiMalloc);

fn usage() -> &'static str {
    "ferrokv — a Redis-compatible server\n\nUsage:\n  ferrokv server [/path/to/redis.conf] [--directive value ...]\n  ferrokv sentinel /path/to/sentinel.conf [--directive value ...]\n  ferrokv server /path/to/sentinel.conf --sentinel [--directive value ...]\n  ferrokv cli [options] [command [arg ...]]   (ferrokv cli --help for the options)\n  ferrokv check-rdb <file.rdb>\n  ferrokv check-aof [--fix|--truncate-to-timestamp $timestamp] <file.manifest|file.aof|dir>\n  ferrokv docker-entrypoint [args]            (the container entrypoint; see README)\n  ferrokv --version\n\nInvoked as ferrokv-server or redis-server, the binary is the server; as\nferrokv-sentinel or redis-sentinel, a sentinel (port 26379 by default); as\nferrokv-cli or redis-cli, the client; as *-check-rdb or *-check-aof, the checkers.\n"
}

/// The server reads its arguments as text.
fn strings(args: &[OsString]) -> Vec<String> {
    args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// The client's arguments stay bytes: keys and values need not be UTF-8.
fn bytes(args: &[OsString]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.clone().into_vec()).collect()
}

/// `server … --sentinel` runs a sentinel, as `redis-server sentinel.conf --sentinel` does.
fn server(args: &[String]) -> i32 {
    if ferrokv_sentinel::driver::requested(args) {
        ferrokv_sentinel::driver::main(args)
    } else {
        ferrokv_server::main(args)
    }
}

/// The container entrypoint: prepare files and arguments, then run the chosen role.
fn docker_entrypoint(args: &[String]) -> i32 {
    use ferrokv_entrypoint::Launch;
    match ferrokv_entrypoint::prepare(args) {
        Launch::Server(a) => server(&a),
        Launch::Sentinel(a) => ferrokv_sentinel::driver::main(&a),
        Launch::Cli(a) => ferrokv_cli::main(&a.into_iter().map(String::into_bytes).collect::<Vec<_>>()),
        Launch::Exit(code) => code,
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .map(|a| std::path::Path::new(a).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    let code = if invoked.ends_with("-check-rdb") {
        ferrokv_check::check_rdb_main(&invoked, &strings(rest))
    } else if invoked.ends_with("-check-aof") {
        ferrokv_check::check_aof_main(&invoked, &strings(rest))
    } else if invoked.ends_with("-sentinel") {
        ferrokv_sentinel::driver::main(&strings(rest))
    } else if invoked.ends_with("-server") {
        server(&strings(rest))
    } else if invoked.ends_with("-cli") {
        ferrokv_cli::main(&bytes(rest))
    } else {
        match args.get(1).and_then(|a| a.to_str()) {
            Some("server") => server(&strings(&args[2..])),
            Some("sentinel") => ferrokv_sentinel::driver::main(&strings(&args[2..])),
            Some("cli") => ferrokv_cli::main(&bytes(&args[2..])),
            Some("check-rdb") => ferrokv_check::check_rdb_main("ferrokv check-rdb", &strings(&args[2..])),
            Some("check-aof") => ferrokv_check::check_aof_main("ferrokv check-aof", &strings(&args[2..])),
            Some("docker-entrypoint") => docker_entrypoint(&strings(&args[2..])),
            Some("-v" | "--version" | "version") => {
                println!("ferrokv {} ({})", env!("CARGO_PKG_VERSION"), ferrokv_server::version_line());
                0
            }
            Some("-h" | "--help" | "help") => {
                print!("{}", usage());
                0
            }
            None if args.len() <= 1 => {
                print!("{}", usage());
                1
            }
            other => {
                eprintln!("ferrokv: unknown subcommand '{}'\n\n{}", other.unwrap_or("?"), usage());
                1
            }
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
