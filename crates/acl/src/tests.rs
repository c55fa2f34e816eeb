use super::*;
use proptest::prelude::*;

const STRING: u32 = 1 << 7;
const READ: u32 = 1 << 1;
const WRITE: u32 = 1 << 2;
const DANGEROUS: u32 = 1 << 17;
const ADMIN: u32 = 1 << 13;

fn def(fullname: &'static str, arity: i64, categories: u32) -> CommandDef {
    CommandDef {
        fullname,
        arity,
        categories,
        no_auth: fullname == "auth",
        callable: true,
        fixed_keys: None,
        fixed_access_varies: false,
    }
}

/// A small table: enough commands for keys, categories and containers.
fn table() -> Vec<CommandDef> {
    vec![
        def("get", 2, STRING | READ),
        def("set", -3, STRING | WRITE),
        def("flushall", -1, WRITE | DANGEROUS),
        def("config", -2, 0),
        def("config|get", -3, ADMIN | DANGEROUS),
        def("config|set", -4, ADMIN | DANGEROUS),
        def("auth", -2, 0),
        def("publish", 3, 1 << 12),
        def("psubscribe", -2, 1 << 12),
    ]
}

fn args(s: &str) -> Vec<Vec<u8>> {
    s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
}

fn check(acl: &Acl, user: &str, line: &str, keys: &[KeyArg]) -> Result<(), (Denied, usize)> {
    let argv = args(line);
    let id = acl.resolve(argv.as_slice()).expect("known command");
    acl.check(user, id, argv.as_slice(), &mut || keys.iter().copied().collect())
}

