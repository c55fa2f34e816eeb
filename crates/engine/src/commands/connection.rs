//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT.

use crate::client::{Client, ReplyMode};
use crate::ctx::{int_arg, is, Ctx};
use crate::engine::Engine;
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::REDIS_VERSION;

/// What a non-local client gets when protected mode refuses it.
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

pub fn ping(c: &mut Ctx) -> CmdResult {
    if c.argc() > 2 {
        return Err(CmdError::msg("ERR wrong number of arguments for 'ping' command".into()));
    }
    if c.client.is_pubsub() && !c.client.resp3() {
        let msg = if c.argc() == 2 { c.arg(1) } else { b"" };
        let out = c.out();
        out.array(2);
        out.bulk(b"pong");
        out.bulk(msg);
    } else if c.argc() == 2 {
        let msg = c.arg(1);
        c.out().bulk(msg);
    } else {
        c.out().simple("PONG");
    }
    Ok(())
}

pub fn echo(c: &mut Ctx) -> CmdResult {
    let msg = c.arg(1);
    c.out().bulk(msg);
    Ok(())
}

pub fn quit(c: &mut Ctx) -> CmdResult {
    c.out().ok();
    c.client.close_after_reply = true;
    Ok(())
}

/// Returns the connection to its just-connected state (RESET).
pub fn reset(c: &mut Ctx) -> CmdResult {
    clear_connection_state(c.eng, c.client);
    c.out().simple("RESET");
    Ok(())
}

pub(crate) fn clear_connection_state(eng: &mut Engine, client: &mut Client) {
    if client.monitor {
        client.monitor = false;
        eng.monitors.retain(|&m| m != client.id);
    }
    client.db = 0;
    client.out.set_resp3(false);
    client.set_user("default".into());
    client.authenticated = eng.acl.default_needs_no_auth();
    crate::commands::transactions::discard_transaction(eng, client);
    crate::commands::transactions::unwatch_all(eng, client);
    crate::commands::pubsub_cmd::unsubscribe_all(eng, client, false);
    crate::commands::pubsub_cmd::punsubscribe_all(eng, client, false);
    crate::commands::pubsub_cmd::sunsubscribe_all(eng, client, false);
    client.name = None;
    client.reply_mode = ReplyMode::On;
    if client.tracking.on {
        eng.tracking_disable(client);
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

pub fn auth(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let (user, pass): (Vec<u8>, Vec<u8>) = if c.argc() == 2 {
        if c.eng.acl.default_needs_no_auth() {
            return fail("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        (b"default".to_vec(), c.arg(1).to_vec())
    } else {
        (c.arg(1).to_vec(), c.arg(2).to_vec())
    };
    let command = c.arg(0).to_vec();
    if c.eng.acl_authenticate(c.client, &command, &user, &pass) {
        c.out().ok();
        Ok(())
    } else {
        fail(WRONGPASS)
    }
}

/// Client names must be printable ASCII without spaces.
pub(crate) fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub fn hello(c: &mut Ctx) -> CmdResult {
    let mut ver = 0;
    let mut next = 1;
    if c.argc() >= 2 {
        ver = ferrokv_resp::parse_i64(c.arg(1))
            .ok_or(CmdError::err("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&ver) {
            return fail("NOPROTO unsupported protocol version");
        }
        next = 2;
    }
    let mut j = next;
    while j < c.argc() {
        let more = c.argc() - 1 - j;
        let opt = c.arg(j);
        if is(opt, "AUTH") && more >= 2 {
            let (user, pass) = (c.arg(j + 1).to_vec(), c.arg(j + 2).to_vec());
            let command = c.arg(0).to_vec();
            if !c.eng.acl_authenticate(c.client, &command, &user, &pass) {
                return fail(WRONGPASS);
            }
            j += 3;
        } else if is(opt, "SETNAME") && more >= 1 {
            let name = c.arg(j + 1);
            if !valid_client_name(name) {
                return fail("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            c.client.name = if name.is_empty() { None } else { Some(name.to_vec()) };
            j += 2;
        } else {
            return Err(CmdError::msg(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt))));
        }
    }
    if !c.client.authenticated {
        return fail("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if ver != 0 {
        c.client.out.set_resp3(ver == 3);
    }
    let proto = if c.client.resp3() { 3 } else { 2 };
    let id = c.client.id as i64;
    let sentinel = c.eng.cfg.sentinel_mode;
    let role = if c.eng.is_replica() { "replica" } else { "master" };
    let out = c.out();
    out.map(if sentinel { 6 } else { 7 });
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(proto);
    out.bulk(b"id");
    out.int(id);
    out.bulk(b"mode");
    out.bulk(if sentinel { b"sentinel" } else { b"standalone" });
    if !sentinel {
        out.bulk(b"role");
        out.bulk(role.as_bytes());
    }
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

pub fn select(c: &mut Ctx) -> CmdResult {
    let id = int_arg(c.arg(1))?;
    if c.eng.cluster.is_some() && id != 0 && (i32::MIN as i64..=i32::MAX as i64).contains(&id) {
        return fail("ERR SELECT is not allowed in cluster mode");
    }
    if id < 0 || id > i32::MAX as i64 || id as usize >= c.eng.dbs.len() {
        if id < i32::MIN as i64 || id > i32::MAX as i64 {
            return Err(CmdError::NotInteger);
        }
        return fail("ERR DB index is out of range");
    }
    c.client.db = id as usize;
    c.out().ok();
    Ok(())
}
