//! The command table: Redis's command metadata ([`spec_data`], plus key specifications
//! and tips in [`spec_keys`]) joined with ferrokv's handlers ([`HANDLERS`]), one module
//! per command family. Dispatch, arity checks, COMMAND INFO/DOCS/GETKEYS and ACL
//! categories all read this one table.

pub mod getkeys;
pub mod spec;
mod spec_data;
mod spec_docs;
mod spec_keys;

pub mod acl_cmd;
pub mod bitfield;
pub mod bits;
pub mod client_cmd;
pub mod cluster_cmd;
pub mod cluster_view;
pub mod command_cmd;
pub mod config_cmd;
pub mod connection;
pub mod debug;
pub mod debug_tools;
pub mod dump;
pub mod expire;
pub mod functions;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod info_cmd;
pub mod keys;
pub mod latency_cmd;
pub mod lists;
pub mod lolwut;
pub mod memory_cmd;
pub mod migrate;
pub mod module_cmd;
pub mod persistence_cmd;
pub mod pubsub_cmd;
pub mod replication_cmd;
pub mod scripting;
pub mod server_cmd;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod tracking_cmd;
pub mod transactions;
pub mod zsets;

use crate::ctx::Ctx;
use crate::error::CmdResult;
use ahash::AHashMap as HashMap;
use spec::RawSpec;

pub type CmdId = usize;
pub type Handler = fn(&mut Ctx) -> CmdResult;

/// A command as the dispatcher sees it.
pub struct Cmd {
    pub spec: &'static RawSpec,
    /// The name within its container (`get` for `config|get`).
    pub name: &'static str,
    pub handler: Option<Handler>,
    pub parent: Option<CmdId>,
    pub subs: Vec<CmdId>,
    /// ACL categories including the implicit ones.
    pub cats: u64,
    /// Key specifications (COMMAND INFO, key extraction).
    pub key_specs: &'static [spec::KeySpec],
    /// Command tips (COMMAND INFO).
    pub tips: &'static [&'static str],
    /// The command's own key-extraction rule, when its key specifications may not suffice.
    pub getkeys: Option<spec::GetKeys>,
    /// The keys, when the specs put them at the same positions in every line.
    pub fixed_keys: Option<getkeys::FixedKeys>,
}

impl Cmd {
    pub fn flags(&self) -> u64 {
        self.spec.flags
    }

    pub fn fullname(&self) -> &'static str {
        self.spec.fullname
    }

    pub fn has(&self, flag: u64) -> bool {
        self.spec.flags & flag != 0
    }

    /// True if `argc` arguments (command name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.spec.arity;
        if a > 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }
}

