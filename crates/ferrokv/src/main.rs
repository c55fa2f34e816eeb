//! The `ferrokv` binary. Subcommands select the role; invoked through a link whose name
//! ends in `-server` (`ferrokv-server`, `redis-server`) it behaves as the server, and as
//! a sentinel through one ending in `-sentinel`, so scripts written for Redis run it
//! unchanged.

use ferrokv_server::memory::CountingAlloc;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: CountingAlloc<mimalloc::MiMalloc> = CountingAlloc(mimalloc::MiMalloc);

fn usage() -> &'static str {
    "ferrokv — a Redis-compatible server\n\nUsage:\n  ferrokv server [/path/to/redis.conf] [--directive value ...]\n  ferrokv sentinel /path/to/sentinel.conf [--directive value ...]\n  ferrokv server /path/to/sentinel.conf --sentinel [--directive value ...]\n  ferrokv --version\n\nInvoked as ferrokv-server or redis-server, the binary is the server; invoked as\nferrokv-sentinel or redis-sentinel, it is a sentinel (port 26379 by default).\n"
}

/// `server … --sentinel` runs a sentinel, as `redis-server sentinel.conf --sentinel` does.
fn server(args: &[String]) -> i32 {
    if ferrokv_sentinel::driver::requested(args) {
        ferrokv_sentinel::driver::main(args)
    } else {
        ferrokv_server::main(args)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let invoked = args
        .first()
        .map(|a| std::path::Path::new(a).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
        .unwrap_or_default();
    let code = if invoked.ends_with("-sentinel") {
        ferrokv_sentinel::driver::main(&args[1..])
    } else if invoked.ends_with("-server") {
        server(&args[1..])
    } else {
        match args.get(1).map(String::as_str) {
            Some("server") => server(&args[2..]),
            Some("sentinel") => ferrokv_sentinel::driver::main(&args[2..]),
            Some("-v" | "--version" | "version") => {
                println!("ferrokv {} ({})", env!("CARGO_PKG_VERSION"), ferrokv_server::version_line());
                0
            }
            Some("-h" | "--help" | "help") | None => {
                print!("{}", usage());
                if args.len() > 1 {
                    0
                } else {
                    1
                }
            }
            Some(other) => {
                eprintln!("ferrokv: unknown subcommand '{other}'\n\n{}", usage());
                1
            }
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
