//! A selector: what a user may run and touch (its root permissions, or one of its
//! `(...)` selectors). Redis's ACLSetSelector rules, the rule text ACL LIST prints (rebuilt
//! from the permission bits as Redis 7.0 does) and ACLSelectorCheckCmd.

use crate::args::{Args, KeyArg, KeyArgs, KEY_READ, KEY_WRITE};
use crate::pattern::KeyPatterns;
use crate::table::{category, ChannelArgs, CmdId, Table, CATEGORIES};
use crate::{Denied, RuleError};
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    pub allowed: Vec<bool>,
    /// Set by +@all only: Redis's reserved bit for commands added later (it decides
    /// whether a description starts from +@all or -@all).
    pub future: bool,
    /// Every command allowed, with no exception since (checks skip the bits).
    pub all_commands: bool,
    /// Allowed first arguments of otherwise denied commands (`+info|server`).
    pub first_args: BTreeMap<CmdId, Vec<String>>,
    pub all_keys: bool,
    pub keys: KeyPatterns,
    pub all_channels: bool,
    pub channels: Vec<String>,
}

pub(crate) fn has_spaces(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_whitespace() || b == 0)
}

/// The keys of the command line being checked: the command's fixed positions, or found
/// by the caller once for all selectors.
pub(crate) struct KeyCache<'a> {
    fixed: Option<&'a [KeyArg]>,
    /// `fixed` has each key's exact access (not only the most a line may ask).
    fixed_exact: bool,
    find: &'a mut dyn FnMut() -> KeyArgs,
    keys: Option<KeyArgs>,
}

impl<'a> KeyCache<'a> {
    pub fn new(fixed: Option<&'a [KeyArg]>, fixed_exact: bool, find: &'a mut dyn FnMut() -> KeyArgs) -> Self {
        KeyCache { fixed, fixed_exact, find, keys: None }
    }

    /// The keys, and whether their access is exact (else it is the most the command may
    /// ask, and a denial must be confirmed with [`KeyCache::exact`]).
    fn get(&mut self) -> (&[KeyArg], bool) {
        match self.fixed {
            Some(fixed) => (fixed, self.fixed_exact),
            None => (self.exact(), true),
        }
    }

    /// The keys with the access this command line asks, found by the caller.
    fn exact(&mut self) -> &[KeyArg] {
        if self.keys.is_none() {
            self.keys = Some((self.find)());
        }
        self.keys.as_deref().unwrap_or_default()
    }
}

