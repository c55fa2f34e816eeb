//! INFO, with Redis 7.0's sections and field names (tools and Sentinel parse them).

use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::error::CmdResult;
use ferrokv_config::{pid, REDIS_VERSION};
use std::fmt::Write;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Human-readable byte counts (`1.50M`), as Redis's bytesToHuman.
pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if d < K {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else {
        format!("{:.2}T", d / (K * K * K * K))
    }
}

fn section_server(e: &Engine, now_ms: i64, s: &mut String) {
    let uptime = (now_ms - e.started_ms).max(0) / 1000;
    let hz = e.hot.hz;
    let _ = write!(
        s,
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nferrokv_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:{}\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{hz}\r\nconfigured_hz:{hz}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
        env!("CARGO_PKG_VERSION"),
        if e.cfg.sentinel_mode { "sentinel" } else { "standalone" },
        std::env::consts::OS,
        std::env::consts::ARCH,
        e.server.pid,
        e.run_id,
        e.server.tcp_port,
        now_ms * 1000,
        uptime / 86400,
        ferrokv_keyspace::value::lru_clock(now_ms),
        e.server.executable,
        e.cfg.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    );
}

fn section_clients(e: &Engine, s: &mut String) {
    let max_out = e.clients.iter().map(|c| c.output_memory()).max().unwrap_or(0);
    let max_in = e.clients.iter().map(|c| c.qbuf).max().unwrap_or(0);
    let (blocked, in_timeout_table) = e.blocked_counts();
    let tracking = e.tracking.clients();
    let _ = write!(
        s,
        "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{max_in}\r\nclient_recent_max_output_buffer:{max_out}\r\nblocked_clients:{blocked}\r\ntracking_clients:{tracking}\r\nclients_in_timeout_table:{in_timeout_table}\r\n",
        e.connected_clients(),
        e.hot.maxclients,
    );
}