/// Every command with a handler, by full name. Its documentation (COMMAND DOCS) is in
/// `spec_docs.rs`, generated from Redis's command descriptions.
pub const HANDLERS: &[(&str, Handler)] = &[
    // connection
    ("ping", connection::ping),
    ("echo", connection::echo),
    ("quit", connection::quit),
    ("reset", connection::reset),
    ("auth", connection::auth),
    ("hello", connection::hello),
    ("select", connection::select),
    ("client|id", client_cmd::id),
    ("client|setname", client_cmd::setname),
    ("client|getname", client_cmd::getname),
    ("client|list", client_cmd::list),
    ("client|info", client_cmd::info),
    ("client|kill", client_cmd::kill),
    ("client|unblock", client_cmd::unblock),
    ("client|pause", client_cmd::pause),
    ("client|unpause", client_cmd::unpause),
    ("client|reply", client_cmd::reply),
    ("client|no-evict", client_cmd::no_evict),
    ("client|setinfo", client_cmd::setinfo),
    ("client|help", client_cmd::help),
    ("client|tracking", tracking_cmd::tracking),
    ("client|caching", tracking_cmd::caching),
    ("client|getredir", tracking_cmd::getredir),
    ("client|trackinginfo", tracking_cmd::trackinginfo),
    // keyspace
    ("del", keys::del),
    ("unlink", keys::unlink),
    ("exists", keys::exists),
    ("type", keys::type_cmd),
    ("rename", keys::rename),
    ("renamenx", keys::renamenx),
    ("copy", keys::copy),
    ("sort", sort::sort),
    ("sort_ro", sort::sort_ro),
    ("move", keys::move_cmd),
    ("touch", keys::touch),
    ("randomkey", keys::randomkey),
    ("keys", keys::keys),
    ("scan", keys::scan),
    ("dbsize", keys::dbsize),
    ("flushdb", keys::flushdb),
    ("flushall", keys::flushall),
    ("swapdb", keys::swapdb),
    ("object|encoding", keys::object_encoding),
    ("object|refcount", keys::object_refcount),
    ("object|idletime", keys::object_idletime),
    ("object|freq", keys::object_freq),
    ("object|help", keys::object_help),
    ("memory|usage", keys::memory_usage),
    ("module|list", module_cmd::module_list),
    ("module|load", module_cmd::module_load),
    ("module|loadex", module_cmd::module_load),
    ("module|unload", module_cmd::module_unload),
    ("module|help", module_cmd::module_help),
    ("memory|help", memory_cmd::memory_help),
    ("memory|stats", memory_cmd::memory_stats),
    ("memory|doctor", memory_cmd::memory_doctor),
    ("memory|malloc-stats", memory_cmd::memory_malloc_stats),
    ("memory|purge", memory_cmd::memory_purge),
    // expiry
    ("expire", expire::expire),
    ("pexpire", expire::pexpire),
    ("expireat", expire::expireat),
    ("pexpireat", expire::pexpireat),
    ("ttl", expire::ttl),
    ("pttl", expire::pttl),
    ("expiretime", expire::expiretime),
    ("pexpiretime", expire::pexpiretime),
    ("persist", expire::persist),
    // strings
    ("get", strings::get),
    ("set", strings::set),
    ("setnx", strings::setnx),
    ("setex", strings::setex),
    ("psetex", strings::psetex),
    ("mget", strings::mget),
    ("mset", strings::mset),
    ("msetnx", strings::msetnx),
    ("getset", strings::getset),
    ("getdel", strings::getdel),
    ("getex", strings::getex),
    ("append", strings::append),
    ("strlen", strings::strlen),
    ("incr", strings::incr),
    ("decr", strings::decr),
    ("incrby", strings::incrby),
    ("decrby", strings::decrby),
    ("incrbyfloat", strings::incrbyfloat),
    ("getrange", strings::getrange),
    ("substr", strings::getrange),
    ("setrange", strings::setrange),
    ("lcs", strings::lcs),
    ("setbit", bits::setbit),
    ("getbit", bits::getbit),
    ("bitcount", bits::bitcount),
    ("bitpos", bits::bitpos),
    ("bitop", bits::bitop),
    ("pfadd", hyperloglog::pfadd),
    ("pfcount", hyperloglog::pfcount),
    ("pfmerge", hyperloglog::pfmerge),
    ("pfdebug", hyperloglog::pfdebug),
    ("pfselftest", hyperloglog::pfselftest),
    ("bitfield", bitfield::bitfield),
    ("bitfield_ro", bitfield::bitfield_ro),
    // geo
    ("geoadd", geo::geoadd),
    ("geopos", geo::geopos),
    ("geodist", geo::geodist),
    ("geohash", geo::geohash),
    ("georadius", geo::georadius),
    ("georadius_ro", geo::georadius_ro),
    ("georadiusbymember", geo::georadiusbymember),
    ("georadiusbymember_ro", geo::georadiusbymember_ro),
    ("geosearch", geo::geosearch),
    ("geosearchstore", geo::geosearchstore),
    // hashes
    ("hset", hashes::hset),
    ("hsetnx", hashes::hsetnx),
    ("hget", hashes::hget),
    ("hmget", hashes::hmget),
    ("hmset", hashes::hmset),
    ("hdel", hashes::hdel),
    ("hlen", hashes::hlen),
    ("hexists", hashes::hexists),
    ("hgetall", hashes::hgetall),
    ("hkeys", hashes::hkeys),
    ("hvals", hashes::hvals),
    ("hincrby", hashes::hincrby),
    ("hincrbyfloat", hashes::hincrbyfloat),
    ("hstrlen", hashes::hstrlen),
    ("hrandfield", hashes::hrandfield),
    ("hscan", hashes::hscan),
    // sets
    ("sadd", sets::sadd),
    ("srem", sets::srem),
    ("smembers", sets::smembers),
    ("sismember", sets::sismember),
    ("smismember", sets::smismember),
    ("scard", sets::scard),
    ("spop", sets::spop),
    ("srandmember", sets::srandmember),
    ("smove", sets::smove),
    ("sinter", sets::sinter),
    ("sintercard", sets::sintercard),
    ("sinterstore", sets::sinterstore),
    ("sunion", sets::sunion),
    ("sunionstore", sets::sunionstore),
    ("sdiff", sets::sdiff),
    ("sdiffstore", sets::sdiffstore),
    ("sscan", sets::sscan),
    // lists
    ("lpush", lists::lpush),
    ("rpush", lists::rpush),
    ("lpushx", lists::lpushx),
    ("rpushx", lists::rpushx),
    ("lpop", lists::lpop),
    ("rpop", lists::rpop),
    ("llen", lists::llen),
    ("lrange", lists::lrange),
    ("lindex", lists::lindex),
    ("lset", lists::lset),
    ("linsert", lists::linsert),
    ("lrem", lists::lrem),
    ("ltrim", lists::ltrim),
    ("lpos", lists::lpos),
    ("lmove", lists::lmove),
    ("rpoplpush", lists::rpoplpush),
    ("lmpop", lists::lmpop),
    ("blpop", lists::blpop),
    ("brpop", lists::brpop),
    ("blmove", lists::blmove),
    ("brpoplpush", lists::brpoplpush),
    ("blmpop", lists::blmpop),
    // sorted sets
    ("zadd", zsets::zadd),
    ("zincrby", zsets::zincrby),
    ("zrem", zsets::zrem),
    ("zscore", zsets::zscore),
    ("zmscore", zsets::zmscore),
    ("zcard", zsets::zcard),
    ("zcount", zsets::zcount),
    ("zlexcount", zsets::zlexcount),
    ("zrange", zsets::zrange),
    ("zrangestore", zsets::zrangestore),
    ("zrevrange", zsets::zrevrange),
    ("zrangebyscore", zsets::zrangebyscore),
    ("zrevrangebyscore", zsets::zrevrangebyscore),
    ("zrangebylex", zsets::zrangebylex),
    ("zrevrangebylex", zsets::zrevrangebylex),
    ("zrank", zsets::zrank),
    ("zrevrank", zsets::zrevrank),
    ("zremrangebyrank", zsets::zremrangebyrank),
    ("zremrangebyscore", zsets::zremrangebyscore),
    ("zremrangebylex", zsets::zremrangebylex),
    ("zpopmin", zsets::zpopmin),
    ("zpopmax", zsets::zpopmax),
    ("zmpop", zsets::zmpop),
    ("bzpopmin", zsets::bzpopmin),
    ("bzpopmax", zsets::bzpopmax),
    ("bzmpop", zsets::bzmpop),
    ("zrandmember", zsets::zrandmember),
    ("zunion", zsets::zunion),
    ("zunionstore", zsets::zunionstore),
    ("zinter", zsets::zinter),
    ("zinterstore", zsets::zinterstore),
    ("zintercard", zsets::zintercard),
    ("zdiff", zsets::zdiff),
    ("zdiffstore", zsets::zdiffstore),
    ("zscan", zsets::zscan),
    // streams
    ("xadd", streams::xadd),
    ("xtrim", streams::xtrim),
    ("xdel", streams::xdel),
    ("xlen", streams::xlen),
    ("xsetid", streams::xsetid),
    ("xrange", streams::xrange),
    ("xrevrange", streams::xrevrange),
    ("xread", streams::xread),
    ("xreadgroup", streams::xreadgroup),
    ("xgroup|create", streams::xgroup_create),
    ("xgroup|setid", streams::xgroup_setid),
    ("xgroup|destroy", streams::xgroup_destroy),
    ("xgroup|createconsumer", streams::xgroup_createconsumer),
    ("xgroup|delconsumer", streams::xgroup_delconsumer),
    ("xgroup|help", streams::xgroup_help),
    ("xack", streams::xack),
    ("xpending", streams::xpending),
    ("xclaim", streams::xclaim),
    ("xautoclaim", streams::xautoclaim),
    ("xinfo|stream", streams::xinfo_stream),
    ("xinfo|groups", streams::xinfo_groups),
    ("xinfo|consumers", streams::xinfo_consumers),
    ("xinfo|help", streams::xinfo_help),
    // pub/sub
    ("subscribe", pubsub_cmd::subscribe),
    ("unsubscribe", pubsub_cmd::unsubscribe),
    ("psubscribe", pubsub_cmd::psubscribe),
    ("punsubscribe", pubsub_cmd::punsubscribe),
    ("publish", pubsub_cmd::publish),
    ("pubsub|channels", pubsub_cmd::channels),
    ("pubsub|numsub", pubsub_cmd::numsub),
    ("pubsub|numpat", pubsub_cmd::numpat),
    ("pubsub|help", pubsub_cmd::help),
    ("pubsub|shardchannels", pubsub_cmd::shardchannels),
    ("pubsub|shardnumsub", pubsub_cmd::shardnumsub),
    ("spublish", pubsub_cmd::spublish),
    ("ssubscribe", pubsub_cmd::ssubscribe),
    ("sunsubscribe", pubsub_cmd::sunsubscribe),
    // transactions
    ("multi", transactions::multi),
    ("exec", transactions::exec),
    ("discard", transactions::discard),
    ("watch", transactions::watch),
    ("unwatch", transactions::unwatch),
    // server
    ("info", info_cmd::info),
    ("config|get", config_cmd::get),
    ("config|set", config_cmd::set),
    ("config|resetstat", config_cmd::resetstat),
    ("config|rewrite", config_cmd::rewrite),
    ("config|help", config_cmd::help),
    ("command", command_cmd::command),
    ("command|count", command_cmd::count),
    ("command|info", command_cmd::info),
    ("command|docs", command_cmd::docs),
    ("command|list", command_cmd::list),
    ("command|getkeys", command_cmd::getkeys),
    ("command|getkeysandflags", command_cmd::getkeysandflags),
    ("command|help", command_cmd::help),
    ("time", server_cmd::time),
    ("lastsave", server_cmd::lastsave),
    ("dump", dump::dump),
    ("restore", dump::restore),
    ("restore-asking", dump::restore),
    ("migrate", migrate::migrate),
    ("asking", cluster_cmd::asking),
    ("readonly", cluster_cmd::readonly),
    ("readwrite", cluster_cmd::readwrite),
    ("cluster|addslots", cluster_cmd::addslots),
    ("cluster|addslotsrange", cluster_cmd::addslotsrange),
    ("cluster|bumpepoch", cluster_cmd::bumpepoch),
    ("cluster|count-failure-reports", cluster_cmd::count_failure_reports),
    ("cluster|countkeysinslot", cluster_view::countkeysinslot),
    ("cluster|delslots", cluster_cmd::delslots),
    ("cluster|delslotsrange", cluster_cmd::delslotsrange),
    ("cluster|failover", cluster_cmd::failover),
    ("cluster|flushslots", cluster_cmd::flushslots),
    ("cluster|forget", cluster_cmd::forget),
    ("cluster|getkeysinslot", cluster_view::getkeysinslot),
    ("cluster|help", cluster_view::help),
    ("cluster|info", cluster_view::info),
    ("cluster|keyslot", cluster_view::keyslot),
    ("cluster|links", cluster_view::links),
    ("cluster|meet", cluster_cmd::meet),
    ("cluster|myid", cluster_view::myid),
    ("cluster|nodes", cluster_view::nodes),
    ("cluster|replicas", cluster_view::replicas),
    ("cluster|replicate", cluster_cmd::replicate),
    ("cluster|reset", cluster_cmd::reset),
    ("cluster|saveconfig", cluster_cmd::saveconfig),
    ("cluster|set-config-epoch", cluster_cmd::set_config_epoch),
    ("cluster|setslot", cluster_cmd::setslot),
    ("cluster|shards", cluster_view::shards),
    ("cluster|slaves", cluster_view::replicas),
    ("cluster|slots", cluster_view::slots),
    ("save", persistence_cmd::save),
    ("bgsave", persistence_cmd::bgsave),
    ("bgrewriteaof", persistence_cmd::bgrewriteaof),
    ("role", replication_cmd::role),
    ("replfreeze", replication_cmd::replfreeze),
    ("replicaof", replication_cmd::replicaof),
    ("slaveof", replication_cmd::replicaof),
    ("replconf", replication_cmd::replconf),
    ("psync", replication_cmd::psync),
    ("sync", replication_cmd::sync),
    ("failover", replication_cmd::failover),
    ("wait", replication_cmd::wait),
    ("waitaof", replication_cmd::waitaof),
    ("shutdown", server_cmd::shutdown),
    ("monitor", server_cmd::monitor),
    ("slowlog|get", server_cmd::slowlog_get),
    ("slowlog|len", server_cmd::slowlog_len),
    ("slowlog|reset", server_cmd::slowlog_reset),
    ("slowlog|help", server_cmd::slowlog_help),
    ("latency|latest", server_cmd::latency_latest),
    ("latency|history", server_cmd::latency_history),
    ("latency|reset", server_cmd::latency_reset),
    ("latency|histogram", latency_cmd::latency_histogram),
    ("latency|help", server_cmd::latency_help),
    ("latency|doctor", latency_cmd::latency_doctor),
    ("latency|graph", latency_cmd::latency_graph),
    ("lolwut", lolwut::lolwut),
    ("acl|whoami", acl_cmd::whoami),
    ("acl|list", acl_cmd::list),
    ("acl|users", acl_cmd::users),
    ("acl|cat", acl_cmd::cat),
    ("acl|setuser", acl_cmd::setuser),
    ("acl|getuser", acl_cmd::getuser),
    ("acl|deluser", acl_cmd::deluser),
    ("acl|dryrun", acl_cmd::dryrun),
    ("acl|genpass", acl_cmd::genpass),
    ("acl|log", acl_cmd::log),
    ("acl|load", acl_cmd::load),
    ("acl|save", acl_cmd::save),
    ("acl|help", acl_cmd::help),
    ("debug", debug::debug),
    // scripting
    ("eval", scripting::eval),
    ("eval_ro", scripting::eval_ro),
    ("evalsha", scripting::evalsha),
    ("evalsha_ro", scripting::evalsha_ro),
    ("script|load", scripting::script_load),
    ("script|exists", scripting::script_exists),
    ("script|flush", scripting::script_flush),
    ("script|kill", scripting::script_kill),
    ("script|debug", scripting::script_debug),
    ("script|help", scripting::script_help),
    ("fcall", functions::fcall),
    ("fcall_ro", functions::fcall_ro),
    ("function|load", functions::function_load),
    ("function|delete", functions::function_delete),
    ("function|flush", functions::function_flush),
    ("function|list", functions::function_list),
    ("function|dump", functions::function_dump),
    ("function|restore", functions::function_restore),
    ("function|stats", functions::function_stats),
    ("function|kill", functions::function_kill),
    ("function|help", functions::function_help),
];

