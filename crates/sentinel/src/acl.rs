//! The ACL of a sentinel: Redis 7.0's sentinels run Redis's ACL (the `ferrokv-acl` crate)
//! over their own command table, which is this module.

pub use ferrokv_acl::*;

const SLOW: &[&str] = &["slow"];
const ADMIN: &[&str] = &["admin", "dangerous", "slow"];
const CONN: &[&str] = &["connection", "slow"];
const CONN_ADMIN: &[&str] = &["admin", "dangerous", "connection", "slow"];
const CONN_FAST: &[&str] = &["connection", "fast"];
const PUBSUB: &[&str] = &["pubsub", "slow"];

/// A sentinel's commands as Redis 7.0 has them for ACL (those flagged for sentinel mode):
/// each container before its subcommands, with their arity and categories, declared and
/// implied by their flags (admin: also dangerous; not fast: slow).
const TABLE: &[(&str, i64, &[&str])] = &[
    ("acl", -2, SLOW),
    ("acl|cat", -2, SLOW),
    ("acl|deluser", -3, ADMIN),
    ("acl|dryrun", -4, ADMIN),
    ("acl|genpass", -2, SLOW),
    ("acl|getuser", 3, ADMIN),
    ("acl|help", 2, SLOW),
    ("acl|list", 2, ADMIN),
    ("acl|load", 2, ADMIN),
    ("acl|log", -2, ADMIN),
    ("acl|save", 2, ADMIN),
    ("acl|setuser", -3, ADMIN),
    ("acl|users", 2, ADMIN),
    ("acl|whoami", 2, SLOW),
    ("auth", -2, CONN_FAST),
    ("client", -2, SLOW),
    ("client|caching", 3, CONN),
    ("client|getname", 2, CONN),
    ("client|getredir", 2, CONN),
    ("client|help", 2, CONN),
    ("client|id", 2, CONN),
    ("client|info", 2, CONN),
    ("client|kill", -3, CONN_ADMIN),
    ("client|list", -2, CONN_ADMIN),
    ("client|no-evict", 3, CONN_ADMIN),
    ("client|pause", -3, CONN_ADMIN),
    ("client|reply", 3, CONN),
    ("client|setname", 3, CONN),
    ("client|tracking", -3, CONN),
    ("client|trackinginfo", 2, CONN),
    ("client|unblock", -3, CONN_ADMIN),
    ("client|unpause", 2, CONN_ADMIN),
    ("command", -1, CONN),
    ("command|count", 2, CONN),
    ("command|docs", -2, CONN),
    ("command|getkeys", -4, CONN),
    ("command|getkeysandflags", -4, CONN),
    ("command|help", 2, CONN),
    ("command|info", -2, CONN),
    ("command|list", -2, CONN),
    ("hello", -1, CONN_FAST),
    ("info", -1, &["dangerous", "slow"]),
    ("ping", -1, CONN_FAST),
    ("psubscribe", -2, PUBSUB),
    ("publish", 3, &["pubsub", "fast"]),
    ("punsubscribe", -1, PUBSUB),
    ("role", 1, &["admin", "dangerous", "fast"]),
    ("sentinel", -2, ADMIN),
    ("sentinel|ckquorum", 3, ADMIN),
    ("sentinel|config", -3, ADMIN),
    ("sentinel|debug", -2, ADMIN),
    ("sentinel|failover", 3, ADMIN),
    ("sentinel|flushconfig", 2, ADMIN),
    ("sentinel|get-master-addr-by-name", 3, ADMIN),
    ("sentinel|help", 2, SLOW),
    ("sentinel|info-cache", -3, ADMIN),
    ("sentinel|is-master-down-by-addr", 6, ADMIN),
    ("sentinel|master", 3, ADMIN),
    ("sentinel|masters", 2, ADMIN),
    ("sentinel|monitor", 6, ADMIN),
    ("sentinel|myid", 2, ADMIN),
    ("sentinel|pending-scripts", 2, ADMIN),
    ("sentinel|remove", 3, ADMIN),
    ("sentinel|replicas", 3, ADMIN),
    ("sentinel|reset", 3, ADMIN),
    ("sentinel|sentinels", 3, ADMIN),
    ("sentinel|set", -5, ADMIN),
    ("sentinel|simulate-failure", -3, ADMIN),
    ("sentinel|slaves", 3, ADMIN),
    ("shutdown", -1, ADMIN),
    ("subscribe", -2, PUBSUB),
    ("unsubscribe", -1, PUBSUB),
];

