//! Which node serves a command in cluster mode: Redis 7.0's getNodeByQuery and
//! clusterRedirectClient, run in `process` after the ACL check for every command with
//! keys (and EXEC, over everything queued). Masters' streams are exempt, as in Redis.

use crate::blocking::TimeoutReply;
use crate::client::Client;
use crate::commands::getkeys::command_keys;
use crate::commands::spec::flags;
use crate::commands::CmdId;
use crate::engine::Engine;
use ferrokv_cluster::bus::NodeName;
use ferrokv_cluster::slot::key_slot;
use ferrokv_cluster::state::ClusterState;
use ferrokv_resp::Argv;

/// Why a command is not served here (Redis's CLUSTER_REDIR_*).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    CrossSlot,
    Unstable,
    DownState,
    DownReadOnlyState,
    DownUnbound,
    Moved(u16, NodeName),
    Ask(u16, NodeName),
}

impl Engine {
    /// True if the command was answered with a redirection or a cluster error (the caller
    /// stops there).
    pub(crate) fn cluster_redirect(&mut self, client: &mut Client, cmd: CmdId, argv: &Argv) -> bool {
        let c = self.commands.get(cmd);
        let is_exec = c.name == "exec" && c.parent.is_none();
        if !is_exec && (c.flags() & flags::MOVABLE_KEYS == 0) && c.key_specs.is_empty() {
            return false;
        }
        // ASKING lasts one command, or a whole transaction (queued commands keep it).
        let asking_flag =
            if client.multi.is_some() && !is_exec { client.asking } else { std::mem::take(&mut client.asking) };
        let asking = asking_flag || c.flags() & flags::ASKING != 0;
        let verdict = if is_exec {
            let Some(multi) = client.multi.as_ref() else { return false };
            let lines: Vec<(CmdId, &Argv)> = multi.queue.iter().map(|(id, a)| (*id, a)).collect();
            let write = multi.flags & flags::WRITE != 0;
            self.node_for(&lines, false, write, asking, client.cluster_readonly)
        } else {
            let write = c.flags() & flags::WRITE != 0;
            self.node_for(&[(cmd, argv)], c.name == "migrate", write, asking, client.cluster_readonly)
        };
        let Err(redirect) = verdict else { return false };
        let msg = self.redirect_message(&redirect);
        self.cmd_stats[cmd].rejected_calls += 1;
        if is_exec {
            crate::commands::transactions::discard_transaction(self, client);
        } else if client.multi.is_some() {
            client.dirty_exec = true;
        }
        client.out.error(&msg);
        for e in client.out.take_errors() {
            self.stats.record_error(&e);
        }
        true
    }

    /// clusterRedirectBlockedClientIfNeeded, from the cluster tick: a client blocked on
    /// keys (lists, sorted sets, streams) whose slot this node no longer serves, or any
    /// such client while the cluster is down, gets the redirection or error now instead of
    /// waiting for a write that will never come here.
    pub(crate) fn redirect_blocked_clients(&mut self) {
        if self.blocking.is_empty() {
            return;
        }
        let Some(cluster) = self.cluster.as_ref() else { return };
        let core = &cluster.core;
        let me = core.myself_name();
        let myself = core.myself();
        let mut verdicts: Vec<(crate::client::ClientId, Redirect)> = Vec::new();
        for c in self.clients.iter() {
            let Some(b) = c.blocked.as_ref() else { continue };
            if !matches!(b.timeout_reply, TimeoutReply::NullArray | TimeoutReply::NullBulk) {
                continue;
            }
            if core.state() != ClusterState::Ok {
                verdicts.push((c.id, Redirect::DownState));
                continue;
            }
            let Some(key) = b.keys.first() else { continue };
            let slot = key_slot(key);
            let mut owner = core.slot_owner(slot);
            let write = self.commands.get(b.cmd).flags() & flags::WRITE != 0;
            if c.cluster_readonly && !write && myself.is_replica() && myself.replica_of == owner {
                owner = Some(me);
            }
            if owner != Some(me) && core.importing(slot).is_none() {
                verdicts.push((c.id, owner.map_or(Redirect::DownUnbound, |o| Redirect::Moved(slot, o))));
            }
        }
        for (id, redirect) in verdicts {
            let msg = self.redirect_message(&redirect);
            let Some(mut c) = self.clients.take(id) else { continue };
            let out_before = c.out.len();
            if self.unblock(&mut c).is_some() {
                c.out.error(&msg);
                for e in c.out.take_errors() {
                    self.stats.record_error(&e);
                }
                crate::reply_mode::settle(&mut c, out_before, false);
                c.waker.wake();
            }
            self.clients.put(c);
        }
    }

    /// scriptVerifyClusterState: a command a script runs must be served here, judged
    /// with the calling client's READONLY and ASKING, and (unless the script allows
    /// cross-slot keys) keep to the slot its keys so far were in (`slot`, updated).
    pub(crate) fn script_cluster_refusal(
        &self,
        caller: &Client,
        cmd: CmdId,
        argv: &Argv,
        slot: &mut Option<u16>,
        allow_cross_slot: bool,
    ) -> Option<String> {
        let write = self.commands.get(cmd).flags() & flags::WRITE != 0;
        let is_migrate = self.commands.get(cmd).name == "migrate";
        match self.node_for(&[(cmd, argv)], is_migrate, write, caller.asking, caller.cluster_readonly) {
            Ok(None) => None,
            Ok(Some(_)) if allow_cross_slot => None,
            Ok(Some(this)) => match *slot {
                None => {
                    *slot = Some(this);
                    None
                }
                Some(s) if s == this => None,
                Some(_) => Some("Script attempted to access keys that do not hash to the same slot".into()),
            },
            Err(Redirect::DownReadOnlyState) => {
                Some("Script attempted to execute a write command while the cluster is down and readonly".into())
            }
            Err(Redirect::DownState) => Some("Script attempted to execute a command while the cluster is down".into()),
            Err(_) => Some("Script attempted to access a non local key in a cluster node".into()),
        }
    }