/// Why a command name did not resolve.
pub enum Lookup {
    Found(CmdId),
    Unknown,
    /// A container command with an unknown subcommand.
    UnknownSub(CmdId),
}

pub struct CommandTable {
    pub cmds: Vec<Cmd>,
    top: HashMap<Vec<u8>, CmdId>,
    /// The same names (those of at most 16 bytes, nearly all) keyed by [`packed_name`],
    /// with their length: every request looks its command up, and hashing one integer
    /// costs a fraction of hashing a byte string (bench/instructions.py: about 100
    /// instructions less per request).
    packed: PackedNames,
}

/// The length recorded for a packed key that two names share (see `build`).
const AMBIGUOUS: u8 = u8::MAX;

/// A name of at most 16 bytes, lowercased, as one integer (zero-padded, so the length
/// must be compared too: `get` and `get\0` pack alike). Loaded as at most two overlapping
/// words and lowercased eight bytes at a time: every request's name goes through here.
#[inline]
fn packed_name(name: &[u8]) -> Option<u128> {
    let n = name.len();
    let (lo, hi) = match n {
        9..=16 => {
            let head = u64::from_le_bytes(*name.first_chunk::<8>()?);
            let last = u64::from_le_bytes(*name.last_chunk::<8>()?);
            // `last` ends with the bytes past the eighth: shifted down to start at 0.
            (head, last >> (8 * (16 - n)))
        }
        4..=8 => {
            let head = u64::from(u32::from_le_bytes(*name.first_chunk::<4>()?));
            let last = u64::from(u32::from_le_bytes(*name.last_chunk::<4>()?));
            (head | last << (8 * (n - 4)), 0)
        }
        0..=3 => (name.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)), 0),
        _ => return None,
    };
    Some(u128::from(ascii_lowercase_word(lo)) | u128::from(ascii_lowercase_word(hi)) << 64)
}

