//! nodes.conf saves and what leaves the node: when a save that had to reach the disk
//! fails, nothing the same input caused is sent (a vote a restart could forget must not
//! be heard), while a failed plain save holds nothing back.

use ferrokv_cluster::bus::{self, Body, Header, Message, SlotBitmap};
use ferrokv_cluster::nodes_conf::flags;
use ferrokv_cluster::state::{Cluster, Output, Settings};
use ferrokv_config::{Config, Pid};
use ferrokv_engine::cluster::ClusterMode;
use ferrokv_engine::host::{CpuInfo, Host, MemoryInfo, ShutdownRequest};
use ferrokv_engine::{Engine, ServerInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A host whose nodes.conf writes fail while `failing` is set.
struct Disk {
    failing: Arc<AtomicBool>,
}

impl Host for Disk {
    fn apply_config(&mut self, _: &Config, _: &[Pid]) -> Result<(), String> {
        Ok(())
    }
    fn rewrite_config(&mut self, _: &Config) -> Result<(), String> {
        Ok(())
    }
    fn shutdown(&mut self, _: ShutdownRequest) -> Result<(), String> {
        Ok(())
    }
    fn sleep(&mut self, _: Duration) {}
    fn memory(&self) -> MemoryInfo {
        MemoryInfo::default()
    }
    fn cpu(&self) -> CpuInfo {
        CpuInfo::default()
    }
    fn free_later(&mut self, garbage: Box<dyn Send>) {
        drop(garbage);
    }
    fn write_cluster_config(&mut self, _: &str, _: &str, _: bool) -> Result<(), String> {
        if self.failing.load(Ordering::Relaxed) {
            Err("No space left on device".into())
        } else {
            Ok(())
        }
    }
}

fn message() -> Message {
    Message {
        header: Header {
            port: 7001,
            current_epoch: 1,
            config_epoch: 0,
            offset: 0,
            sender: bus::name_from_str("f00df00df00df00df00df00df00df00df00df00d"),
            myslots: SlotBitmap::default(),
            replica_of: None,
            myip: String::new(),
            pport: 0,
            cport: 17001,
            flags: flags::MASTER,
            state: 0,
            mflags: [0; 3],
        },
        body: Body::Pong { gossip: vec![], extensions: vec![] },
    }
}

fn queued(eng: &Engine) -> usize {
    eng.cluster.as_ref().map_or(0, |m| m.io.len())
}

#[test]
fn a_failed_fsynced_save_holds_back_what_the_input_sends() {
    let failing = Arc::new(AtomicBool::new(true));
    let host = Box::new(Disk { failing: failing.clone() });
    let mut eng = Engine::new(Config::defaults(), host, ServerInfo::default(), 1_700_000_000_000).unwrap();
    let core = Cluster::new(Settings::new(7000, 1), 1);
    eng.cluster = Some(Box::new(ClusterMode::new(core, "nodes.conf".into())));
    let to = message().header.sender;
    let sends = || vec![Output::Send { to, msg: message() }, Output::Reply { link: 1, msg: message() }];

    // A vote (fsync) that did not reach the disk: its ACK stays home.
    let mut outputs = vec![Output::SaveConfig { fsync: true }];
    outputs.extend(sends());
    eng.cluster_apply(outputs);
    assert_eq!(queued(&eng), 0);

    // A plain save that fails holds nothing back.
    let mut outputs = vec![Output::SaveConfig { fsync: false }];
    outputs.extend(sends());
    eng.cluster_apply(outputs);
    assert_eq!(queued(&eng), 2);

    // Once the disk works, an fsynced save lets its messages go.
    failing.store(false, Ordering::Relaxed);
    let mut outputs = vec![Output::SaveConfig { fsync: true }];
    outputs.extend(sends());
    eng.cluster_apply(outputs);
    assert_eq!(queued(&eng), 4);
}