impl Selector {
    pub fn new(n: usize) -> Selector {
        Selector {
            allowed: vec![false; n],
            future: false,
            all_commands: false,
            first_args: BTreeMap::new(),
            all_keys: false,
            keys: KeyPatterns::default(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    /// A new user's or selector's permissions: nothing, or every channel under
    /// `acl-pubsub-default allchannels`.
    pub fn new_like_config(t: &Table) -> Selector {
        let mut s = Selector::new(t.len());
        s.all_channels = t.all_channels_default;
        s
    }

    /// Everything allowed: no check needs to look at the command line.
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    fn set_bit(&mut self, id: CmdId, allow: bool) {
        self.allowed[id] = allow;
        if !allow {
            self.all_commands = false;
        }
    }

    /// Allows or denies a command, and with a container all its subcommands.
    fn change(&mut self, t: &Table, id: CmdId, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.remove(&id);
        for &s in &t.cmds[id].subs {
            self.set_bit(s, allow);
        }
    }

    fn change_category(&mut self, t: &Table, cat: usize, allow: bool) {
        for id in 0..t.len() {
            if t.cmds[id].callable && t.cmds[id].cats & (1 << cat) != 0 {
                self.change(t, id, allow);
            }
        }
    }

    fn count_category(&self, t: &Table, cat: usize) -> (usize, usize) {
        let members = (0..t.len()).filter(|&id| t.cmds[id].callable && t.cmds[id].cats & (1 << cat) != 0);
        members.fold((0, 0), |(on, off), id| if self.allowed[id] { (on + 1, off) } else { (on, off + 1) })
    }

    /// One modifier that acts on permissions (Redis's ACLSetSelector).
    pub fn apply(&mut self, t: &Table, op: &str) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.allowed.iter_mut().for_each(|b| *b = true);
                self.future = true;
                self.all_commands = true;
                self.first_args.clear();
            }
            "nocommands" | "-@all" => {
                self.allowed.iter_mut().for_each(|b| *b = false);
                self.future = false;
                self.all_commands = false;
                self.first_args.clear();
            }
            _ if op.starts_with('~') || op.starts_with('%') => self.add_key_pattern(op)?,
            _ if op.starts_with('&') => {
                if self.all_channels {
                    return Err(RuleError::ChannelAfterAll);
                }
                let pat = &op[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_string());
                }
                self.all_channels = false;
            }
            _ if op.starts_with("+@") || op.starts_with("-@") => {
                let cat = category(&op[2..]).ok_or(RuleError::UnknownName)?;
                self.change_category(t, cat, op.starts_with('+'));
            }
            _ if op.starts_with('+') => self.allow_command(t, &op[1..])?,
            _ if op.starts_with('-') => {
                let id = t.lookup(&op[1..]).ok_or(RuleError::UnknownName)?;
                self.change(t, id, false);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &str) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        let (flags, pat) = match op.strip_prefix('%') {
            None => (KEY_READ | KEY_WRITE, &op[1..]),
            Some(rest) => {
                let mut flags = 0;
                let mut pat = None;
                for (i, c) in rest.char_indices() {
                    match c.to_ascii_uppercase() {
                        'R' if flags & KEY_READ == 0 => flags |= KEY_READ,
                        'W' if flags & KEY_WRITE == 0 => flags |= KEY_WRITE,
                        '~' => {
                            pat = Some(&rest[i + 1..]);
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                }
                (flags, pat.ok_or(RuleError::Syntax)?)
            }
        };
        if flags == 0 || has_spaces(pat) {
            return Err(RuleError::Syntax);
        }
        if pat == "*" && flags == KEY_READ | KEY_WRITE {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        self.keys.add(pat, flags);
        Ok(())
    }

    /// `+command`, `+container|subcommand` or `+command|first-arg`.
    fn allow_command(&mut self, t: &Table, name: &str) -> Result<(), RuleError> {
        let Some((base, sub)) = name.rsplit_once('|') else {
            let id = t.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change(t, id, true);
            return Ok(());
        };
        let id = t.lookup(base).ok_or(RuleError::UnknownName)?;
        if t.cmds[id].parent.is_some() {
            return Err(RuleError::SubcommandFirstArg);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !t.cmds[id].subs.is_empty() {
            let sub_id = t.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change(t, sub_id, true);
        } else {
            log::warn!("Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{name})");
            let args = self.first_args.entry(id).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(sub.to_string());
            }
        }
        Ok(())
    }

    /// The command rules that rebuild these permissions, as Redis 7.0 writes them: from
    /// +@all or -@all, the categories that fit best, then single commands.
    pub fn describe_commands(&self, t: &Table) -> String {
        let additive = !self.future;
        let mut fake = Selector::new(t.len());
        let mut rules = String::new();
        let base = if additive { "-@all" } else { "+@all" };
        let _ = fake.apply(t, base);
        rules.push_str(base);
        rules.push(' ');
        let mut temp = self.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (cat, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(t, cat);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(cat);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(cat) = best else { break };
            fake.change_category(t, cat, additive);
            temp.change_category(t, cat, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[cat]);
            rules.push(' ');
            applied[cat] = true;
        }
        for id in (0..t.len()).filter(|&id| t.cmds[id].callable && t.cmds[id].parent.is_none()) {
            self.describe_single(t, id, &mut fake, &mut rules);
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, t: &Table, id: CmdId, fake: &mut Selector, rules: &mut String) {
        let bit = self.allowed[id];
        if bit != fake.allowed[id] {
            rules.push(if bit { '+' } else { '-' });
            rules.push_str(t.cmds[id].name);
            rules.push(' ');
            fake.change(t, id, bit);
        }
        for &s in &t.cmds[id].subs {
            self.describe_single(t, s, fake, rules);
        }
        if !bit {
            for a in self.first_args.get(&id).into_iter().flatten() {
                rules.push_str(&format!("+{}|{a} ", t.cmds[id].name));
            }
        }
    }

    pub fn describe_keys(&self) -> Vec<String> {
        if self.all_keys {
            return vec!["~*".into()];
        }
        let prefix = |f: u8| match f {
            KEY_READ => "%R~",
            KEY_WRITE => "%W~",
            _ => "~",
        };
        self.keys.iter().map(|k| format!("{}{}", prefix(k.flags), k.text)).collect()
    }

    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            "&*".into()
        } else {
            self.channels.iter().map(|c| format!("&{c}")).collect::<Vec<_>>().join(" ")
        }
    }

    /// Keys, channels and commands, as in `ACL LIST`.
    pub fn describe(&self, t: &Table) -> String {
        let mut s = String::new();
        for k in self.describe_keys() {
            s.push_str(&k);
            s.push(' ');
        }
        if self.all_channels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push_str(&format!("&{c} "));
            }
        }
        s.push_str(&self.describe_commands(t));
        s
    }

    /// Redis's ACLSelectorCheckCmd: the command, then its keys, then the channels it
    /// names. The error carries the argument it is about.
    pub fn check<A: Args + ?Sized>(
        &self,
        t: &Table,
        id: CmdId,
        argv: &A,
        keys: &mut KeyCache,
    ) -> Result<(), (Denied, usize)> {
        let cmd = &t.cmds[id];
        if !self.all_commands && !cmd.no_auth && !self.allowed[id] {
            let pos = if cmd.parent.is_some() { 2 } else { 1 };
            let allowed = pos < argv.count() && {
                let first = argv.arg(pos);
                self.first_args
                    .get(&id)
                    .is_some_and(|args| args.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(first)))
            };
            if !allowed {
                return Err((Denied::Command, 0));
            }
        }
        if !self.all_keys {
            let (found, exact) = keys.get();
            if let Err(pos) = self.keys_allowed(argv, found) {
                // Denied for the most the command may ask: what does this line ask?
                if exact {
                    return Err((Denied::Key, pos));
                }
                self.keys_allowed(argv, keys.exact()).map_err(|pos| (Denied::Key, pos))?;
            }
        }
        if !self.all_channels && cmd.channels != ChannelArgs::None {
            let (positions, pattern) = cmd.channels.positions(argv.count());
            for pos in positions {
                if !self.channel_allowed(argv.arg(pos), pattern) {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }

    /// Ok if every key is allowed its access, else the position of the first that is not.
    #[inline]
    fn keys_allowed<A: Args + ?Sized>(&self, argv: &A, keys: &[KeyArg]) -> Result<(), usize> {
        match keys.iter().find(|k| !self.keys.allow(argv.arg(k.pos), k.access)) {
            Some(k) => Err(k.pos),
            None => Ok(()),
        }
    }

    /// Whether a channel (or, `pattern`, a literal pattern) is allowed (Redis's
    /// ACLCheckChannelAgainstList).
    pub fn channel_allowed(&self, ch: &[u8], pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if pattern {
                    p.as_bytes() == ch
                } else {
                    ferrokv_keyspace::glob::glob_match(p.as_bytes(), ch, false)
                }
            })
    }
}