fn section_memory(e: &Engine, caller: Option<&crate::client::Client>, s: &mut String) {
    let mh = super::memory_cmd::MemoryOverhead::measure(e, caller);
    let m = e.host.memory();
    let (used, peak, overhead, dataset) = (mh.used, mh.peak, mh.overhead_total, mh.dataset);
    let (repl_backlog, clients_slaves) = (mh.repl_backlog, mh.clients_replicas);
    let repl_buffers = repl_backlog + clients_slaves;
    let maxmemory = e.cfg.int(pid("maxmemory")) as u64;
    let policy = e.cfg.get_formatted(pid("maxmemory-policy"));
    let frag = mh.fragmentation();
    let sm = e.scripts.memory();
    let (nfuncs, nlibs, vm_functions, vm_eval) = (sm.functions, sm.libraries, sm.vm_functions, sm.vm_eval);
    let vm_eval_human = human_bytes(vm_eval as u64);
    let (scripts_eval, cached_scripts) = (sm.scripts_eval, sm.cached_scripts);
    let vm_total = vm_eval + vm_functions;
    let vm_total_human = human_bytes(vm_total as u64);
    let mem_functions = sm.functions_overhead;
    let mem_scripts = scripts_eval + mem_functions;
    let mem_scripts_human = human_bytes(mem_scripts as u64);
    let _ = write!(
        s,
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{overhead}\r\nused_memory_startup:{}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{used}\r\nallocator_resident:{}\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{vm_eval}\r\nused_memory_vm_eval:{vm_eval}\r\nused_memory_lua_human:{vm_eval_human}\r\nused_memory_scripts_eval:{scripts_eval}\r\nnumber_of_cached_scripts:{cached_scripts}\r\nnumber_of_functions:{nfuncs}\r\nnumber_of_libraries:{nlibs}\r\nused_memory_vm_functions:{vm_functions}\r\nused_memory_vm_total:{vm_total}\r\nused_memory_vm_total_human:{vm_total_human}\r\nused_memory_functions:{mem_functions}\r\nused_memory_scripts:{mem_scripts}\r\nused_memory_scripts_human:{mem_scripts_human}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:{frag:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_ratio:{frag:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:{repl_backlog}\r\nmem_total_replication_buffers:{repl_buffers}\r\nmem_clients_slaves:{clients_slaves}\r\nmem_clients_normal:{}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:mimalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
        human_bytes(used),
        m.rss,
        human_bytes(m.rss),
        human_bytes(peak),
        used as f64 * 100.0 / peak as f64,
        e.used_memory_startup,
        dataset as f64 * 100.0 / used as f64,
        m.rss,
        m.total_system,
        human_bytes(m.total_system),
        human_bytes(maxmemory),
        mh.fragmentation_bytes(),
        mh.fragmentation_bytes(),
        mh.clients_normal,
    );
}

fn section_persistence(e: &Engine, now_ms: i64, s: &mut String) {
    s.push_str(&e.info_persistence(now_ms));
}

fn section_stats(e: &Engine, s: &mut String) {
    let st = &e.stats;
    let (tracking_keys, tracking_items, tracking_prefixes) = e.tracking.totals();
    let migrate_sockets = e.host.migrate_cached_sockets();
    let _ = write!(
        s,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:{:.2}\r\nexpired_time_cap_reached_count:{}\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:{}\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:{migrate_sockets}\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{tracking_keys}\r\ntracking_total_items:{tracking_items}\r\ntracking_total_prefixes:{tracking_prefixes}\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:{}\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\nclient_output_buffer_limit_disconnections:{}\r\n",
        st.total_connections_received,
        st.total_commands_processed,
        st.ops.per_sec().round() as i64,
        st.net_input_bytes,
        st.net_output_bytes,
        st.net_in.per_sec() / 1024.0,
        st.net_out.per_sec() / 1024.0,
        st.rejected_connections,
        e.repl.sync_full,
        e.repl.sync_partial_ok,
        e.repl.sync_partial_err,
        st.expired_keys,
        st.expired_stale_perc * 100.0,
        st.expired_time_cap_reached_count,
        st.expire_cycle_cpu_ms,
        st.evicted_keys,
        st.evicted_clients,
        st.keyspace_hits,
        st.keyspace_misses,
        e.pubsub.channel_count(),
        e.pubsub.numpat(),
        e.pubsub.shard_channel_count(),
        st.unexpected_error_replies,
        st.total_error_replies,
        e.persist.dump_payload_sanitizations,
        st.total_reads_processed,
        st.total_writes_processed,
        st.client_output_buffer_limit_disconnections,
    );
}

fn section_replication(e: &Engine, now_ms: i64, s: &mut String) {
    s.push_str(&e.info_replication(now_ms));
}

fn section_cpu(e: &Engine, s: &mut String) {
    let cpu = e.host.cpu();
    let _ = write!(
        s,
        "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
        cpu.sys, cpu.user, cpu.sys, cpu.user
    );
}

fn section_commandstats(e: &Engine, s: &mut String) {
    s.push_str("# Commandstats\r\n");
    for (id, st) in e.cmd_stats.iter().enumerate() {
        if st.calls == 0 && st.failed_calls == 0 && st.rejected_calls == 0 {
            continue;
        }
        let per = if st.calls == 0 { 0.0 } else { st.usec as f64 / st.calls as f64 };
        let _ = write!(
            s,
            "cmdstat_{}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
            e.commands.get(id).fullname(),
            st.calls,
            st.usec,
            st.rejected_calls,
            st.failed_calls
        );
    }
}

fn section_latencystats(e: &Engine, s: &mut String) {
    s.push_str("# Latencystats\r\n");
    let percentiles = match e.cfg.get(pid("latency-tracking-info-percentiles")) {
        ferrokv_config::Val::Percentiles(p) => p.clone(),
        _ => vec![50.0, 99.0, 99.9],
    };
    for (id, st) in e.cmd_stats.iter().enumerate() {
        if st.latency.count() == 0 {
            continue;
        }
        let parts: Vec<String> = percentiles
            .iter()
            .map(|p| format!("p{}={:.3}", ferrokv_config::value::trim_double(*p), st.latency.percentile(*p) as f64))
            .collect();
        let _ = write!(s, "latency_percentiles_usec_{}:{}\r\n", e.commands.get(id).fullname(), parts.join(","));
    }
}

fn section_errorstats(e: &Engine, s: &mut String) {
    s.push_str("# Errorstats\r\n");
    for (code, n) in &e.stats.errors {
        let _ = write!(s, "errorstat_{code}:count={n}\r\n");
    }
}

fn section_keyspace(e: &Engine, s: &mut String) {
    s.push_str("# Keyspace\r\n");
    for (i, db) in e.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let _ = write!(s, "db{i}:keys={},expires={},avg_ttl={}\r\n", db.len(), db.expires_len(), db.avg_ttl);
    }
}

/// The INFO text for the requested sections (lowercase names, or default/all/everything).
/// `caller`: the client asking, out of the clients table while its command runs.
pub fn info_text(e: &Engine, now_ms: i64, requested: &[String], caller: Option<&crate::client::Client>) -> String {
    let mut want: Vec<&str> = Vec::new();
    let mut all = false;
    if requested.is_empty() {
        want.extend_from_slice(DEFAULT);
    }
    for r in requested {
        match r.as_str() {
            "default" => want.extend_from_slice(DEFAULT),
            "all" | "everything" => all = true,
            other => want.push(other),
        }
    }
    let has = |n: &str| all || want.contains(&n);
    let mut s = String::with_capacity(4096);
    let mut sections = 0;
    let mut add = |s: &mut String, f: &dyn Fn(&mut String)| {
        if sections > 0 {
            s.push_str("\r\n");
        }
        sections += 1;
        f(s);
    };
    if has("server") {
        add(&mut s, &|s| section_server(e, now_ms, s));
    }
    if has("clients") {
        add(&mut s, &|s| section_clients(e, s));
    }
    if has("memory") {
        add(&mut s, &|s| section_memory(e, caller, s));
    }
    if has("persistence") {
        add(&mut s, &|s| section_persistence(e, now_ms, s));
    }
    if has("stats") {
        add(&mut s, &|s| section_stats(e, s));
    }
    if has("replication") {
        add(&mut s, &|s| section_replication(e, now_ms, s));
    }
    if has("cpu") {
        add(&mut s, &|s| section_cpu(e, s));
    }
    if has("module_list") || has("modules") {
        add(&mut s, &|s| s.push_str("# Modules\r\n"));
    }
    if has("commandstats") {
        add(&mut s, &|s| section_commandstats(e, s));
    }
    if has("errorstats") {
        add(&mut s, &|s| section_errorstats(e, s));
    }
    if has("latencystats") {
        add(&mut s, &|s| section_latencystats(e, s));
    }
    if has("cluster") {
        let enabled = u8::from(e.cluster.is_some());
        add(&mut s, &|s| s.push_str(&format!("# Cluster\r\ncluster_enabled:{enabled}\r\n")));
    }
    if has("keyspace") {
        add(&mut s, &|s| section_keyspace(e, s));
    }
    s
}

pub fn info(c: &mut Ctx) -> CmdResult {
    let requested: Vec<String> =
        (1..c.argc()).map(|i| String::from_utf8_lossy(c.arg(i)).to_ascii_lowercase()).collect();
    let text = info_text(c.eng, c.now, &requested, Some(c.client));
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}
