//! ACL rules and ACL files on arbitrary text: SETUSER's modifiers and the aclfile parser
//! may refuse anything, never panic; whatever they accept describes itself into rules
//! that load back to the same user. On an accepted user, command lines whose keys and
//! channels come from the same text are checked: the fast path never allows a line the
//! full check denies, and neither panics.
#![no_main]
use ferrokv_acl::{Acl, CommandDef, KeyArg, KeyArgs, KEY_READ, KEY_WRITE};
use libfuzzer_sys::fuzz_target;

fn table() -> Vec<CommandDef> {
    let def = |fullname, arity, categories, fixed: Option<&[KeyArg]>| CommandDef {
        fullname,
        arity,
        categories,
        no_auth: false,
        callable: true,
        fixed_keys: fixed.map(|k| k.to_vec()),
        fixed_access_varies: false,
    };
    let read = |pos| KeyArg { pos, access: KEY_READ };
    let write = |pos| KeyArg { pos, access: KEY_WRITE };
    vec![
        def("get", 2, 1 << 1 | 1 << 7, Some(&[read(1)])),
        def("set", -3, 1 << 2 | 1 << 7, Some(&[write(1)])),
        def("copy", -3, 1 << 2, Some(&[read(1), write(2)])),
        def("mget", -2, 1 << 1 | 1 << 7, None),
        def("config", -2, 0, None),
        def("config|get", -3, 1 << 13 | 1 << 17, None),
        def("info", -1, 1 << 17, Some(&[])),
        def("publish", 3, 1 << 12, Some(&[])),
    ]
}

/// Each command line of the table with `a` and `b` as its keys or channel, and the keys
/// the caller would find in it.
fn lines<'a>(a: &'a str, b: &'a str) -> Vec<(Vec<&'a str>, Vec<KeyArg>)> {
    let read = |pos| KeyArg { pos, access: KEY_READ };
    let write = |pos| KeyArg { pos, access: KEY_WRITE };
    vec![
        (vec!["get", a], vec![read(1)]),
        (vec!["set", a, b], vec![write(1)]),
        (vec!["copy", a, b], vec![read(1), write(2)]),
        (vec!["mget", a, b], vec![read(1), read(2)]),
        (vec!["config", "get", a], vec![]),
        (vec!["info"], vec![]),
        (vec!["publish", a, b], vec![]),
    ]
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut acl = Acl::new(&table());
    let ops: Vec<String> = text.split(' ').map(str::to_string).collect();
    if acl.set_user("u", &ops).is_ok() {
        let line = format!("user u {}\n", acl.describe("u").expect("just set"));
        let mut again = Acl::new(&table());
        if !ferrokv_acl::file_cannot_carry(&ops) {
            again.load_file("f", &line).expect("a description loads back");
            assert_eq!(again.describe("u"), acl.describe("u"));
        }
        let _ = acl.get_user("u");
        let a = ops.last().map_or("", String::as_str);
        let b = ops.first().map_or("", String::as_str);
        let handle = acl.user_handle("u").expect("just set");
        for (words, keys) in lines(a, b) {
            let argv: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            let Some(id) = acl.resolve(argv.as_slice()) else { continue };
            let fast = acl.allows_fast(&handle, id, argv.as_slice());
            let full =
                acl.check_handle(&handle, id, argv.as_slice(), &mut || keys.iter().copied().collect::<KeyArgs>());
            assert!(!fast || full.is_ok(), "fast path allowed {words:?}, full check said {full:?}");
        }
        let _ = acl.channel_allowed("u", a.as_bytes(), false);
        let _ = acl.channel_allowed("u", a.as_bytes(), true);
    }
    let _ = acl.load_file("f", &text);
    let _ = acl.file_text();
});
