//! ACL users against the real binary: the acceptance cases of issue 16 (an application
//! user held to its keys and safe commands, a replication user as `masteruser`, the ACL
//! file surviving a restart), the ACL LOG, what deleting a user does to its clients, and
//! users in redis.conf kept by CONFIG REWRITE. Byte-exact replies against redis-server are
//! in tests/diff/acl.txt.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn cmd(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    String::from_utf8_lossy(&r.cmd(&args)).into_owned()
}

const NOPERM_KEY: &str = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

#[test]
fn an_application_user_reads_only_its_keys_and_runs_no_dangerous_command() {
    let s = Server::start(&[]);
    let mut admin = s.raw();
    assert_eq!(cmd(&mut admin, "ACL SETUSER app on >apppw ~app:* +@all -@dangerous"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "SET secret 1"), "+OK\r\n");
    let mut app = s.raw();
    assert_eq!(cmd(&mut app, "AUTH app apppw"), "+OK\r\n");
    assert_eq!(cmd(&mut app, "SET app:1 v"), "+OK\r\n");
    assert_eq!(cmd(&mut app, "GET app:1"), "$1\r\nv\r\n");
    assert_eq!(cmd(&mut app, "GET secret"), NOPERM_KEY);
    assert_eq!(cmd(&mut app, "MGET app:1 secret"), NOPERM_KEY);
    assert_eq!(cmd(&mut app, "FLUSHALL"), "-NOPERM this user has no permissions to run the 'flushall' command\r\n");
    assert_eq!(
        cmd(&mut app, "CONFIG SET maxmemory 1"),
        "-NOPERM this user has no permissions to run the 'config|set' command\r\n"
    );
    // Scripts run their commands with the caller's permissions.
    let eval: Vec<&[u8]> = vec![b"EVAL", b"return redis.call('get', 'secret')", b"0"];
    let reply = String::from_utf8_lossy(&app.cmd(&eval)).into_owned();
    assert!(reply.contains("The user executing the script can't access at least one of the keys"), "{reply}");
    assert_eq!(cmd(&mut admin, "GET secret"), "$1\r\n1\r\n", "nothing was flushed");
    assert_eq!(cmd(&mut admin, "CONFIG GET maxmemory"), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");

    // The log: newest first, with the reason, context, object and user Redis gives.
    assert_eq!(cmd(&mut app, "AUTH app wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let log = cmd(&mut admin, "ACL LOG");
    let fields: Vec<&str> = log.split("\r\n").collect();
    let entry = |i: usize, field: &str| -> String {
        // Each entry is a 7-pair map; find the i-th occurrence of `field` and its value.
        let at = fields.iter().enumerate().filter(|(_, f)| **f == field).nth(i).map(|(j, _)| j).expect(field);
        fields[at + 2].to_string()
    };
    assert_eq!(
        (entry(0, "reason"), entry(0, "object"), entry(0, "username")),
        ("auth".into(), "AUTH".into(), "app".into())
    );
    assert_eq!(
        (entry(1, "reason"), entry(1, "context"), entry(1, "object")),
        ("key".into(), "lua".into(), "secret".into())
    );
    assert_eq!((entry(2, "reason"), entry(2, "object")), ("command".into(), "config|set".into()));
    assert_eq!((entry(3, "reason"), entry(3, "object")), ("command".into(), "flushall".into()));
    assert_eq!(
        (entry(4, "reason"), entry(4, "context"), entry(4, "object")),
        ("key".into(), "toplevel".into(), "secret".into())
    );
    assert!(!log.contains("apppw") && !log.contains("wrong\r"), "passwords are never logged");
    assert!(log.contains("$5\r\ncount\r\n:2\r\n"), "GET and MGET of the same key fold into one entry: {log}");
    assert_eq!(cmd(&mut admin, "ACL LOG RESET"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "ACL LOG"), "*0\r\n");
}

#[test]
fn deleting_a_user_disconnects_its_clients_and_lost_channels_drop_subscribers() {
    let s = Server::start(&[]);
    let mut admin = s.raw();
    assert_eq!(cmd(&mut admin, "ACL SETUSER gone on nopass +@all ~* &*"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "ACL SETUSER sub on nopass +@all ~* &news.*"), "+OK\r\n");
    let mut victim = s.raw();
    assert_eq!(cmd(&mut victim, "AUTH gone x"), "+OK\r\n");
    let mut subscriber = s.raw();
    assert_eq!(cmd(&mut subscriber, "AUTH sub x"), "+OK\r\n");
    assert!(cmd(&mut subscriber, "SUBSCRIBE news.a").starts_with("*3\r\n$9\r\nsubscribe"));
    let mut bystander = s.raw();
    assert_eq!(cmd(&mut bystander, "AUTH sub x"), "+OK\r\n");

    assert_eq!(cmd(&mut admin, "ACL DELUSER gone"), ":1\r\n");
    assert!(victim.closed(), "a deleted user's client is disconnected");
    assert_eq!(cmd(&mut admin, "ACL SETUSER sub resetchannels &sports"), "+OK\r\n");
    assert!(subscriber.closed(), "a subscriber that lost its channel is disconnected");
    assert_eq!(cmd(&mut bystander, "PING"), "+PONG\r\n", "a client of the user without subscriptions stays");
    // Switched off, a user keeps its connections but cannot log in again (Redis 7.0).
    assert_eq!(cmd(&mut admin, "ACL SETUSER sub off"), "+OK\r\n");
    assert_eq!(cmd(&mut bystander, "PING"), "+PONG\r\n");
    assert_eq!(cmd(&mut bystander, "AUTH sub x"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
}

#[test]
fn requirepass_is_the_default_users_password_and_hello_auth_logs_in_users() {
    let s = Server::start(&["--requirepass", "pw"]);
    let mut c = s.raw();
    assert_eq!(cmd(&mut c, "GET k"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(cmd(&mut c, "AUTH pw"), "+OK\r\n");
    assert!(cmd(&mut c, "ACL LIST").contains("user default on #"), "hash of requirepass");
    assert_eq!(cmd(&mut c, "ACL SETUSER ro on >ro %R~* +@read +acl|whoami"), "+OK\r\n");
    let mut r = s.raw();
    assert!(cmd(&mut r, "HELLO 3 AUTH ro ro SETNAME reader").starts_with("%7\r\n"));
    assert_eq!(cmd(&mut r, "ACL WHOAMI"), "$2\r\nro\r\n");
    assert_eq!(cmd(&mut r, "GET k"), "_\r\n");
    assert_eq!(cmd(&mut r, "SET k v"), "-NOPERM this user has no permissions to run the 'set' command\r\n");
    // Dropping requirepass opens the default user to everyone.
    assert_eq!(c.cmd(&[b"CONFIG", b"SET", b"requirepass", b""]), b"+OK\r\n");
    assert_eq!(cmd(&mut s.raw(), "PING"), "+PONG\r\n");
}

#[test]
fn the_acl_file_survives_a_restart_and_bad_files_change_nothing() {
    let dir = TempDir::new("aclfile");
    let file = dir.path().join("users.acl");
    std::fs::write(&file, "").unwrap();
    let path = file.to_str().unwrap();
    let s = Server::start(&["--aclfile", path]);
    let mut c = s.raw();
    assert_eq!(cmd(&mut c, "ACL SETUSER app on >pw ~app:* +@all -@dangerous"), "+OK\r\n");
    assert_eq!(cmd(&mut c, "ACL SAVE"), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.starts_with("user app on #"), "{saved}");
    drop(c);
    drop(s);

    let s = Server::start(&["--aclfile", path]);
    let mut c = s.raw();
    assert_eq!(cmd(&mut c, "AUTH app pw"), "+OK\r\n");
    assert_eq!(cmd(&mut c, "GET other"), NOPERM_KEY);
    let mut admin = s.raw();
    std::fs::write(&file, "user ok on nopass\nuser bad +nosuchcommand\n").unwrap();
    let err = cmd(&mut admin, "ACL LOAD");
    assert_eq!(
        err,
        format!("-ERR {path}:2: Error in applying operation '+nosuchcommand': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n")
    );
    assert_eq!(cmd(&mut admin, "ACL USERS"), "*2\r\n$3\r\napp\r\n$7\r\ndefault\r\n", "all or nothing");
    std::fs::write(&file, "user ok on nopass +@all ~*\n").unwrap();
    assert_eq!(cmd(&mut admin, "ACL LOAD"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "ACL USERS"), "*2\r\n$7\r\ndefault\r\n$2\r\nok\r\n");
    assert!(c.closed(), "ACL LOAD disconnects the clients of the users it replaced");
    drop(s);

    // A broken ACL file stops startup with its file and line.
    std::fs::write(&file, "user x on\nuser y bogus\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", "--port", &free_port().to_string(), "--aclfile", path])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains(&format!("Aborting Redis startup because of ACL errors: {path}:2: Syntax error. WARNING")),
        "{err}"
    );
}

#[test]
fn user_lines_in_redis_conf_load_and_config_rewrite_keeps_them() {
    let dir = TempDir::new("userconf");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "user app on >pw ~app:* +get\n").unwrap();
    let s = Server::start_with_config(&conf, &[]);
    let mut c = s.raw();
    assert_eq!(cmd(&mut c, "AUTH app pw"), "+OK\r\n");
    assert_eq!(cmd(&mut c, "SET app:1 v"), "-NOPERM this user has no permissions to run the 'set' command\r\n");
    let mut admin = s.raw();
    assert_eq!(cmd(&mut admin, "ACL SETUSER app +set"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "ACL SETUSER other on nopass"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "CONFIG REWRITE"), "+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("user app on #") && text.contains("~app:* resetchannels -@all +get +set"), "{text}");
    assert!(text.contains("user other off nopass") || text.contains("user other on nopass"), "{text}");
    drop(s);
    let s = Server::start_with_config(&conf, &[]);
    let mut c = s.raw();
    assert_eq!(cmd(&mut c, "AUTH app pw"), "+OK\r\n");
    assert_eq!(cmd(&mut c, "SET app:1 v"), "+OK\r\n");
    drop(s);

    // Users in redis.conf and an ACL file at once: refused, as by Redis.
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", conf.to_str().unwrap(), "--port", &free_port().to_string()])
        .args(["--dir", dir.path().to_str().unwrap(), "--logfile", "", "--aclfile", acl.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("please define either an ACL file or declare users directly in your redis.conf"), "{err}");
}

#[test]
fn a_replication_user_with_only_psync_replconf_ping_works_as_masteruser() {
    let m = Server::start(&["--requirepass", "adminpw"]);
    let mut admin = m.raw();
    assert_eq!(cmd(&mut admin, "AUTH adminpw"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "ACL SETUSER repl on >replpw +psync +replconf +ping"), "+OK\r\n");
    assert_eq!(cmd(&mut admin, "SET before 1"), "+OK\r\n");
    let port = m.port.to_string();
    let r = Server::start(&["--replicaof", "127.0.0.1", &port, "--masteruser", "repl", "--masterauth", "replpw"]);
    let mut rc = r.raw();
    let up = wait_until(Duration::from_secs(20), || cmd(&mut rc, "INFO replication").contains("master_link_status:up"));
    assert!(up, "the replica links up as the replication user");
    assert_eq!(cmd(&mut admin, "SET after 2"), "+OK\r\n");
    let synced = wait_until(Duration::from_secs(10), || cmd(&mut rc, "GET after") == "$1\r\n2\r\n");
    assert!(synced);
    assert_eq!(cmd(&mut rc, "GET before"), "$1\r\n1\r\n");
    // The replica's connection runs as that user (and nothing more).
    let list = cmd(&mut admin, "CLIENT LIST TYPE replica");
    assert!(list.contains("user=repl"), "{list}");
    assert!(!cmd(&mut admin, "ACL LOG").contains("repl"), "replication needed nothing denied");
}
