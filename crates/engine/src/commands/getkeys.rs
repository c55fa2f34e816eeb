//! Which arguments of a command line are keys, as Redis 7.0 finds them (COMMAND GETKEYS,
//! GETKEYSANDFLAGS).
//!
//! The key specifications come first: each says where its search begins (an index, or
//! after a keyword) and which arguments from there are keys (a range, or a count given by
//! a numkeys argument). A spec that cannot answer — unknown, incomplete, a numkeys that
//! is not a non-negative integer, a range that runs past the arguments — voids them all,
//! and the command's own rule ([`GetKeys`], Redis's `getkeys_proc`) decides instead. That
//! rule also wins outright when a spec's flags depend on the arguments (SET … GET,
//! BITFIELD). The rules are deliberately as lenient as Redis's: they read numkeys with C's
//! `atoi`, and SORT's scan for STORE is the same rough one.

use super::spec::kflags::{ACCESS, DELETE, INCOMPLETE, NOT_KEY, OW, RO, RW, UPDATE, VARIABLE_FLAGS};
use super::spec::{BeginSearch, FindKeys, GetKeys, KeySpec};
use super::Cmd;
use crate::ctx::is;
use ferrokv_resp::Argv;
use smallvec::{smallvec, SmallVec};

/// A command line's keys: nearly always a handful, kept inline (found for every command
/// of an ACL-restricted user and of sync-replicas' dirty tracking).
pub type KeyRefs = SmallVec<[KeyRef; 4]>;

/// A key argument: its position in the command line and how the command uses it (key
/// spec flags; 0 where Redis's own rule does not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: u64,
}

impl Cmd {
    /// True if the command may have key arguments at all (Redis's doesCommandHaveKeys).
    pub fn may_have_keys(&self) -> bool {
        self.getkeys.is_some() || self.key_specs.iter().any(|s| s.flags & NOT_KEY == 0)
    }
}

/// Keys at the same positions in every command line of a command (GET, HSET, LMOVE):
/// found from its key specs once, when the table is built, rather than per call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedKeys {
    keys: KeyRefs,
    /// Arguments a line needs for all of them (the arity guarantees it; checked anyway).
    min_argc: usize,
    /// The positions are fixed but the flags depend on the line (SET … GET, BITFIELD):
    /// `keys` then has the specs' flags, the most a line can do, and only callers that
    /// can use a worst case (ACL checks) take them.
    flags_vary: bool,
}

impl FixedKeys {
    pub fn keys(&self) -> &[KeyRef] {
        &self.keys
    }

    pub fn flags_vary(&self) -> bool {
        self.flags_vary
    }
}

/// The command's keys if its specs put them at fixed positions that its arity always
/// provides: every spec starts at an index and covers a range that does not depend on
/// the argument count. Flags that depend on the arguments are allowed only where the
/// command's own rule keeps the specs' positions (SET's and BITFIELD's: argument 1).
pub fn fixed_keys(specs: &[KeySpec], arity: i32, rule: Option<GetKeys>) -> Option<FixedKeys> {
    let real_keys = specs.iter().any(|s| s.flags & NOT_KEY == 0);
    let flags_vary = specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if !real_keys || specs.iter().any(|s| s.flags & INCOMPLETE != 0) {
        return None;
    }
    if flags_vary && !matches!(rule, Some(GetKeys::Set | GetKeys::Bitfield)) {
        return None;
    }
    let guaranteed = arity.unsigned_abs() as usize;
    let mut keys = KeyRefs::new();
    for spec in specs.iter().filter(|s| s.flags & NOT_KEY == 0) {
        let (BeginSearch::Index(first), FindKeys::Range(lastkey, step, _)) = (spec.begin, spec.find) else {
            return None;
        };
        let (first, lastkey, step) =
            (usize::try_from(first).ok()?, usize::try_from(lastkey).ok()?, usize::try_from(step).ok()?);
        if first == 0 || step == 0 || first + lastkey >= guaranteed {
            return None;
        }
        keys.extend((first..=first + lastkey).step_by(step).map(|pos| KeyRef { pos, flags: spec.flags }));
    }
    if flags_vary && keys.iter().map(|k| k.pos).ne([1]) {
        return None;
    }
    let min_argc = keys.iter().map(|k| k.pos + 1).max().unwrap_or(0);
    Some(FixedKeys { keys, min_argc, flags_vary })
}

