//! ACL rules and ACL files on arbitrary text: SETUSER's modifiers and the aclfile parser
//! may refuse anything, never panic; whatever they accept describes itself into rules
//! that load back to the same user.
#![no_main]
use ferrokv_acl::{Acl, CommandDef};
use libfuzzer_sys::fuzz_target;

fn table() -> Vec<CommandDef> {
    let def = |fullname, arity, categories| CommandDef { fullname, arity, categories, no_auth: false, callable: true, fixed_keys: None, fixed_access_varies: false };
    vec![
        def("get", 2, 1 << 1 | 1 << 7),
        def("set", -3, 1 << 2 | 1 << 7),
        def("config", -2, 0),
        def("config|get", -3, 1 << 13 | 1 << 17),
        def("info", -1, 1 << 17),
        def("publish", 3, 1 << 12),
    ]
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut acl = Acl::new(&table());
    let ops: Vec<String> = text.split(' ').map(str::to_string).collect();
    if acl.set_user("u", &ops).is_ok() {
        let line = format!("user u {}\n", acl.describe("u").expect("just set"));
        let mut again = Acl::new(&table());
        again.load_file("f", &line).expect("a description loads back");
        assert_eq!(again.describe("u"), acl.describe("u"));
    }
    let _ = acl.load_file("f", &text);
});