    fn redirect_message(&self, redirect: &Redirect) -> String {
        let target = |name: &NodeName| {
            let cluster = self.cluster.as_ref();
            let (ip, port, hostname) = cluster
                .and_then(|c| c.core.node(name))
                .map(|n| (n.ip.clone(), n.port, n.hostname.clone()))
                .unwrap_or_default();
            let endpoint = match cluster.map_or(0, |c| c.preferred_endpoint) {
                1 if hostname.is_empty() => "?".to_string(),
                1 => hostname,
                _ => ip,
            };
            (endpoint, port)
        };
        match redirect {
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Redirect::Unstable => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Redirect::DownState => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnlyState => "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
            Redirect::DownUnbound => "CLUSTERDOWN Hash slot not served".into(),
            Redirect::Moved(slot, node) => {
                let (endpoint, port) = target(node);
                format!("MOVED {slot} {endpoint}:{port}")
            }
            Redirect::Ask(slot, node) => {
                let (endpoint, port) = target(node);
                format!("ASK {slot} {endpoint}:{port}")
            }
        }
    }

    /// getNodeByQuery over command lines (one, or a transaction's queue): Ok when this
    /// node serves them, with the slot of their keys (None: no keys).
    /// `is_migrate`: the command judged is MIGRATE itself (a transaction is judged as
    /// EXEC, as in Redis, even when it queued a MIGRATE).
    fn node_for(
        &self,
        lines: &[(CmdId, &Argv)],
        is_migrate: bool,
        write: bool,
        asking: bool,
        readonly: bool,
    ) -> Result<Option<u16>, Redirect> {
        let Some(cluster) = self.cluster.as_ref() else { return Ok(None) };
        let core = &cluster.core;
        let me = core.myself_name();
        let mut first: Option<&[u8]> = None;
        let (mut slot, mut owner) = (0u16, None);
        let (mut migrating, mut importing, mut multiple) = (false, false, false);
        let (mut missing, mut existing) = (0usize, 0usize);
        let mut pubsubshard = false;
        for &(id, argv) in lines {
            let cmd = self.commands.get(id);
            let shard_channels = matches!(cmd.name, "ssubscribe" | "sunsubscribe" | "spublish");
            pubsubshard |= shard_channels;
            // Shard channels count as keys here, as in Redis 7.0 (its legacy key range
            // keeps their NOT_KEY specs).
            let positions: Vec<usize> = match cmd.name {
                "spublish" => vec![1],
                "ssubscribe" | "sunsubscribe" => (1..argv.len()).collect(),
                _ => command_keys(cmd, argv).iter().map(|k| k.pos).collect(),
            };
            for pos in positions {
                let key = argv.get(pos);
                let this_slot = key_slot(key);
                match first {
                    None => {
                        first = Some(key);
                        slot = this_slot;
                        owner = core.slot_owner(slot);
                        let Some(node) = owner else { return Err(Redirect::DownUnbound) };
                        if node == me && core.migrating(slot).is_some() {
                            migrating = true;
                        } else if core.importing(slot).is_some() {
                            importing = true;
                        }
                    }
                    Some(f) if f != key => {
                        if this_slot != slot {
                            return Err(Redirect::CrossSlot);
                        }
                        multiple = true;
                    }
                    Some(_) => {}
                }
                if (migrating || importing) && !pubsubshard {
                    // db 0: the only database in cluster mode.
                    if self.dbs[0].peek(key, self.now_ms).is_some() {
                        existing += 1;
                    } else {
                        missing += 1;
                    }
                }
            }
        }
        let Some(owner) = owner else { return Ok(None) };
        if core.state() != ClusterState::Ok {
            if pubsubshard {
                if !self.cfg.bool(ferrokv_config::pid("cluster-allow-pubsubshard-when-down")) {
                    return Err(Redirect::DownState);
                }
            } else if !cluster.allow_reads_when_down {
                return Err(Redirect::DownState);
            } else if write {
                return Err(Redirect::DownReadOnlyState);
            }
        }
        // MIGRATE runs here whenever the slot is open either way, as in Redis: moving keys
        // out of a migrating slot (or back out of an importing one) is its job, whichever
        // of them this node still holds.
        if (migrating || importing) && is_migrate {
            return Ok(Some(slot));
        }
        if migrating && missing > 0 {
            if existing > 0 {
                return Err(Redirect::Unstable);
            }
            if let Some(to) = core.migrating(slot) {
                return Err(Redirect::Ask(slot, to));
            }
        }
        if importing && asking {
            if multiple && missing > 0 {
                return Err(Redirect::Unstable);
            }
            return Ok(Some(slot));
        }
        let myself = core.myself();
        if (readonly || pubsubshard) && !write && myself.is_replica() && myself.replica_of == Some(owner) {
            return Ok(Some(slot));
        }
        if owner != me {
            return Err(Redirect::Moved(slot, owner));
        }
        Ok(Some(slot))
    }
}