/// `make_ascii_lowercase` of the eight bytes of a word at once: a byte from `A` to `Z`
/// gets its 0x20 bit, every other byte (non-ASCII ones included) is left alone.
#[inline]
fn ascii_lowercase_word(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    // Per byte (no carry crosses a byte: each is at most 0x7f + 0x3f): high bit set
    // when the byte's low 7 bits are >= 'A' (0x41), and when they are > 'Z' (0x5a).
    let at_least_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let past_z = low + 0x2525_2525_2525_2525;
    let upper = at_least_a & !past_z & !x & HIGH;
    x | upper >> 2
}

/// The hasher of [`CommandTable::packed`]'s keys: one folded 64x64-bit multiply of the
/// name's two halves (ahash's general path was a third of a lookup's instructions).
#[derive(Default)]
pub struct PackedNameHasher(u64);

impl std::hash::Hasher for PackedNameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed here; this keeps the trait total.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        let product =
            u128::from(n as u64 ^ 0x243f_6a88_85a3_08d3) * u128::from((n >> 64) as u64 ^ 0x1319_8a2e_0370_7344);
        self.0 = product as u64 ^ (product >> 64) as u64;
    }
}

type PackedNames = std::collections::HashMap<u128, (CmdId, u8), std::hash::BuildHasherDefault<PackedNameHasher>>;