/// The keys of `argv`, a whole command line for `cmd` whose arity was checked.
pub fn command_keys(cmd: &Cmd, argv: &Argv) -> KeyRefs {
    if let Some(fixed) = cmd.fixed_keys.as_ref().filter(|f| !f.flags_vary && argv.len() >= f.min_argc) {
        return fixed.keys.clone();
    }
    let real_keys = cmd.key_specs.iter().any(|s| s.flags & NOT_KEY == 0);
    let variable_flags = cmd.key_specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if real_keys && !variable_flags {
        if let Some(keys) = keys_from_specs(cmd.key_specs, argv) {
            return keys;
        }
    }
    cmd.getkeys.map(|rule| keys_by_rule(rule, argv)).unwrap_or_default()
}

/// Applies the key specs; None if one of them cannot answer.
fn keys_from_specs(specs: &[KeySpec], argv: &Argv) -> Option<KeyRefs> {
    // i64 throughout: spec offsets are negative or relative, and argument counts are small.
    let argc = argv.len() as i64;
    let mut keys = KeyRefs::new();
    for spec in specs {
        if spec.flags & NOT_KEY != 0 {
            continue;
        }
        let start = match spec.begin {
            BeginSearch::Index(pos) => i64::from(pos),
            BeginSearch::Keyword(word, from) => match keyword_position(argv, word, from) {
                Some(i) => i + 1,
                // An optional keyword that is absent means no keys for this spec.
                None => continue,
            },
            BeginSearch::BeginUnknown => return None,
        };
        let (first, last, step) = match spec.find {
            FindKeys::Range(lastkey, step, limit) => {
                let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
                let last = if lastkey >= 0 {
                    start + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    start + (argc - start) / limit + lastkey
                };
                (start, last, step)
            }
            FindKeys::Keynum(keynumidx, firstkey, step) => {
                let at = start + i64::from(keynumidx);
                if at < 0 || at >= argc {
                    return None;
                }
                let n = ferrokv_resp::parse_i64(argv.get(at as usize)).filter(|&n| n >= 0)?;
                let first = start + i64::from(firstkey);
                // Redis adds the count as a C int, truncating larger values.
                (first, first + i64::from(n as i32) - 1, step)
            }
            FindKeys::FindUnknown => return None,
        };
        if last >= argc || last < first || first >= argc || first < 0 || step < 1 {
            return None;
        }
        keys.extend((first..=last).step_by(step as usize).map(|i| KeyRef { pos: i as usize, flags: spec.flags }));
        if spec.flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

/// Where `word` occurs (ignoring case): searching forwards from `from`, stopping before
/// the last argument (which could not be followed by a key), or for a negative `from`
/// backwards from `argc + from`, stopping before argument 1.
fn keyword_position(argv: &Argv, word: &str, from: i32) -> Option<i64> {
    let argc = argv.len() as i64;
    let from = i64::from(from);
    let (start, end) = if from > 0 { (from, argc - 1) } else { (argc + from, 1) };
    let dir = if start <= end { 1 } else { -1 };
    let mut i = start;
    while i != end && (1..argc).contains(&i) {
        if is(argv.get(i as usize), word) {
            return Some(i);
        }
        i += dir;
    }
    None
}

/// C's `atoi`: leading spaces, an optional sign, digits up to the first non-digit; like
/// glibc's, it saturates at the `long` range and then truncates to `int`.
fn c_atoi(s: &[u8]) -> i32 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace() && *b != 0x0b) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        v = match v.checked_mul(10).and_then(|v| if neg { v.checked_sub(d) } else { v.checked_add(d) }) {
            Some(v) => v,
            None if neg => i64::MIN,
            None => i64::MAX,
        };
        if v == i64::MIN || v == i64::MAX {
            break;
        }
    }
    v as i32
}

fn key(pos: usize, flags: u64) -> KeyRef {
    KeyRef { pos, flags }
}

