//! Debian's Redis programs for interop and differential tests, found explicitly and checked
//! to be Redis. Not from PATH: the README suggests linking ferrokv as
//! `/usr/local/bin/redis-server`, which then comes first, and a differential test would
//! compare ferrokv with itself and pass.
//!
//! `FERROKV_REDIS_SERVER`, `FERROKV_REDIS_CLI`, `FERROKV_REDIS_SENTINEL`,
//! `FERROKV_REDIS_BENCHMARK`, `FERROKV_REDIS_CHECK_RDB`, `FERROKV_REDIS_CHECK_AOF` name
//! them; each defaults to `/usr/bin/<program>` (Debian's redis-server and redis-tools).
//! std only: `crates/persist/tests` includes this file too.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `redis-check-rdb` → `FERROKV_REDIS_CHECK_RDB`.
pub fn redis_tool_variable(program: &str) -> String {
    format!("FERROKV_{}", program.to_ascii_uppercase().replace('-', "_"))
}

/// Where the program is expected: the variable if set, else Debian's path.
pub fn redis_tool_path(program: &str) -> PathBuf {
    std::env::var_os(redis_tool_variable(program))
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/usr/bin").join(program))
}

/// Some(what it said) if the file is ferrokv under another name. Every ferrokv binary,
/// whatever it is called or linked as, answers `--version` as its server when started as
/// `redis-server`, and the answer names ferrokv; Redis's programs never do (redis-cli and
/// redis-benchmark ignore the name and print their own version).
pub fn ferrokv_posing_as_redis(path: &Path) -> Option<String> {
    let out = Command::new(path)
        .arg0("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.to_ascii_lowercase().contains("ferrokv").then(|| text.trim().to_string())
}

/// The Redis program to compare with. Missing: None (the caller skips), or a panic when
/// `FERROKV_REQUIRE_INTEROP=1`. ferrokv in its place: always a panic, naming the variable.
pub fn redis_tool(program: &str) -> Option<PathBuf> {
    redis_tool_at(program, redis_tool_path(program))
}

/// [`redis_tool`] for a given path.
pub fn redis_tool_at(program: &str, path: PathBuf) -> Option<PathBuf> {
    let var = redis_tool_variable(program);
    if !path.is_file() {
        let why = format!(
            "{program} not found at {} (set {var}, or apt-get install redis-server redis-tools redis-sentinel)",
            path.display()
        );
        if std::env::var("FERROKV_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("{why}; required (FERROKV_REQUIRE_INTEROP=1)");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    }
    if let Some(said) = ferrokv_posing_as_redis(&path) {
        panic!(
            "{} is ferrokv, not Redis (it says: {said}): the test would compare ferrokv with itself. Set {var} to Debian's {program} (default /usr/bin/{program}).",
            path.display()
        );
    }
    Some(path)
}

/// INFO from a server the tests started as Redis: ferrokv adds `ferrokv_version`, Redis never does.
pub fn assert_info_is_redis(info_server: &str, path: &Path) {
    assert!(
        !info_server.contains("ferrokv_version:"),
        "{} answered INFO with ferrokv_version: it is ferrokv, not Redis; set {} to Debian's redis-server",
        path.display(),
        redis_tool_variable("redis-server")
    );
}