impl CommandTable {
    /// Builds the table. `renames` are `rename-command` directives (an empty new name
    /// disables the command); an unknown name or a clash is an error for startup.
    pub fn build(renames: &[(String, String)]) -> Result<CommandTable, String> {
        let handlers: HashMap<&str, Handler> = HANDLERS.iter().copied().collect();
        let meta: HashMap<&str, &spec::CmdMeta> = spec_keys::META.iter().map(|m| (m.fullname, m)).collect();
        let mut cmds: Vec<Cmd> = Vec::new();
        let mut by_full: HashMap<&'static str, CmdId> = HashMap::new();
        for spec in spec_data::SPECS {
            let (parent_name, name) = match spec.fullname.split_once('|') {
                Some((p, n)) => (Some(p), n),
                None => (None, spec.fullname),
            };
            let handler = handlers.get(spec.fullname).copied();
            let meta = meta.get(spec.fullname);
            let id = cmds.len();
            cmds.push(Cmd {
                spec,
                name,
                handler,
                parent: None,
                subs: Vec::new(),
                cats: spec::cats::implicit(spec.flags, spec.cats),
                key_specs: meta.map_or(&[], |m| m.key_specs),
                tips: meta.map_or(&[], |m| m.tips),
                getkeys: meta.and_then(|m| m.getkeys),
                fixed_keys: meta.and_then(|m| getkeys::fixed_keys(m.key_specs, spec.arity, m.getkeys)),
            });
            by_full.insert(spec.fullname, id);
            let _ = parent_name;
        }
        for id in 0..cmds.len() {
            if let Some((p, _)) = cmds[id].spec.fullname.split_once('|') {
                if let Some(&pid) = by_full.get(p) {
                    cmds[id].parent = Some(pid);
                    if cmds[id].handler.is_some() {
                        cmds[pid].subs.push(id);
                    }
                }
            }
        }
        for (name, _) in HANDLERS {
            assert!(by_full.contains_key(name), "handler registered for unknown command {name}");
        }
        for m in spec_keys::META {
            assert!(by_full.contains_key(m.fullname), "key specs for unknown command {}", m.fullname);
        }
        let mut top = HashMap::new();
        for (id, c) in cmds.iter().enumerate() {
            if c.parent.is_none() && (c.handler.is_some() || !c.subs.is_empty()) {
                top.insert(c.name.as_bytes().to_vec(), id);
            }
        }
        for (from, to) in renames {
            let Some(id) = top.remove(from.to_ascii_lowercase().as_bytes()) else {
                return Err("No such command in rename-command".into());
            };
            if !to.is_empty() && top.insert(to.to_ascii_lowercase().into_bytes(), id).is_some() {
                return Err("Target command name already exists".into());
            }
        }
        let mut packed = PackedNames::default();
        for (name, &id) in &top {
            if let Some(key) = packed_name(name) {
                // Names differing only by trailing NULs (a rename-command to "get\x00")
                // pack alike: such a key sends every lookup to `top`.
                let entry = packed.entry(key).or_insert((id, name.len() as u8));
                if entry.1 as usize != name.len() || entry.0 != id {
                    *entry = (id, AMBIGUOUS);
                }
            }
        }
        Ok(CommandTable { cmds, top, packed })
    }