/// Commands any connection may run, authenticated or not, whatever its permissions.
const NO_AUTH: &[&str] = &["auth", "hello"];

/// The sentinel's commands for the ACL model.
fn commands() -> Vec<CommandDef> {
    TABLE
        .iter()
        .map(|&(name, arity, cats)| CommandDef {
            fullname: name,
            arity,
            categories: cats.iter().filter_map(|c| category(c)).fold(0, |a, c| a | 1 << c),
            no_auth: NO_AUTH.contains(&name),
            callable: true,
            // A sentinel's commands have no keys.
            fixed_keys: None,
            fixed_access_varies: false,
        })
        .collect()
}

/// A sentinel's ACL: the `default` user alone, allowed everything without a password.
pub fn new_acl() -> Acl {
    Acl::new(&commands())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl_with(name: &str, ops: &[&str]) -> Acl {
        let mut a = new_acl();
        a.set_user(name, &ops.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        a
    }

    #[test]
    fn descriptions_start_from_all_or_nothing_and_fit_categories() {
        let a = new_acl();
        assert_eq!(a.describe("default").unwrap(), "on nopass ~* &* +@all");
        let a = acl_with("alice", &["on", ">pw", "~*", "+@all"]);
        assert_eq!(a.describe("alice").unwrap(), format!("on #{} ~* resetchannels +@all", hash_password(b"pw")));
        let a = acl_with("bob", &["on", "nopass", "+ping", "-@all"]);
        assert_eq!(a.describe("bob").unwrap(), "on nopass resetchannels -@all");
        let a = acl_with("c", &["+@all", "-ping", "&chan", "%R~k*"]);
        assert_eq!(a.describe("c").unwrap(), "off %R~k* resetchannels &chan +@all -ping");
        let a = acl_with("d", &["+@pubsub", "+client|list", "+info|server"]);
        assert_eq!(a.describe("d").unwrap(), "off resetchannels -@all +@pubsub +client|list +info|server");
        let a = acl_with("e", &["+@all", "-@dangerous"]);
        assert_eq!(a.describe("e").unwrap(), "off resetchannels +@all -@dangerous");
    }

    #[test]
    fn setuser_errors_change_nothing() {
        let mut a = new_acl();
        let err = a.set_user("x", &["on".into(), "bogus".into()]).unwrap_err();
        assert_eq!(err, "ERR Error in ACL SETUSER modifier 'bogus': Syntax error");
        assert!(!a.exists("x"));
        let err = a.set_user("x", &["+nosuch".into()]).unwrap_err();
        assert_eq!(err, "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
        let err = a.set_user("x", &["(+ping".into(), "~a".into()]).unwrap_err();
        assert_eq!(err, "ERR Unmatched parenthesis in acl selector starting at '(+ping'.");
        a.set_user("x", &["(+ping".into(), "~a)".into()]).unwrap();
        assert_eq!(a.describe("x").unwrap(), "off resetchannels -@all (~a resetchannels -@all +ping)");
    }

    #[test]
    fn checks_commands_first_args_and_channels() {
        let a = acl_with("u", &["on", "nopass", "+ping", "+info|server", "+subscribe", "&news.*"]);
        let argv = |s: &str| s.split(' ').map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>();
        let check = |s: &str| {
            a.check("u", a.resolve(argv(s).as_slice()).unwrap(), argv(s).as_slice(), &mut ferrokv_acl::KeyArgs::new)
        };
        assert_eq!(check("ping"), Ok(()));
        assert_eq!(check("auth x"), Ok(()));
        assert_eq!(check("info server"), Ok(()));
        assert_eq!(check("info all"), Err((Denied::Command, 0)));
        assert_eq!(check("subscribe news.a"), Ok(()));
        assert_eq!(check("subscribe news.a other"), Err((Denied::Channel, 2)));
        assert_eq!(check("client list"), Err((Denied::Command, 0)));
    }
}
