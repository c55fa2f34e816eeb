//! Network namespaces the partition tests create: one namespace joined to the root one by
//! veth pairs ("paths"). Path 0 is the one [`Netns::cut`] takes down; further paths stay up,
//! so a test can keep clients connected to a process whose replicas and sentinels lost it
//! (clients on the minority side of a partition). Needs root and `ip`; without them the
//! tests skip with a reason, or fail in CI (FERROKV_REQUIRE_INTEROP=1).

#![allow(dead_code)]

use crate::common::{interop_required, optional_binary};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static CREATED: AtomicU32 = AtomicU32::new(0);

/// A namespace removed with its veth pairs on drop, even when the test failed. Path `p`
/// has 10.<77+p>.<subnet>.1 on the root side and 10.<77+p>.<subnet>.2 inside.
pub struct Netns {
    pub name: String,
    /// (root-side interface, inside interface) per path.
    paths: Vec<(String, String)>,
    subnet: u32,
}

impl Netns {
    /// A namespace with one path. None (skipped with a printed reason, or a panic in CI)
    /// when namespaces cannot be created here: not root, no `ip`, no CAP_SYS_ADMIN.
    pub fn create() -> Option<Netns> {
        Netns::with_paths(1)
    }

    /// A namespace with `paths` veth pairs (at most 4).
    pub fn with_paths(paths: usize) -> Option<Netns> {
        let skip = |why: String| {
            if interop_required() {
                panic!("network namespaces are required (FERROKV_REQUIRE_INTEROP=1): {why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        };
        let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !is_root {
            return skip("creating network namespaces needs root".into());
        }
        optional_binary("ip")?;
        let pid = std::process::id();
        // Tests of one binary run in parallel: each namespace of this process gets its own
        // name and subnet, and concurrent test runs (other pids) most likely others.
        let k = CREATED.fetch_add(1, Ordering::SeqCst);
        let mut ns =
            Netns { name: format!("ferrokv-test-{pid}-{k}"), paths: Vec::new(), subnet: 20 + (pid % 50) * 4 + k % 4 };
        if let Err(e) = ip(&["netns", "add", &ns.name]) {
            return skip(format!("cannot set up a network namespace: {e}"));
        }
        for p in 0..paths.min(4) {
            let (root_if, inner_if) = (format!("fkv{p}r{pid}{k}"), format!("fkv{p}n{pid}{k}"));
            // Registered first, so that drop removes a half-made pair too.
            ns.paths.push((root_if.clone(), inner_if.clone()));
            let (a, b) = (format!("{}/24", ns.root_addr_of(p)), format!("{}/24", ns.inner_addr_of(p)));
            let steps: [&[&str]; 4] = [
                &["link", "add", &root_if, "type", "veth", "peer", "name", &inner_if],
                &["link", "set", &inner_if, "netns", &ns.name],
                &["addr", "add", &a, "dev", &root_if],
                &["link", "set", &root_if, "up"],
            ];
            let inside: [&[&str]; 3] = [
                &["addr", "add", &b, "dev", &inner_if],
                &["link", "set", &inner_if, "up"],
                &["link", "set", "lo", "up"],
            ];
            for step in steps {
                if let Err(e) = ip(step) {
                    return skip(format!("cannot set up a network namespace: {e}"));
                }
            }
            for step in inside {
                if let Err(e) = ns.ip_inside(step) {
                    return skip(format!("cannot set up a network namespace: {e}"));
                }
            }
        }
        Some(ns)
    }

    /// The root side of path 0 (where replicas and sentinels outside listen).
    pub fn root_addr(&self) -> String {
        self.root_addr_of(0)
    }

    /// The inside end of path 0 (where the isolated process is reached until the cut).
    pub fn inner_addr(&self) -> String {
        self.inner_addr_of(0)
    }

    pub fn root_addr_of(&self, path: usize) -> String {
        format!("10.{}.{}.1", 77 + path, self.subnet)
    }

    pub fn inner_addr_of(&self, path: usize) -> String {
        format!("10.{}.{}.2", 77 + path, self.subnet)
    }

    pub fn ip_inside(&self, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs processes inside the namespace.
    pub fn prefix(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.name.clone()]
    }

    /// Path 0's inside interface goes down: packets to and from it are dropped silently,
    /// as when a machine's network fails (no resets, connections just stall).
    pub fn cut(&self) {
        self.ip_inside(&["link", "set", &self.paths[0].1, "down"]).expect("cut");
    }

    pub fn heal(&self) {
        self.ip_inside(&["link", "set", &self.paths[0].1, "up"]).expect("heal");
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys the veth ends inside it, and with them the pairs.
        let _ = ip(&["netns", "del", &self.name]);
        for (root_if, _) in &self.paths {
            let _ = ip(&["link", "del", root_if]);
        }
    }
}
