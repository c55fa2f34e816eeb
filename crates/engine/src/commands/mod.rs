//! The command table: Redis's command metadata ([`spec_data`], plus key specifications
//! and tips in [`spec_keys`]) joined with ferrokv's handlers ([`HANDLERS`]), one module
//! per command family. Dispatch, arity checks, COMMAND INFO/DOCS/GETKEYS and ACL
//! categories all read this one table.

pub mod getkeys;
pub mod spec;
mod spec_data;
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
    pub summary: &'static str,
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

/// Every command with a handler: (full name, handler, summary).
pub const HANDLERS: &[(&str, Handler, &str)] = &[
    // connection
    ("ping", connection::ping, "Returns the server's liveliness response."),
    ("echo", connection::echo, "Returns the given string."),
    ("quit", connection::quit, "Closes the connection."),
    ("reset", connection::reset, "Resets the connection."),
    ("auth", connection::auth, "Authenticates the connection."),
    ("hello", connection::hello, "Handshakes with the server."),
    ("select", connection::select, "Changes the selected database."),
    ("client|id", client_cmd::id, "Returns the unique client ID of the connection."),
    ("client|setname", client_cmd::setname, "Sets the connection name."),
    ("client|getname", client_cmd::getname, "Returns the name of the connection."),
    ("client|list", client_cmd::list, "Lists open connections."),
    ("client|info", client_cmd::info, "Returns information about the connection."),
    ("client|kill", client_cmd::kill, "Terminates open connections."),
    ("client|unblock", client_cmd::unblock, "Unblocks a client blocked by a blocking command from a different connection."),
    ("client|pause", client_cmd::pause, "Suspends commands processing."),
    ("client|unpause", client_cmd::unpause, "Resumes processing commands from paused clients."),
    ("client|reply", client_cmd::reply, "Instructs the server whether to reply to commands."),
    ("client|no-evict", client_cmd::no_evict, "Sets the client eviction mode of the connection."),
    ("client|setinfo", client_cmd::setinfo, "Sets information specific to the client or connection."),
    ("client|help", client_cmd::help, "Returns helpful text about the different subcommands."),
    ("client|tracking", tracking_cmd::tracking, "Controls server-assisted client-side caching for the connection."),
    ("client|caching", tracking_cmd::caching, "Instructs the server whether to track the keys in the next request."),
    ("client|getredir", tracking_cmd::getredir, "Returns the client ID to which the connection's tracking notifications are redirected."),
    ("client|trackinginfo", tracking_cmd::trackinginfo, "Returns information about server-assisted client-side caching for the connection."),
    // keyspace
    ("del", keys::del, "Deletes one or more keys."),
    ("unlink", keys::unlink, "Asynchronously deletes one or more keys."),
    ("exists", keys::exists, "Determines whether one or more keys exist."),
    ("type", keys::type_cmd, "Determines the type of value stored at a key."),
    ("rename", keys::rename, "Renames a key and overwrites the destination."),
    ("renamenx", keys::renamenx, "Renames a key only when the target key name doesn't exist."),
    ("copy", keys::copy, "Copies the value of a key to a new key."),
    ("sort", sort::sort, "Sorts the elements in a list, a set, or a sorted set, optionally storing the result."),
    ("sort_ro", sort::sort_ro, "Returns the sorted elements of a list, a set, or a sorted set."),
    ("move", keys::move_cmd, "Moves a key to another database."),
    (
        "touch",
        keys::touch,
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
    ),
    ("randomkey", keys::randomkey, "Returns a random key name from the database."),
    ("keys", keys::keys, "Returns all key names that match a pattern."),
    ("scan", keys::scan, "Iterates over the key names in the database."),
    ("dbsize", keys::dbsize, "Returns the number of keys in the database."),
    ("flushdb", keys::flushdb, "Removes all keys from the current database."),
    ("flushall", keys::flushall, "Removes all keys from all databases."),
    ("swapdb", keys::swapdb, "Swaps two Redis databases."),
    ("object|encoding", keys::object_encoding, "Returns the internal encoding of a Redis object."),
    ("object|refcount", keys::object_refcount, "Returns the reference count of a value of a key."),
    ("object|idletime", keys::object_idletime, "Returns the time since the last access to a Redis object."),
    ("object|freq", keys::object_freq, "Returns the logarithmic access frequency counter of a Redis object."),
    ("object|help", keys::object_help, "Returns helpful text about the different subcommands."),
    ("memory|usage", keys::memory_usage, "Estimates the memory usage of a key."),
    ("module|list", module_cmd::module_list, "List all modules loaded by the server"),
    ("module|load", module_cmd::module_load, "Load a module"),
    ("module|loadex", module_cmd::module_load, "Load a module with extended parameters"),
    ("module|unload", module_cmd::module_unload, "Unload a module"),
    ("module|help", module_cmd::module_help, "Show helpful text about the different subcommands"),
    ("memory|help", memory_cmd::memory_help, "Show helpful text about the different subcommands"),
    ("memory|stats", memory_cmd::memory_stats, "Show memory usage details"),
    ("memory|doctor", memory_cmd::memory_doctor, "Outputs memory problems report"),
    ("memory|malloc-stats", memory_cmd::memory_malloc_stats, "Show allocator internal stats"),
    ("memory|purge", memory_cmd::memory_purge, "Ask the allocator to release memory"),
    // expiry
    ("expire", expire::expire, "Sets the expiration time of a key in seconds."),
    ("pexpire", expire::pexpire, "Sets the expiration time of a key in milliseconds."),
    ("expireat", expire::expireat, "Sets the expiration time of a key to a Unix timestamp."),
    ("pexpireat", expire::pexpireat, "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    ("ttl", expire::ttl, "Returns the expiration time in seconds of a key."),
    ("pttl", expire::pttl, "Returns the expiration time in milliseconds of a key."),
    ("expiretime", expire::expiretime, "Returns the expiration time of a key as a Unix timestamp."),
    ("pexpiretime", expire::pexpiretime, "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    ("persist", expire::persist, "Removes the expiration time of a key."),
    // strings
    ("get", strings::get, "Returns the string value of a key."),
    ("set", strings::set, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."),
    ("setnx", strings::setnx, "Set the string value of a key only when the key doesn't exist."),
    (
        "setex",
        strings::setex,
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    (
        "psetex",
        strings::psetex,
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    ("mget", strings::mget, "Atomically returns the string values of one or more keys."),
    ("mset", strings::mset, "Atomically creates or modifies the string values of one or more keys."),
    (
        "msetnx",
        strings::msetnx,
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    ),
    ("getset", strings::getset, "Returns the previous string value of a key after setting it to a new value."),
    ("getdel", strings::getdel, "Returns the string value of a key after deleting the key."),
    ("getex", strings::getex, "Returns the string value of a key after setting its expiration time."),
    ("append", strings::append, "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    ("strlen", strings::strlen, "Returns the length of a string value."),
    (
        "incr",
        strings::incr,
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    (
        "decr",
        strings::decr,
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    (
        "incrby",
        strings::incrby,
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    (
        "decrby",
        strings::decrby,
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    (
        "incrbyfloat",
        strings::incrbyfloat,
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    ("getrange", strings::getrange, "Returns a substring of the string stored at a key."),
    ("substr", strings::getrange, "Returns a substring from a string value."),
    (
        "setrange",
        strings::setrange,
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
    ("lcs", strings::lcs, "Finds the longest common substring."),
    (
        "setbit",
        bits::setbit,
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
    ),
    ("getbit", bits::getbit, "Returns a bit value by offset."),
    ("bitcount", bits::bitcount, "Counts the number of set bits (population counting) in a string."),
    ("bitpos", bits::bitpos, "Finds the first set (1) or clear (0) bit in a string."),
    ("bitop", bits::bitop, "Performs bitwise operations on multiple strings, and stores the result."),
    ("pfadd", hyperloglog::pfadd, "Adds the specified elements to the specified HyperLogLog."),
    ("pfcount", hyperloglog::pfcount, "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)."),
    ("pfmerge", hyperloglog::pfmerge, "Merge N different HyperLogLogs into a single one."),
    ("pfdebug", hyperloglog::pfdebug, "Internal commands for debugging HyperLogLog values"),
    ("pfselftest", hyperloglog::pfselftest, "An internal command for testing HyperLogLog values"),
    ("bitfield", bitfield::bitfield, "Perform arbitrary bitfield integer operations on strings"),
    ("bitfield_ro", bitfield::bitfield_ro, "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"),
    // geo
    ("geoadd", geo::geoadd, "Add one or more geospatial items in the geospatial index represented using a sorted set"),
    ("geopos", geo::geopos, "Returns longitude and latitude of members of a geospatial index"),
    ("geodist", geo::geodist, "Returns the distance between two members of a geospatial index"),
    ("geohash", geo::geohash, "Returns members of a geospatial index as standard geohash strings"),
    (
        "georadius",
        geo::georadius,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point",
    ),
    ("georadius_ro", geo::georadius_ro, "A read-only variant for GEORADIUS"),
    (
        "georadiusbymember",
        geo::georadiusbymember,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member",
    ),
    ("georadiusbymember_ro", geo::georadiusbymember_ro, "A read-only variant for GEORADIUSBYMEMBER"),
    (
        "geosearch",
        geo::geosearch,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.",
    ),
    (
        "geosearchstore",
        geo::geosearchstore,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.",
    ),
    // hashes
    ("hset", hashes::hset, "Creates or modifies the value of a field in a hash."),
    ("hsetnx", hashes::hsetnx, "Sets the value of a field in a hash only when the field doesn't exist."),
    ("hget", hashes::hget, "Returns the value of a field in a hash."),
    ("hmget", hashes::hmget, "Returns the values of all fields in a hash."),
    ("hmset", hashes::hmset, "Sets the values of multiple fields."),
    ("hdel", hashes::hdel, "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    ("hlen", hashes::hlen, "Returns the number of fields in a hash."),
    ("hexists", hashes::hexists, "Determines whether a field exists in a hash."),
    ("hgetall", hashes::hgetall, "Returns all fields and values in a hash."),
    ("hkeys", hashes::hkeys, "Returns all fields in a hash."),
    ("hvals", hashes::hvals, "Returns all values in a hash."),
    ("hincrby", hashes::hincrby, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    ("hincrbyfloat", hashes::hincrbyfloat, "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    ("hstrlen", hashes::hstrlen, "Returns the length of the value of a field."),
    ("hrandfield", hashes::hrandfield, "Returns one or more random fields from a hash."),
    ("hscan", hashes::hscan, "Iterates over fields and values of a hash."),
    // sets
    ("sadd", sets::sadd, "Adds one or more members to a set. Creates the key if it doesn't exist."),
    ("srem", sets::srem, "Removes one or more members from a set. Deletes the set if the last member was removed."),
    ("smembers", sets::smembers, "Returns all members of a set."),
    ("sismember", sets::sismember, "Determines whether a member belongs to a set."),
    ("smismember", sets::smismember, "Determines whether multiple members belong to a set."),
    ("scard", sets::scard, "Returns the number of members in a set."),
    ("spop", sets::spop, "Returns one or more random members from a set after removing them."),
    ("srandmember", sets::srandmember, "Get one or multiple random members from a set."),
    ("smove", sets::smove, "Moves a member from one set to another."),
    ("sinter", sets::sinter, "Returns the intersect of multiple sets."),
    ("sintercard", sets::sintercard, "Returns the number of members of the intersect of multiple sets."),
    ("sinterstore", sets::sinterstore, "Stores the intersect of multiple sets in a key."),
    ("sunion", sets::sunion, "Returns the union of multiple sets."),
    ("sunionstore", sets::sunionstore, "Stores the union of multiple sets in a key."),
    ("sdiff", sets::sdiff, "Returns the difference of multiple sets."),
    ("sdiffstore", sets::sdiffstore, "Stores the difference of multiple sets in a key."),
    ("sscan", sets::sscan, "Iterates over members of a set."),
    // lists
    ("lpush", lists::lpush, "Adds elements at the head of a list, creating the list if needed."),
    ("rpush", lists::rpush, "Adds elements at the tail of a list, creating the list if needed."),
    ("lpushx", lists::lpushx, "Adds elements at the head of a list that already exists."),
    ("rpushx", lists::rpushx, "Adds elements at the tail of a list that already exists."),
    ("lpop", lists::lpop, "Takes one or more elements off the head of a list."),
    ("rpop", lists::rpop, "Takes one or more elements off the tail of a list."),
    ("llen", lists::llen, "Counts the elements of a list."),
    ("lrange", lists::lrange, "Reads the elements between two indexes of a list."),
    ("lindex", lists::lindex, "Reads the element at an index of a list."),
    ("lset", lists::lset, "Overwrites the element at an index of a list."),
    ("linsert", lists::linsert, "Inserts an element next to the first occurrence of a pivot in a list."),
    ("lrem", lists::lrem, "Deletes occurrences of an element from a list."),
    ("ltrim", lists::ltrim, "Keeps only the elements between two indexes of a list."),
    ("lpos", lists::lpos, "Finds the indexes at which an element occurs in a list."),
    ("lmove", lists::lmove, "Moves an element from an end of one list to an end of another, returning it."),
    ("rpoplpush", lists::rpoplpush, "Moves the tail element of one list to the head of another, returning it."),
    ("lmpop", lists::lmpop, "Takes elements off one end of the first non-empty list among several."),
    ("blpop", lists::blpop, "Takes the head element of the first non-empty list, waiting for one if none has any."),
    ("brpop", lists::brpop, "Takes the tail element of the first non-empty list, waiting for one if none has any."),
    ("blmove", lists::blmove, "Like LMOVE, but waits for the source list to get an element."),
    ("brpoplpush", lists::brpoplpush, "Like RPOPLPUSH, but waits for the source list to get an element."),
    ("blmpop", lists::blmpop, "Like LMPOP, but waits for one of the lists to get elements."),
    // sorted sets
    ("zadd", zsets::zadd, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    ("zincrby", zsets::zincrby, "Increments the score of a member in a sorted set."),
    ("zrem", zsets::zrem, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    ("zscore", zsets::zscore, "Returns the score of a member in a sorted set."),
    ("zmscore", zsets::zmscore, "Returns the score of one or more members in a sorted set."),
    ("zcard", zsets::zcard, "Returns the number of members in a sorted set."),
    ("zcount", zsets::zcount, "Returns the count of members in a sorted set that have scores within a range."),
    ("zlexcount", zsets::zlexcount, "Returns the number of members in a sorted set within a lexicographical range."),
    ("zrange", zsets::zrange, "Returns members in a sorted set within a range of indexes, scores or lexicographical order."),
    ("zrangestore", zsets::zrangestore, "Stores a range of members from a sorted set in a key."),
    ("zrevrange", zsets::zrevrange, "Returns members in a sorted set within a range of indexes, from high to low."),
    ("zrangebyscore", zsets::zrangebyscore, "Returns members in a sorted set within a range of scores."),
    ("zrevrangebyscore", zsets::zrevrangebyscore, "Returns members in a sorted set within a range of scores, from high to low."),
    ("zrangebylex", zsets::zrangebylex, "Returns members in a sorted set within a lexicographical range."),
    ("zrevrangebylex", zsets::zrevrangebylex, "Returns members in a sorted set within a lexicographical range, in reverse order."),
    ("zrank", zsets::zrank, "Returns the index of a member in a sorted set ordered by ascending scores."),
    ("zrevrank", zsets::zrevrank, "Returns the index of a member in a sorted set ordered by descending scores."),
    ("zremrangebyrank", zsets::zremrangebyrank, "Removes members in a sorted set within a range of indexes."),
    ("zremrangebyscore", zsets::zremrangebyscore, "Removes members in a sorted set within a range of scores."),
    ("zremrangebylex", zsets::zremrangebylex, "Removes members in a sorted set within a lexicographical range."),
    ("zpopmin", zsets::zpopmin, "Returns the lowest-scoring members from a sorted set after removing them."),
    ("zpopmax", zsets::zpopmax, "Returns the highest-scoring members from a sorted set after removing them."),
    ("zmpop", zsets::zmpop, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them."),
    ("bzpopmin", zsets::bzpopmin, "Removes and returns the member with the lowest score from one or more sorted sets, or blocks until one is available."),
    ("bzpopmax", zsets::bzpopmax, "Removes and returns the member with the highest score from one or more sorted sets, or blocks until one is available."),
    ("bzmpop", zsets::bzmpop, "Removes and returns members by score from one or more sorted sets, or blocks until one is available."),
    ("zrandmember", zsets::zrandmember, "Returns one or more random members from a sorted set."),
    ("zunion", zsets::zunion, "Returns the union of multiple sorted sets."),
    ("zunionstore", zsets::zunionstore, "Stores the union of multiple sorted sets in a key."),
    ("zinter", zsets::zinter, "Returns the intersect of multiple sorted sets."),
    ("zinterstore", zsets::zinterstore, "Stores the intersect of multiple sorted sets in a key."),
    ("zintercard", zsets::zintercard, "Returns the number of members of the intersect of multiple sorted sets."),
    ("zdiff", zsets::zdiff, "Returns the difference between multiple sorted sets."),
    ("zdiffstore", zsets::zdiffstore, "Stores the difference of multiple sorted sets in a key."),
    ("zscan", zsets::zscan, "Iterates over members and scores of a sorted set."),
    // streams
    ("xadd", streams::xadd, "Appends a new message to a stream. Creates the key if it doesn't exist."),
    ("xtrim", streams::xtrim, "Deletes messages from the beginning of a stream."),
    ("xdel", streams::xdel, "Returns the number of messages after removing them from a stream."),
    ("xlen", streams::xlen, "Return the number of messages in a stream."),
    ("xsetid", streams::xsetid, "An internal command for replicating stream values."),
    ("xrange", streams::xrange, "Returns the messages from a stream within a range of IDs."),
    ("xrevrange", streams::xrevrange, "Returns the messages from a stream within a range of IDs in reverse order."),
    ("xread", streams::xread, "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise."),
    ("xreadgroup", streams::xreadgroup, "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise."),
    ("xgroup|create", streams::xgroup_create, "Creates a consumer group."),
    ("xgroup|setid", streams::xgroup_setid, "Sets the last-delivered ID of a consumer group."),
    ("xgroup|destroy", streams::xgroup_destroy, "Destroys a consumer group."),
    ("xgroup|createconsumer", streams::xgroup_createconsumer, "Creates a consumer in a consumer group."),
    ("xgroup|delconsumer", streams::xgroup_delconsumer, "Deletes a consumer from a consumer group."),
    ("xgroup|help", streams::xgroup_help, "Returns helpful text about the different subcommands."),
    ("xack", streams::xack, "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream."),
    ("xpending", streams::xpending, "Returns the information and entries from a stream consumer group's pending entries list."),
    ("xclaim", streams::xclaim, "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member."),
    ("xautoclaim", streams::xautoclaim, "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member."),
    ("xinfo|stream", streams::xinfo_stream, "Returns information about a stream."),
    ("xinfo|groups", streams::xinfo_groups, "Returns a list of the consumer groups of a stream."),
    ("xinfo|consumers", streams::xinfo_consumers, "Returns a list of the consumers in a consumer group."),
    ("xinfo|help", streams::xinfo_help, "Returns helpful text about the different subcommands."),
    // pub/sub
    ("subscribe", pubsub_cmd::subscribe, "Listens for messages published to channels."),
    ("unsubscribe", pubsub_cmd::unsubscribe, "Stops listening to messages posted to channels."),
    (
        "psubscribe",
        pubsub_cmd::psubscribe,
        "Listens for messages published to channels that match one or more patterns.",
    ),
    (
        "punsubscribe",
        pubsub_cmd::punsubscribe,
        "Stops listening to messages published to channels that match one or more patterns.",
    ),
    ("publish", pubsub_cmd::publish, "Posts a message to a channel."),
    ("pubsub|channels", pubsub_cmd::channels, "Returns the active channels."),
    ("pubsub|numsub", pubsub_cmd::numsub, "Returns a count of subscribers to channels."),
    ("pubsub|numpat", pubsub_cmd::numpat, "Returns a count of unique pattern subscriptions."),
    ("pubsub|help", pubsub_cmd::help, "Returns helpful text about the different subcommands."),
    ("pubsub|shardchannels", pubsub_cmd::shardchannels, "List active shard channels"),
    ("pubsub|shardnumsub", pubsub_cmd::shardnumsub, "Get the count of subscribers for shard channels"),
    ("spublish", pubsub_cmd::spublish, "Post a message to a shard channel"),
    ("ssubscribe", pubsub_cmd::ssubscribe, "Listen for messages published to the given shard channels"),
    ("sunsubscribe", pubsub_cmd::sunsubscribe, "Stop listening for messages posted to the given shard channels"),
    // transactions
    ("multi", transactions::multi, "Starts a transaction."),
    ("exec", transactions::exec, "Executes all commands in a transaction."),
    ("discard", transactions::discard, "Discards a transaction."),
    ("watch", transactions::watch, "Monitors changes to keys to determine the execution of a transaction."),
    ("unwatch", transactions::unwatch, "Forgets about watched keys of a transaction."),
    // server
    ("info", info_cmd::info, "Returns information and statistics about the server."),
    ("config|get", config_cmd::get, "Returns the effective values of configuration parameters."),
    ("config|set", config_cmd::set, "Sets configuration parameters in-flight."),
    ("config|resetstat", config_cmd::resetstat, "Resets the server's statistics."),
    ("config|rewrite", config_cmd::rewrite, "Persists the effective configuration to file."),
    ("config|help", config_cmd::help, "Returns helpful text about the different subcommands."),
    ("command", command_cmd::command, "Returns detailed information about all commands."),
    ("command|count", command_cmd::count, "Returns a count of commands."),
    ("command|info", command_cmd::info, "Returns information about one, multiple or all commands."),
    ("command|docs", command_cmd::docs, "Returns documentary information about one, multiple or all commands."),
    ("command|list", command_cmd::list, "Returns a list of command names."),
    ("command|getkeys", command_cmd::getkeys, "Extracts the key names from an arbitrary command."),
    (
        "command|getkeysandflags",
        command_cmd::getkeysandflags,
        "Extracts the key names and access flags for an arbitrary command.",
    ),
    ("command|help", command_cmd::help, "Returns helpful text about the different subcommands."),
    ("time", server_cmd::time, "Returns the server time."),
    ("lastsave", server_cmd::lastsave, "Returns the Unix timestamp of the last successful save to disk."),
    ("dump", dump::dump, "Returns a serialized representation of the value stored at a key."),
    ("restore", dump::restore, "Creates a key from the serialized representation of a value."),
    ("restore-asking", dump::restore, "An internal command for migrating keys in a cluster"),
    ("asking", cluster_cmd::asking, "Sent by cluster clients after an -ASK redirect"),
    ("readonly", cluster_cmd::readonly, "Enables read queries for a connection to a cluster replica node"),
    ("readwrite", cluster_cmd::readwrite, "Disables read queries for a connection to a cluster replica node"),
    ("cluster|addslots", cluster_cmd::addslots, "Assign new hash slots to receiving node"),
    ("cluster|addslotsrange", cluster_cmd::addslotsrange, "Assign new hash slots to receiving node"),
    ("cluster|bumpepoch", cluster_cmd::bumpepoch, "Advance the cluster config epoch"),
    ("cluster|count-failure-reports", cluster_cmd::count_failure_reports, "Return the number of failure reports active for a given node"),
    ("cluster|countkeysinslot", cluster_view::countkeysinslot, "Return the number of local keys in the specified hash slot"),
    ("cluster|delslots", cluster_cmd::delslots, "Set hash slots as unbound in receiving node"),
    ("cluster|delslotsrange", cluster_cmd::delslotsrange, "Set hash slots as unbound in receiving node"),
    ("cluster|failover", cluster_cmd::failover, "Forces a replica to perform a manual failover of its master."),
    ("cluster|flushslots", cluster_cmd::flushslots, "Delete a node's own slots information"),
    ("cluster|forget", cluster_cmd::forget, "Remove a node from the nodes table"),
    ("cluster|getkeysinslot", cluster_view::getkeysinslot, "Return local key names in the specified hash slot"),
    ("cluster|help", cluster_view::help, "Show helpful text about the different subcommands"),
    ("cluster|info", cluster_view::info, "Provides info about Redis Cluster node state"),
    ("cluster|keyslot", cluster_view::keyslot, "Returns the hash slot of the specified key"),
    ("cluster|links", cluster_view::links, "Returns a list of all TCP links to and from peer nodes in cluster"),
    ("cluster|meet", cluster_cmd::meet, "Force a node cluster to handshake with another node"),
    ("cluster|myid", cluster_view::myid, "Return the node id"),
    ("cluster|nodes", cluster_view::nodes, "Get Cluster config for the node"),
    ("cluster|replicas", cluster_view::replicas, "List replica nodes of the specified master node"),
    ("cluster|replicate", cluster_cmd::replicate, "Reconfigure a node as a replica of the specified master node"),
    ("cluster|reset", cluster_cmd::reset, "Reset a Redis Cluster node"),
    ("cluster|saveconfig", cluster_cmd::saveconfig, "Forces the node to save cluster state on disk"),
    ("cluster|set-config-epoch", cluster_cmd::set_config_epoch, "Set the configuration epoch in a new node"),
    ("cluster|setslot", cluster_cmd::setslot, "Bind a hash slot to a specific node"),
    ("cluster|shards", cluster_view::shards, "Get array of cluster slots to node mappings"),
    ("cluster|slaves", cluster_view::replicas, "List replica nodes of the specified master node"),
    ("cluster|slots", cluster_view::slots, "Get array of Cluster slot to node mappings"),
    ("save", persistence_cmd::save, "Synchronously saves the database(s) to disk."),
    ("bgsave", persistence_cmd::bgsave, "Asynchronously saves the database(s) to disk."),
    ("bgrewriteaof", persistence_cmd::bgrewriteaof, "Asynchronously rewrites the append-only file to disk."),
    ("role", replication_cmd::role, "Returns the replication role."),
    ("replfreeze", replication_cmd::replfreeze, "ferrokv: stops following the master for a while, keeping the dataset and position (sync-replicas failover)."),
    ("replicaof", replication_cmd::replicaof, "Configures a server as replica of another, or promotes it to a master."),
    ("slaveof", replication_cmd::replicaof, "Sets a Redis server as a replica of another, or promotes it to being a master."),
    ("replconf", replication_cmd::replconf, "An internal command for configuring the replication stream."),
    ("psync", replication_cmd::psync, "An internal command used in replication."),
    ("sync", replication_cmd::sync, "An internal command used in replication."),
    ("failover", replication_cmd::failover, "Starts a coordinated failover from a server to one of its replicas."),
    ("wait", replication_cmd::wait, "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed."),
    ("waitaof", replication_cmd::waitaof, "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas."),
    ("shutdown", server_cmd::shutdown, "Synchronously saves the database(s) to disk and shuts down the Redis server."),
    ("monitor", server_cmd::monitor, "Listens for all requests received by the server in real-time."),
    ("slowlog|get", server_cmd::slowlog_get, "Returns the slow log's entries."),
    ("slowlog|len", server_cmd::slowlog_len, "Returns the number of entries in the slow log."),
    ("slowlog|reset", server_cmd::slowlog_reset, "Clears all entries from the slow log."),
    ("slowlog|help", server_cmd::slowlog_help, "Show helpful text about the different subcommands"),
    ("latency|latest", server_cmd::latency_latest, "Returns the latest latency samples for all events."),
    ("latency|history", server_cmd::latency_history, "Returns timestamp-latency samples for an event."),
    ("latency|reset", server_cmd::latency_reset, "Resets the latency data for one or more events."),
    ("latency|histogram", latency_cmd::latency_histogram, "Return the cumulative distribution of latencies of a subset of commands or all."),
    ("latency|help", server_cmd::latency_help, "Returns helpful text about the different subcommands."),
    ("latency|doctor", latency_cmd::latency_doctor, "Return a human readable latency analysis report."),
    ("latency|graph", latency_cmd::latency_graph, "Return a latency graph for the event."),
    ("lolwut", lolwut::lolwut, "Display some computer art and the Redis version"),
    ("acl|whoami", acl_cmd::whoami, "Returns the authenticated username of the current connection."),
    ("acl|list", acl_cmd::list, "Dumps the effective rules in ACL file format."),
    ("acl|users", acl_cmd::users, "Lists all ACL users."),
    ("acl|cat", acl_cmd::cat, "Lists the ACL categories, or the commands inside a category."),
    ("acl|setuser", acl_cmd::setuser, "Creates and modifies an ACL user and its rules."),
    ("acl|getuser", acl_cmd::getuser, "Lists the ACL rules of a user."),
    ("acl|deluser", acl_cmd::deluser, "Deletes ACL users, and terminates their connections."),
    ("acl|dryrun", acl_cmd::dryrun, "Simulates the execution of a command by a user, without executing the command."),
    ("acl|genpass", acl_cmd::genpass, "Generates a pseudorandom, secure password that can be used to identify ACL users."),
    ("acl|log", acl_cmd::log, "Lists recent security events generated due to ACL rules."),
    ("acl|load", acl_cmd::load, "Reloads the rules from the configured ACL file."),
    ("acl|save", acl_cmd::save, "Saves the effective ACL rules in the configured ACL file."),
    ("acl|help", acl_cmd::help, "Returns helpful text about the different subcommands."),
    ("debug", debug::debug, "A container for debugging commands."),
    // scripting
    ("eval", scripting::eval, "Executes a server-side Lua script."),
    ("eval_ro", scripting::eval_ro, "Executes a read-only server-side Lua script."),
    ("evalsha", scripting::evalsha, "Executes a server-side Lua script by SHA1 digest."),
    ("evalsha_ro", scripting::evalsha_ro, "Executes a read-only server-side Lua script by SHA1 digest."),
    ("script|load", scripting::script_load, "Loads a server-side Lua script to the script cache."),
    ("script|exists", scripting::script_exists, "Determines whether server-side Lua scripts exist in the script cache."),
    ("script|flush", scripting::script_flush, "Removes all server-side Lua scripts from the script cache."),
    ("script|kill", scripting::script_kill, "Terminates a server-side Lua script during execution."),
    ("script|debug", scripting::script_debug, "Sets the debug mode of server-side Lua scripts."),
    ("script|help", scripting::script_help, "Returns helpful text about the different subcommands."),
    ("fcall", functions::fcall, "Invokes a function."),
    ("fcall_ro", functions::fcall_ro, "Invokes a read-only function."),
    ("function|load", functions::function_load, "Creates a library."),
    ("function|delete", functions::function_delete, "Deletes a library and its functions."),
    ("function|flush", functions::function_flush, "Deletes all libraries and functions."),
    ("function|list", functions::function_list, "Returns information about all libraries."),
    ("function|dump", functions::function_dump, "Dumps all libraries into a serialized binary payload."),
    ("function|restore", functions::function_restore, "Restores all libraries from a payload."),
    ("function|stats", functions::function_stats, "Returns information about a function during execution."),
    ("function|kill", functions::function_kill, "Terminates a function during execution."),
    ("function|help", functions::function_help, "Returns helpful text about the different subcommands."),
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
    packed: HashMap<u128, (CmdId, u8)>,
}

/// The length recorded for a packed key that two names share (see `build`).
const AMBIGUOUS: u8 = u8::MAX;

/// A name of at most 16 bytes, lowercased, as one integer (zero-padded, so the length
/// must be compared too: `get` and `get\0` pack alike).
#[inline]
fn packed_name(name: &[u8]) -> Option<u128> {
    let mut buf = [0u8; 16];
    buf.get_mut(..name.len())?.copy_from_slice(name);
    buf.make_ascii_lowercase();
    Some(u128::from_le_bytes(buf))
}

impl CommandTable {
    /// Builds the table. `renames` are `rename-command` directives (an empty new name
    /// disables the command); an unknown name or a clash is an error for startup.
    pub fn build(renames: &[(String, String)]) -> Result<CommandTable, String> {
        let handlers: HashMap<&str, (Handler, &str)> = HANDLERS.iter().map(|&(n, h, s)| (n, (h, s))).collect();
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
                handler: handler.map(|h| h.0),
                summary: handler.map(|h| h.1).unwrap_or(""),
                parent: None,
                subs: Vec::new(),
                cats: spec::cats::implicit(spec.flags, spec.cats),
                key_specs: meta.map_or(&[], |m| m.key_specs),
                tips: meta.map_or(&[], |m| m.tips),
                getkeys: meta.and_then(|m| m.getkeys),
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
        for (name, _, _) in HANDLERS {
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
        let mut packed: HashMap<u128, (CmdId, u8)> = HashMap::new();
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
