//! The fast path ([`Acl::allows_fast`]) against the full check ([`Acl::check_handle`]) on
//! random users, command lines and keys.

use super::*;
use proptest::prelude::*;

const READ: u32 = 1 << 1;
const WRITE: u32 = 1 << 2;

fn fixed(name: &'static str, arity: i64, cats: u32, keys: &[(usize, u8)], varies: bool) -> CommandDef {
    CommandDef {
        fullname: name,
        arity,
        categories: cats,
        no_auth: false,
        callable: true,
        fixed_keys: Some(keys.iter().map(|&(pos, access)| KeyArg { pos, access }).collect()),
        fixed_access_varies: varies,
    }
}

/// Commands with keys at fixed positions (one, two, none), one whose keys are found from
/// the line, and one with a channel.
fn table() -> Vec<CommandDef> {
    let mut mget = fixed("mget", -2, READ, &[], false);
    mget.fixed_keys = None;
    vec![
        fixed("get", 2, READ, &[(1, KEY_READ)], false),
        fixed("set", -3, WRITE, &[(1, KEY_WRITE)], true),
        fixed("copy", -3, WRITE, &[(1, KEY_READ), (2, KEY_WRITE)], false),
        fixed("ping", -1, 0, &[], false),
        mget,
        fixed("publish", 3, 1 << 12, &[], false),
    ]
}

/// Rules of the shape the fast path compiles: literal and prefix patterns around the
/// one-word boundary, read/write patterns, command bits and categories.
const SHAPE_RULES: &[&str] = &[
    "+@all",
    "-@all",
    "+get",
    "-get",
    "+set",
    "-set",
    "+copy",
    "+@read",
    "-@write",
    "+ping",
    "+mget",
    "allkeys",
    "resetkeys",
    "~a*",
    "~ab",
    "~b",
    "~abababab*",
    "~ababababa*",
    "~abababababab",
    "%R~b*",
    "%W~ba*",
    "%R~ab",
    "%W~a",
    "&ch",
    "allchannels",
    "+publish",
];

/// Rules it leaves to the full check: globs, an empty prefix, selectors.
const OTHER_RULES: &[&str] = &["~a?b", "~*b", "%R~*", "~[ab]a*", "(~b* +get)", "(+@all ~*)", "(%W~a* +set)"];

/// The command line (with `key` and a second key) and its keys as the caller finds them.
fn line(which: usize, key: &str, key2: &str) -> (Vec<Vec<u8>>, KeyArgs) {
    let words: Vec<&str> = match which {
        0 => vec!["get", key],
        1 => vec!["set", key, "v"],
        2 => vec!["copy", key, key2],
        3 => vec!["ping"],
        4 => vec!["mget", key, key2],
        5 => vec!["publish", "ch", "m"],
        _ => vec!["publish", key, "m"],
    };
    let read = |pos| KeyArg { pos, access: KEY_READ };
    let write = |pos| KeyArg { pos, access: KEY_WRITE };
    let keys: KeyArgs = match which {
        0 => [read(1)].into_iter().collect(),
        1 => [write(1)].into_iter().collect(),
        2 => [read(1), write(2)].into_iter().collect(),
        4 => [read(1), read(2)].into_iter().collect(),
        _ => KeyArgs::new(),
    };
    (words.iter().map(|w| w.as_bytes().to_vec()).collect(), keys)
}

fn user_with(rules: &[String]) -> Acl {
    let mut acl = Acl::new(&table());
    acl.set_user("u", &["on".to_string()]).expect("on");
    for r in rules {
        // A rule refused (a pattern after allkeys) leaves the user as it was.
        let _ = acl.set_user("u", std::slice::from_ref(r));
    }
    acl
}

fn verdicts(acl: &Acl, which: usize, key: &str, key2: &str) -> (bool, Result<Allowed, (Denied, usize)>) {
    let (argv, keys) = line(which, key, key2);
    let id = acl.resolve(argv.as_slice()).expect("known command");
    let handle = acl.user_handle("u").expect("user");
    let fast = acl.allows_fast(&handle, id, argv.as_slice());
    let full = acl.check_handle(&handle, id, argv.as_slice(), &mut || keys.clone());
    (fast, full)
}

proptest! {
    /// On any user the fast path allows only what the full check allows.
    #[test]
    fn the_fast_path_never_allows_what_the_full_check_denies(
        picks in proptest::collection::vec((any::<bool>(), 0usize..64), 0..8),
        which in 0usize..7, key in "[ab]{0,13}", key2 in "[ab]{0,13}",
    ) {
        let rules: Vec<String> = picks.iter().map(|&(other, i)| {
            let pool = if other { OTHER_RULES } else { SHAPE_RULES };
            pool[i % pool.len()].to_string()
        }).collect();
        let acl = user_with(&rules);
        let (fast, full) = verdicts(&acl, which, &key, &key2);
        prop_assert!(!fast || full.is_ok(), "fast allowed, full said {:?} (rules {:?})", full, rules);
    }

    /// On users of the common shape (literal and prefix patterns, no selectors) and
    /// commands whose keys are at fixed positions, the two agree exactly: the fast path
    /// leaves no allowed line of that shape to the full check.
    #[test]
    fn on_the_common_shape_the_fast_path_decides_as_the_full_check(
        picks in proptest::collection::vec(0usize..64, 0..8),
        which in 0usize..4, key in "[ab]{0,13}", key2 in "[ab]{0,13}",
    ) {
        let rules: Vec<String> = picks.iter().map(|&i| SHAPE_RULES[i % SHAPE_RULES.len()].to_string()).collect();
        let acl = user_with(&rules);
        let (fast, full) = verdicts(&acl, which, &key, &key2);
        prop_assert_eq!(fast, full.is_ok(), "full said {:?} (rules {:?})", full, rules);
    }
}

#[test]
fn ten_prefixes_allow_their_keys_on_the_fast_path_and_leave_the_rest_to_the_full_check() {
    let rules: Vec<String> =
        "~a:* ~b:* ~c:* ~d:* ~e:* ~f:* ~g:* ~h:* ~i:* ~key:* +@all".split(' ').map(str::to_string).collect();
    let acl = user_with(&rules);
    assert_eq!(verdicts(&acl, 0, "key:000000012345", ""), (true, Ok(Allowed::This)));
    assert_eq!(verdicts(&acl, 1, "a:", ""), (true, Ok(Allowed::This)));
    assert_eq!(verdicts(&acl, 0, "key", ""), (false, Err((Denied::Key, 1))));
    assert_eq!(verdicts(&acl, 0, "", ""), (false, Err((Denied::Key, 1))));
    // Keys found from the line and channels are the full check's.
    assert_eq!(verdicts(&acl, 4, "a:1", "b:2"), (false, Ok(Allowed::This)));
    assert_eq!(verdicts(&acl, 5, "", ""), (false, Err((Denied::Channel, 1))));
}