/// A command's own key-extraction rule (Redis's getkeys procs).
fn keys_by_rule(rule: GetKeys, argv: &Argv) -> KeyRefs {
    let argc = argv.len();
    let arg = |i: usize| argv.get(i);
    match rule {
        GetKeys::Numkeys { store, count, first } => {
            if count >= argc {
                return KeyRefs::new();
            }
            let n = c_atoi(arg(count));
            let room = argc.saturating_sub(first);
            let Some(n) = usize::try_from(n).ok().filter(|&n| n >= 1 && n <= room) else {
                return KeyRefs::new();
            };
            let mut keys: KeyRefs = (first..first + n).map(|i| key(i, 0)).collect();
            if store != 0 {
                keys.push(key(store, 0));
            }
            keys
        }
        GetKeys::SortRo => smallvec![key(1, RO | ACCESS)],
        GetKeys::Sort => {
            let mut store = None;
            let mut i = 2;
            while i < argc {
                let a = arg(i);
                if is(a, "limit") {
                    i += 2;
                } else if is(a, "store") && i + 1 < argc {
                    // The last STORE wins, as in SORT itself. The scan goes on from the
                    // destination's own position, like Redis's.
                    store = Some(i + 1);
                } else if is(a, "get") || is(a, "by") {
                    i += 1;
                }
                i += 1;
            }
            let mut keys = smallvec![key(1, RO | ACCESS)];
            keys.extend(store.map(|p| key(p, OW | UPDATE)));
            keys
        }
        GetKeys::Migrate => {
            let (mut first, mut n) = (3, 1);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    let a = arg(i);
                    if is(a, "keys") {
                        // KEYS with a key in third position is a syntax error MIGRATE
                        // reports itself; no keys then.
                        if arg(3).is_empty() {
                            first = i + 1;
                            n = argc - first;
                        } else {
                            n = 0;
                        }
                        break;
                    } else if is(a, "auth") {
                        i += 1;
                    } else if is(a, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            (first..first + n).map(|i| key(i, RW | ACCESS | DELETE)).collect()
        }
        GetKeys::Set => {
            let get = (3..argc).any(|i| is(arg(i), "get"));
            smallvec![key(1, if get { RW | ACCESS | UPDATE } else { OW | UPDATE })]
        }
        GetKeys::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rest = argc - i - 1;
                let a = arg(i);
                if is(a, "get") && rest >= 2 {
                    i += 2;
                } else if (is(a, "set") || is(a, "incrby")) && rest >= 3 {
                    readonly = false;
                    break;
                } else if is(a, "overflow") && rest >= 1 {
                    i += 1;
                } else {
                    // A syntax error: assume the worst.
                    readonly = false;
                    break;
                }
                i += 1;
            }
            smallvec![key(1, if readonly { RO | ACCESS } else { RW | ACCESS | UPDATE })]
        }
        GetKeys::Georadius => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (is(arg(i), "store") || is(arg(i), "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            let mut keys = smallvec![key(1, 0)];
            keys.extend(stored.map(|p| key(p, 0)));
            keys
        }
        GetKeys::Xread => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                let a = arg(i);
                if is(a, "block") || is(a, "count") {
                    i += 1;
                } else if is(a, "group") {
                    i += 2;
                } else if is(a, "streams") {
                    streams = Some(i);
                    break;
                } else if !is(a, "noack") {
                    break;
                }
                i += 1;
            }
            let Some(s) = streams else { return KeyRefs::new() };
            let rest = argc - s - 1;
            // One ID per key: an odd or empty remainder is a syntax error, so no keys.
            if rest == 0 || rest % 2 == 1 {
                return KeyRefs::new();
            }
            (s + 1..s + 1 + rest / 2).map(|i| key(i, 0)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandTable;

    /// Key names of a command line (words split on spaces, `""` for an empty argument),
    /// via the whole table, implemented commands or not.
    fn keys_of(line: &str) -> Vec<String> {
        let t = CommandTable::build(&[]).expect("table");
        let args: Vec<&str> = line.split(' ').map(|w| if w == "\"\"" { "" } else { w }).collect();
        let argv = Argv::from_slices(&args);
        let name = args[0].to_ascii_lowercase();
        let sub = args.get(1).map(|s| format!("{name}|{}", s.to_ascii_lowercase()));
        let cmd = t
            .cmds
            .iter()
            .find(|c| sub.as_deref() == Some(c.fullname()))
            .or_else(|| t.cmds.iter().find(|c| c.fullname() == name))
            .expect("known command");
        command_keys(cmd, &argv).iter().map(|k| args[k.pos].to_string()).collect()
    }

    #[test]
    fn c_atoi_is_lenient_like_c() {
        assert_eq!(c_atoi(b"2"), 2);
        assert_eq!(c_atoi(b" 2x"), 2);
        assert_eq!(c_atoi(b"+3"), 3);
        assert_eq!(c_atoi(b"-1"), -1);
        assert_eq!(c_atoi(b"x"), 0);
        assert_eq!(c_atoi(b""), 0);
        assert_eq!(c_atoi(b"4294967298"), 2);
        assert_eq!(c_atoi(b"99999999999999999999"), -1);
    }

    /// Expectations taken from redis-server 7.0.15's COMMAND GETKEYS, for commands of
    /// every kind of spec and rule (most are not implemented by ferrokv yet, so the
    /// socket-level differential test cannot ask them).
    #[test]
    fn keys_match_redis_for_every_kind_of_spec() {
        let cases: &[(&str, &[&str])] = &[
            ("get k", &["k"]),
            ("mset a 1 b 2", &["a", "b"]),
            ("blpop a b 0", &["a", "b"]),
            ("lmpop 2 a b left", &["a", "b"]),
            ("blmpop 0 2 a b left count 3", &["a", "b"]),
            ("zinter 2 a b weights 1 2", &["a", "b"]),
            ("zunionstore d 2 a b", &["d", "a", "b"]),
            ("zdiffstore d 1 a", &["d", "a"]),
            ("sintercard 2 a b limit 1", &["a", "b"]),
            ("eval s 2 a b x y", &["a", "b"]),
            ("eval s 0 x", &[]),
            ("fcall f 1 a x", &["a"]),
            // numkeys not an integer: the spec fails, atoi reads 2 and the rule reports
            // the destination last.
            ("zunionstore d 2x a b", &["a", "b", "d"]),
            ("sort k by p get g store d limit 0 1", &["k", "d"]),
            ("sort k store d1 store d2", &["k", "d2"]),
            ("sort_ro k by p", &["k"]),
            ("migrate h p k 0 10", &["k"]),
            ("migrate h p \"\" 0 10 copy auth pw keys a b", &["a", "b"]),
            ("set k v get", &["k"]),
            ("bitfield k get u8 0", &["k"]),
            ("georadius k 1 2 3 m store d", &["k", "d"]),
            ("georadius k 1 2 3 m", &["k"]),
            ("xread count 2 streams a b 0 0", &["a", "b"]),
            ("xreadgroup group g c streams a 0", &["a"]),
            ("object encoding k", &["k"]),
            ("memory usage k", &["k"]),
            ("bitop and d a b", &["d", "a", "b"]),
            ("lmove a b left right", &["a", "b"]),
            ("msetnx a 1 b 2", &["a", "b"]),
            // A numkeys that reaches past the keys but not past the arguments.
            ("lmpop 3 a b left", &["a", "b", "left"]),
        ];
        for (line, want) in cases {
            assert_eq!(keys_of(line), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{line}");
        }
    }

    /// Keys computed once per command are those the specs give each line, for lines of
    /// every length the arity allows (a few beyond the minimum for variadic commands).
    #[test]
    fn fixed_keys_agree_with_the_specs() {
        let t = CommandTable::build(&[]).expect("table");
        let mut fixed = 0;
        for cmd in t.cmds.iter().filter(|c| c.fixed_keys.as_ref().is_some_and(|f| !f.flags_vary)) {
            fixed += 1;
            let min = cmd.spec.arity.unsigned_abs() as usize;
            let max = if cmd.spec.arity > 0 { min } else { min + 4 };
            for argc in min..=max {
                let words: Vec<String> = (0..argc).map(|i| format!("a{i}")).collect();
                let args: Vec<&str> = words.iter().map(String::as_str).collect();
                let argv = Argv::from_slices(&args);
                let by_specs = keys_from_specs(cmd.key_specs, &argv);
                assert_eq!(Some(command_keys(cmd, &argv)), by_specs, "{} with {argc} arguments", cmd.fullname());
            }
        }
        // GET, SET's relatives, hashes, lists...: most single-key commands qualify.
        assert!(fixed > 100, "only {fixed} commands with fixed keys");
        let get = t.cmds.iter().find(|c| c.fullname() == "get").expect("get");
        assert!(get.fixed_keys.is_some());
        // SET's key is always argument 1, its flags depend on GET: a worst case only.
        let set = t.cmds.iter().find(|c| c.fullname() == "set").expect("set");
        let set_keys = set.fixed_keys.as_ref().expect("set has fixed positions");
        assert!(set_keys.flags_vary && set_keys.keys().iter().map(|k| k.pos).eq([1]));
        let argv = Argv::from_slices(&["set", "k", "v"]);
        assert_eq!(command_keys(set, &argv).iter().map(|k| k.flags).collect::<Vec<_>>(), [OW | UPDATE]);
    }

    #[test]
    fn failing_specs_give_no_keys() {
        for line in
            ["lmpop 4 a b left", "lmpop -1 a left", "lmpop 0 a left", "zinter 5 a b", "xread streams a", "eval s -1"]
        {
            assert_eq!(keys_of(line), Vec::<String>::new(), "{line}");
        }
    }
}