    pub fn get(&self, id: CmdId) -> &Cmd {
        &self.cmds[id]
    }

    /// Resolves a top-level name (case-insensitive).
    #[inline]
    pub fn find(&self, name: &[u8]) -> Option<CmdId> {
        if let Some(key) = packed_name(name) {
            match self.packed.get(&key) {
                Some(&(_, AMBIGUOUS)) => {}
                hit => return hit.filter(|&&(_, len)| len as usize == name.len()).map(|&(id, _)| id),
            }
        }
        let mut buf = [0u8; 32];
        if name.len() <= buf.len() {
            let lower = &mut buf[..name.len()];
            lower.copy_from_slice(name);
            lower.make_ascii_lowercase();
            self.top.get(&lower[..]).copied()
        } else {
            self.top.get(&name.to_ascii_lowercase()).copied()
        }
    }

    /// Resolves `argv` to a command or subcommand.
    pub fn lookup(&self, argv: &ferrokv_resp::Argv) -> Lookup {
        let Some(id) = self.find(argv.get(0)) else {
            return Lookup::Unknown;
        };
        self.lookup_sub(id, argv)
    }

    /// [`CommandTable::lookup`] of a line whose name was found to be `id`.
    pub fn lookup_sub(&self, id: CmdId, argv: &ferrokv_resp::Argv) -> Lookup {
        let c = &self.cmds[id];
        if c.subs.is_empty() || argv.len() < 2 {
            return Lookup::Found(id);
        }
        let sub = argv.get(1);
        match c.subs.iter().find(|&&s| self.cmds[s].name.as_bytes().eq_ignore_ascii_case(sub)) {
            Some(&s) => Lookup::Found(s),
            None => Lookup::UnknownSub(id),
        }
    }

