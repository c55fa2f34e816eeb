//! The command table the ACL works over, given by the caller (a server and a sentinel have
//! different ones): names, arities, categories. Indexes into it are the caller's command
//! ids, so a check needs no name lookup.

use crate::args::KeyArg;

/// Redis's command categories, in its order (`ACL CAT`, and the order rules are fitted).
/// A command's `categories` bit `i` is `CATEGORIES[i]`.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// An index into the command table (the caller's own command id).
pub type CmdId = usize;

/// One command as the caller describes it.
#[derive(Clone, Debug)]
pub struct CommandDef {
    /// `name` or `container|subcommand`, lowercase.
    pub fullname: &'static str,
    pub arity: i64,
    /// Bit `i` set: the command is in `CATEGORIES[i]` (implicit categories included).
    pub categories: u32,
    /// Runs whatever the user's permissions (AUTH, HELLO): Redis's `no_auth` flag.
    pub no_auth: bool,
    /// The command can be called (rules, ACL CAT and DRYRUN only see such commands); the
    /// others keep their index so ids stay the caller's.
    pub callable: bool,
    /// The key arguments when they are the same in every command line the arity allows
    /// (GET's argument 1): checks then use them instead of asking the caller for keys.
    pub fixed_keys: Option<Vec<KeyArg>>,
    /// `fixed_keys` has the positions but the most access a line can ask (SET's key is
    /// read only with GET): a check that fails on it asks the caller for the line's keys.
    pub fixed_access_varies: bool,
}

pub(crate) struct Command {
    pub name: &'static str,
    pub arity: i64,
    pub cats: u32,
    pub no_auth: bool,
    pub callable: bool,
    pub parent: Option<CmdId>,
    pub subs: Vec<CmdId>,
    /// Which arguments are pub/sub channels, decided once from the name.
    pub channels: ChannelArgs,
    pub fixed_keys: Option<Box<[KeyArg]>>,
    /// Arguments a command line needs for `fixed_keys` to be within it.
    pub fixed_min_argc: usize,
    pub fixed_access_varies: bool,
}

/// The arguments of a command that are pub/sub channels. Unsubscribing is never checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelArgs {
    None,
    /// PUBLISH and SPUBLISH: the first argument.
    First,
    /// SUBSCRIBE and SSUBSCRIBE: every argument.
    All,
    /// PSUBSCRIBE: every argument, a pattern (compared literally with the user's, as
    /// Redis does).
    AllPatterns,
}

impl ChannelArgs {
    fn of(name: &str) -> ChannelArgs {
        match name {
            "publish" | "spublish" => ChannelArgs::First,
            "subscribe" | "ssubscribe" => ChannelArgs::All,
            "psubscribe" => ChannelArgs::AllPatterns,
            _ => ChannelArgs::None,
        }
    }

    /// The channel positions in a command line of `argc` arguments, and whether they
    /// are patterns.
    pub fn positions(self, argc: usize) -> (std::ops::Range<usize>, bool) {
        match self {
            ChannelArgs::None => (0..0, false),
            ChannelArgs::First => (1..2.min(argc), false),
            ChannelArgs::All => (1..argc, false),
            ChannelArgs::AllPatterns => (1..argc, true),
        }
    }
}

pub(crate) struct Table {
    pub cmds: Vec<Command>,
    /// `acl-pubsub-default allchannels`.
    pub all_channels_default: bool,
}

/// The category named `name` (any case).
pub fn category(name: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name))
}

impl Table {
    pub fn new(defs: &[CommandDef]) -> Table {
        let mut cmds: Vec<Command> = defs
            .iter()
            .map(|d| Command {
                name: d.fullname,
                arity: d.arity,
                cats: d.categories,
                no_auth: d.no_auth,
                callable: d.callable,
                parent: None,
                subs: Vec::new(),
                channels: ChannelArgs::of(d.fullname),
                fixed_keys: d.fixed_keys.as_deref().map(Box::from),
                fixed_min_argc: d.fixed_keys.iter().flatten().map(|k| k.pos + 1).max().unwrap_or(0),
                fixed_access_varies: d.fixed_access_varies,
            })
            .collect();
        let by_name: std::collections::HashMap<&str, CmdId> =
            cmds.iter().enumerate().filter(|(_, c)| c.callable).map(|(i, c)| (c.name, i)).collect();
        for id in 0..cmds.len() {
            if let Some((p, _)) = cmds[id].name.split_once('|') {
                if let Some(&pid) = by_name.get(p) {
                    cmds[id].parent = Some(pid);
                    if cmds[id].callable {
                        cmds[pid].subs.push(id);
                    }
                }
            }
        }
        Table { cmds, all_channels_default: false }
    }

    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// `name` or `container|subcommand`, case-insensitively (Redis's strict lookup: a
    /// plain command's `cmd|x` names nothing).
    pub fn lookup(&self, name: &str) -> Option<CmdId> {
        let lower = name.to_ascii_lowercase();
        self.cmds.iter().position(|c| c.callable && c.name == lower)
    }

    /// Whether `argc` arguments (the command's name included) fit the command's arity.
    pub fn arity_ok(&self, id: CmdId, argc: usize) -> bool {
        let (arity, argc) = (self.cmds[id].arity, argc as i64);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}