fn rules(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

#[test]
fn an_application_user_is_held_to_its_keys_and_safe_commands() {
    let mut acl = Acl::new(&table());
    acl.set_user("app", &rules("on >pw ~app:* +@all -@dangerous")).unwrap();
    let read = |pos| KeyArg { pos, access: KEY_READ };
    assert_eq!(check(&acl, "app", "get app:1", &[read(1)]), Ok(()));
    assert_eq!(check(&acl, "app", "get other", &[read(1)]), Err((Denied::Key, 1)));
    assert_eq!(check(&acl, "app", "flushall", &[]), Err((Denied::Command, 0)));
    assert_eq!(check(&acl, "app", "config set maxmemory 0", &[]), Err((Denied::Command, 0)));
    assert_eq!(check(&acl, "app", "auth x y", &[]), Ok(()));
    assert!(!acl.unrestricted("app"));
    assert!(acl.unrestricted("default"));
}

#[test]
fn read_and_write_patterns_allow_only_their_access() {
    let mut acl = Acl::new(&table());
    acl.set_user("u", &rules("on nopass +@all %R~r:* %W~w:*")).unwrap();
    let k = |access| [KeyArg { pos: 1, access }];
    assert_eq!(check(&acl, "u", "get r:1", &k(KEY_READ)), Ok(()));
    assert_eq!(check(&acl, "u", "set r:1 v", &k(KEY_WRITE)), Err((Denied::Key, 1)));
    assert_eq!(check(&acl, "u", "set w:1 v", &k(KEY_WRITE)), Ok(()));
    assert_eq!(check(&acl, "u", "get w:1", &k(KEY_READ)), Err((Denied::Key, 1)));
    // A key the command's rule says nothing about matches any pattern, as in Redis.
    assert_eq!(check(&acl, "u", "get w:1", &k(0)), Ok(()));
    assert_eq!(acl.describe("u").unwrap(), "on nopass %R~r:* %W~w:* resetchannels +@all");
}

#[test]
fn keys_are_looked_for_only_when_a_selector_restricts_them() {
    let acl = Acl::new(&table());
    let argv = args("get k");
    let mut calls = 0;
    let id = acl.resolve(argv.as_slice()).unwrap();
    let verdict = acl.check("default", id, argv.as_slice(), &mut || {
        calls += 1;
        KeyArgs::new()
    });
    assert_eq!((verdict, calls), (Ok(()), 0));
}

#[test]
fn pattern_subscriptions_compare_literally() {
    let mut acl = Acl::new(&table());
    acl.set_user("u", &rules("on nopass +@all ~* &news.*")).unwrap();
    assert_eq!(check(&acl, "u", "publish news.a x", &[]), Ok(()));
    assert_eq!(check(&acl, "u", "psubscribe news.*", &[]), Ok(()));
    assert_eq!(check(&acl, "u", "psubscribe news.a*", &[]), Err((Denied::Channel, 1)));
    assert!(!acl.channel_allowed("u", b"sports", false));
}

#[test]
fn credentials_need_an_enabled_user_and_a_matching_password() {
    let mut acl = Acl::new(&table());
    acl.set_user("u", &rules("on >one >two")).unwrap();
    assert!(acl.check_credentials("u", b"two"));
    assert!(!acl.check_credentials("u", b"three"));
    acl.set_user("u", &rules("off")).unwrap();
    assert!(!acl.check_credentials("u", b"one"));
    assert!(!acl.check_credentials("nobody", b""));
    acl.set_default_password(Some(b"secret"));
    assert!(!acl.default_needs_no_auth());
    assert!(acl.check_credentials("default", b"secret"));
}

#[test]
fn acl_files_load_all_or_nothing_with_file_and_line() {
    let mut acl = Acl::new(&table());
    acl.set_user("old", &rules("on nopass")).unwrap();
    let bad = "# users\nuser app on >pw ~app:* +get\n\nuser bad +nosuch\nnot-a-user line\nuser app on\n";
    let err = acl.load_file("/tmp/u.acl", bad).unwrap_err();
    assert_eq!(
        err.0,
        "/tmp/u.acl:4: Error in applying operation '+nosuch': Unknown command or category name in ACL. /tmp/u.acl:5 should start with user keyword followed by the username. /tmp/u.acl:6: duplicate user 'app' found. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    );
    assert!(acl.exists("old"), "a refused file changes nothing");
    let good = "user app on >pw ~app:* -@all +get\n";
    let before = acl.generation();
    acl.load_file("/tmp/u.acl", good).unwrap();
    assert!(!acl.exists("old"));
    assert!(acl.generation() > before);
    // Without a `default` line, default is Redis's: everything, no password.
    assert_eq!(acl.describe("default").unwrap(), "on nopass ~* &* +@all");
    let saved = acl.file_text();
    let mut again = Acl::new(&table());
    again.load_file("x", &saved).unwrap();
    assert_eq!(again.file_text(), saved, "what ACL SAVE writes loads back the same");
}

/// Quotes mean nothing in an ACL file, as in Redis's loader (which splits a line at
/// every space): a pattern with a quote, which ACL SETUSER accepts, is saved as is and
/// loads back. The acl_rules fuzz target's first find: the loader split lines with the
/// config file's quoting rules and refused what ACL SAVE had written.
#[test]
fn quotes_in_patterns_survive_acl_save_and_load() {
    let mut acl = Acl::new(&table());
    acl.set_user("q", &rules("on nopass ~it's:* %R~\"x &'ch +get")).unwrap();
    let saved = acl.file_text();
    let mut again = Acl::new(&table());
    again.load_file("f", &saved).unwrap();
    assert_eq!(again.file_text(), saved);
    let read = |pos| KeyArg { pos, access: KEY_READ };
    assert_eq!(check(&again, "q", "get it's:1", &[read(1)]), Ok(()));
    assert_eq!(check(&again, "q", "get \"x", &[read(1)]), Ok(()));
    // Two spaces make an empty rule, which does nothing (Redis: a no-op).
    again.load_file("f", "user r  on  nopass\t\r\n").unwrap();
    acl.set_user("r", &rules("on nopass")).unwrap();
    assert_eq!(again.describe("r"), acl.describe("r"));
}

/// Rules the ACL file cannot carry, since ACL LIST and ACL SAVE write rules unquoted: a
/// selector rule ending in `)` ends the selector early when loaded back, and a line break
/// in a first-argument rule splits the line. Redis 7.0.15 accepts the same rules and
/// refuses its own file with the same errors (checked with redis-server: ACL SETUSER,
/// ACL SAVE, ACL LOAD). The acl_rules fuzz target's second and third finds, kept as Redis
/// has them; the fuzz target no longer expects a round trip there.
#[test]
fn descriptions_the_acl_file_cannot_carry_fail_to_load_as_in_redis() {
    let mut acl = Acl::new(&table());
    acl.set_user("u", &rules("(%W~b*~+pt)) on")).unwrap();
    assert_eq!(acl.describe("u").unwrap(), "on resetchannels -@all (%W~b*~+pt) resetchannels -@all)");
    let err = Acl::new(&table()).load_file("f", &acl.file_text()).unwrap_err();
    assert!(
        err.0.starts_with("f:2: Error in applying operation '-@all)': Unknown command or category name in ACL."),
        "{err:?}"
    );
    let mut acl = Acl::new(&table());
    acl.set_user("v", &rules("on +get|a\nb")).unwrap();
    let err = Acl::new(&table()).load_file("f", &acl.file_text()).unwrap_err();
    assert!(err.0.starts_with("f:3 should start with user keyword followed by the username."), "{err:?}");
}

/// A selector whose rules have unbalanced quotes is empty, as Redis makes it (checked
/// with redis-server 7.0.15: ACL SETUSER then ACL LIST). A quote in a selector rule is
/// written unquoted, so `(~a'"')` saves as `(~a" …)` and loads back empty, in Redis too:
/// the acl_rules fuzz target's fourth find (after 2.1 million runs).
#[test]
fn unbalanced_quotes_in_a_selector_make_it_empty_as_in_redis() {
    let mut acl = Acl::new(&table());
    acl.set_user("y", &rules("on (~b\" +get)")).unwrap();
    assert_eq!(acl.describe("y").unwrap(), "on resetchannels -@all (resetchannels -@all)");
    acl.set_user("x", &rules("on (~a'\"')")).unwrap();
    assert_eq!(acl.describe("x").unwrap(), "on resetchannels -@all (~a\" resetchannels -@all)");
    let mut again = Acl::new(&table());
    again.load_file("f", &acl.file_text()).unwrap();
    assert_eq!(again.describe("x").unwrap(), "on resetchannels -@all (resetchannels -@all)");
}

proptest! {
    /// Any rules and any file text: an error or a result, never a panic; and whatever
    /// a user ends up with describes itself into rules that rebuild the same user.
    #[test]
    fn rules_and_files_never_panic_and_descriptions_round_trip(
        ops in proptest::collection::vec("[-+~%&<>#!()@a-z|*RW '\"]{0,12}", 0..8),
        file in "[ -~\n]{0,200}",
    ) {
        let mut acl = Acl::new(&table());
        if acl.set_user("p", &ops).is_ok() && !crate::file_cannot_carry(&ops) {
            let line = format!("user p {}\n", acl.describe("p").unwrap());
            let mut again = Acl::new(&table());
            prop_assert!(again.load_file("f", &line).is_ok(), "{line}");
            prop_assert_eq!(again.describe("p"), acl.describe("p"));
        }
        let _ = acl.load_file("f", &file);
    }
}

/// Keys at fixed positions are checked without asking the caller; when only the most
/// access a line may ask is known (SET: read too with GET), a denial is confirmed with the
/// line's own keys, and the handle a client keeps checks as the name does.
#[test]
fn fixed_key_positions_spare_the_lookup_and_a_worst_case_is_confirmed() {
    let rw = |pos| KeyArg { pos, access: KEY_READ | KEY_WRITE };
    let mut defs = table();
    defs[0].fixed_keys = Some(vec![KeyArg { pos: 1, access: KEY_READ }]);
    defs[1].fixed_keys = Some(vec![rw(1)]);
    defs[1].fixed_access_varies = true;
    let mut acl = Acl::new(&defs);
    acl.set_user("w", &rules("on nopass +@all %W~w:* ~k*")).unwrap();
    let asked = std::cell::Cell::new(0);
    let run = |line: &str, keys: &[KeyArg]| {
        let argv = args(line);
        let id = acl.resolve(argv.as_slice()).expect("known command");
        let handle = acl.user_handle("w").expect("user");
        acl.check_handle(&handle, id, argv.as_slice(), &mut || {
            asked.set(asked.get() + 1);
            keys.iter().copied().collect()
        })
    };
    assert_eq!(run("get k1", &[]), Ok(Allowed::This));
    assert_eq!(run("get w:1", &[]), Err((Denied::Key, 1)));
    assert_eq!(run("set k1 v", &[]), Ok(Allowed::This));
    assert_eq!(asked.get(), 0, "fixed positions needed no lookup");
    let write = [KeyArg { pos: 1, access: KEY_WRITE }];
    assert_eq!(run("set w:1 v", &write), Ok(Allowed::This));
    assert_eq!(run("set w:1 v get", &[rw(1)]), Err((Denied::Key, 1)));
    assert_eq!(asked.get(), 2, "a worst-case denial asks for the line's keys");
    // Too short a line for the fixed positions: the caller's keys decide.
    assert_eq!(run("get", &[]), Ok(Allowed::This));
    assert_eq!(asked.get(), 3);
}
