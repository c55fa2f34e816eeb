//! INFO for a sentinel: the sections Redis serves in this mode (server, clients, cpu,
//! stats, sentinel), each with the fields monitoring tools read.

use super::hub::Hub;

const SECTIONS: [&str; 5] = ["server", "clients", "cpu", "stats", "sentinel"];

fn server(hub: &Hub, now: i64) -> String {
    let uptime = (now - hub.stats.started_ms).max(0) / 1000;
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let mut uname: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    let os = if unsafe { libc::uname(&mut uname) } == 0 {
        let f = |b: &[libc::c_char]| {
            // SAFETY: uname NUL-terminates each field.
            unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }.to_string_lossy().into_owned()
        };
        format!("{} {} {}", f(&uname.sysname), f(&uname.release), f(&uname.machine))
    } else {
        "Linux".to_string()
    };
    format!(
        "# Server\r\nredis_version:{}\r\nferrokv_version:{}\r\nredis_mode:sentinel\r\nos:{os}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nexecutable:{exe}\r\nconfig_file:{}\r\n",
        ferrokv_config::REDIS_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        hub.run_id,
        hub.port,
        now * 1000,
        uptime / 86400,
        hub.config_file.display(),
    )
}

fn clients(hub: &Hub) -> String {
    let pubsub = hub.clients.values().filter(|c| c.subscriptions() > 0).count();
    format!(
        "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:10000\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\npubsub_clients:{pubsub}\r\n",
        hub.clients.len()
    )
}

fn cpu() -> String {
    let (sys, user) = ferrokv_server::memory::cpu_seconds();
    format!("# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n")
}

fn stats(hub: &Hub) -> String {
    format!(
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
        hub.stats.connections, hub.stats.commands
    )
}

/// INFO [section ...]: no argument, `default`, `all` and `everything` mean every section.
pub fn render(hub: &Hub, argv: &[Vec<u8>], now: i64) -> String {
    let asked: Vec<String> = argv[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = asked.is_empty() || asked.iter().any(|a| matches!(a.as_str(), "all" | "default" | "everything"));
    let mut parts = Vec::new();
    for s in SECTIONS {
        if !all && !asked.iter().any(|a| a == s) {
            continue;
        }
        parts.push(match s {
            "server" => server(hub, now),
            "clients" => clients(hub),
            "cpu" => cpu(),
            "stats" => stats(hub),
            _ => hub.core.info_section(now),
        });
    }
    parts.join("\r\n")
}