    /// Resolves a full name like `config|get` or `get` (COMMAND INFO/DOCS).
    pub fn find_full(&self, name: &[u8]) -> Option<CmdId> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        match lower.split_once('|') {
            None => self.find(lower.as_bytes()),
            Some((p, s)) => {
                let pid = self.find(p.as_bytes())?;
                self.cmds[pid].subs.iter().copied().find(|&i| self.cmds[i].name == s)
            }
        }
    }

    /// Top-level commands callable now (after renames), in a stable order.
    pub fn top_level(&self) -> Vec<CmdId> {
        let mut v: Vec<CmdId> = self.top.values().copied().collect();
        v.sort_unstable();
        v
    }

    /// The name a command is called by now (a renamed command answers to its new name).
    pub fn current_name(&self, id: CmdId) -> Option<&[u8]> {
        self.top.iter().find(|(_, &v)| v == id).map(|(k, _)| k.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_names_are_the_zero_padded_lowercase_bytes() {
        let reference = |name: &[u8]| -> Option<u128> {
            let mut buf = [0u8; 16];
            buf.get_mut(..name.len())?.copy_from_slice(name);
            buf.make_ascii_lowercase();
            Some(u128::from_le_bytes(buf))
        };
        let bytes: Vec<u8> = (0..=255u8).collect();
        const EDGES: &[u8] = b"@AZ[`az{GeTsEt\x00\x7f\x80\xc1\xda\xff";
        let mut seed = 0x9e37_79b9_u64;
        for len in 0..=18 {
            for round in 0..2000 {
                let name: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        // Half the rounds from letters and the bytes around them.
                        let pick = (seed >> 33) as usize;
                        if round % 2 == 0 {
                            EDGES[pick % EDGES.len()]
                        } else {
                            bytes[pick % 256]
                        }
                    })
                    .collect();
                assert_eq!(packed_name(&name), reference(&name), "{name:?}");
            }
        }
    }

    #[test]
    fn find_is_case_insensitive_and_exact_in_length() {
        let t = CommandTable::build(&[]).expect("table");
        let get = t.find(b"get").expect("get");
        assert_eq!(t.find(b"GeT"), Some(get));
        // Zero padding must not make a longer name match a shorter one.
        assert_eq!(t.find(b"get\0"), None);
        assert_eq!(t.find(b""), None);
        let sixteen = t.find(b"ZREVRANGEBYSCORE").expect("zrevrangebyscore");
        assert_eq!(t.get(sixteen).name, "zrevrangebyscore");
    }

    #[test]
    fn names_differing_only_by_trailing_nuls_are_both_found() {
        let t = CommandTable::build(&[("set".into(), "get\0".into())]).expect("table");
        assert_eq!(t.find(b"get").map(|id| t.get(id).name), Some("get"));
        assert_eq!(t.find(b"GET\0").map(|id| t.get(id).name), Some("set"));
        assert_eq!(t.find(b"get\0\0"), None);
    }

    #[test]
    fn names_over_16_bytes_are_found_too() {
        let t = CommandTable::build(&[("get".into(), "get_but_with_a_long_name".into())]).expect("table");
        assert_eq!(t.find(b"GET_BUT_WITH_A_LONG_NAME").map(|id| t.get(id).name), Some("get"));
        assert_eq!(t.find(b"get_but_with_a_long_nam"), None);
    }

    #[test]
    fn renamed_commands_answer_to_their_new_name_only() {
        let t = CommandTable::build(&[("get".into(), "fetch".into()), ("set".into(), String::new())]).expect("table");
        assert!(t.find(b"get").is_none());
        assert!(t.find(b"set").is_none());
        assert_eq!(t.find(b"FETCH").map(|id| t.get(id).name), Some("get"));
    }
}
