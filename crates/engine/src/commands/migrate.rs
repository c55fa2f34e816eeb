//! MIGRATE: DUMP payloads of keys sent to another server as RESTORE commands, the keys
//! deleted here once the target acknowledged them (unless COPY).
//!
//! Redis runs the whole command in place, blocking every client while it talks to the
//! target. The engine does no I/O, so a MIGRATE runs in three steps, in the shape of a
//! blocking command that is served later:
//!
//! 1. The handler parses the arguments, takes each key's payload and TTL under the lock
//!    (`+NOKEY` if none exists) and leaves a [`MigratePending`] on the client: the request
//!    bytes for the server and what it needs to finish. It does not reply; the client runs
//!    nothing else meanwhile (its later requests wait, as behind a blocked command).
//! 2. The server's connection task takes the [`MigrateJob`] ([`Engine::take_migrate_job`]),
//!    talks to the target without the lock (its cached sockets, timeouts, Redis's one
//!    retry) and hands back what it read ([`MigrateIo`], [`Engine::finish_migrate`]).
//! 3. The command is re-run with that result, as a blocked command is re-run to serve
//!    it: it deletes the acknowledged keys, replies, and is propagated as the `DEL` of
//!    those keys, as Redis 7.0 propagates it (nothing with COPY).
//!
//! **Keys changed meanwhile.** Other clients run while the target answers. A key written,
//! deleted, expired or flushed between steps 1 and 3 is *not* deleted in step 3: the
//! target has the value it had at step 1, and a newer value here is never lost. The
//! engine keeps a touch counter for each key in flight ([`MigratingKeys`]), bumped by the
//! same hook that fails WATCHed transactions, so any change counts (a whole-database
//! event — FLUSHDB, SWAPDB, a replica's new dataset — counts for every key). The command
//! still replies OK: the move happened, the source kept a newer value.
//!
//! Inside MULTI/EXEC and scripts nothing may wait: there the handler has the host talk to
//! the target at once ([`crate::host::Host::migrate_blocking`]), under the lock, blocking
//! every client as Redis's MIGRATE always does, and finishes in the same run.

use crate::ctx::{int_arg, is, Ctx};
use crate::engine::Engine;
use crate::error::{fail, CmdError, CmdResult};
use crate::persistence::rdb::{with_value_ref, write_options};
use ferrokv_config::{notify, pid};
use ferrokv_keyspace::SmallBytes;
use ferrokv_persist::rdb::dump_payload_with;
use ferrokv_resp::Argv;
use std::collections::HashMap;
use std::time::Duration;

pub const IOERR_CONNECT: &str = "IOERR error or timeout connecting to the client";
const KEYS_NEEDS_EMPTY_KEY: &str =
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";

/// What the server sends to the target, and where.
#[derive(Debug)]
pub struct MigrateJob {
    pub host: String,
    /// As given: Redis reads it with `atoi`, so garbage connects to port 0 and fails.
    pub port: Vec<u8>,
    pub dest_db: i64,
    pub timeout: Duration,
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    /// The RESTORE commands, one per key, as RESP.
    restores: Vec<u8>,
    pub keys: usize,
}

impl MigrateJob {
    /// The socket cache's key: `host:port` as typed (Redis's `migrate_cached_sockets`).
    pub fn cache_name(&self) -> String {
        format!("{}:{}", self.host, String::from_utf8_lossy(&self.port))
    }

    /// The port as C's `atoi` reads it (leading digits; anything else gives 0).
    pub fn port_number(&self) -> u16 {
        let s = self.port.trim_ascii_start();
        let (neg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let mut n: i64 = 0;
        for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        }
        if neg {
            n = -n;
        }
        // C's int truncation, then the u16 a port is.
        (n as i32) as u16
    }

    pub fn sends_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// The pipeline's head: AUTH (or AUTH username password), and SELECT when the cached
    /// connection is not known to be in the destination db. The RESTOREs follow it
    /// ([`MigrateJob::restores`]), sent from where they are: the payloads are not copied
    /// again.
    pub fn head(&self, select: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some((user, password)) = &self.auth {
            match user {
                Some(u) => write_command(&mut out, &[b"AUTH", u, password]),
                None => write_command(&mut out, &[b"AUTH", password]),
            }
        }
        if select {
            write_command(&mut out, &[b"SELECT", self.dest_db.to_string().as_bytes()]);
        }
        out
    }

    /// The RESTORE commands, one per key, as RESP.
    pub fn restores(&self) -> &[u8] {
        &self.restores
    }
}

fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How talking to the target went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateIo {
    /// No connection within the timeout.
    ConnectFailed,
    /// The reply lines read (without CRLF), in request order, and the socket error that
    /// stopped the exchange, if one did.
    Exchanged { auth: Option<Vec<u8>>, select: Option<Vec<u8>>, restores: Vec<Vec<u8>>, failure: Option<IoFailure> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFailure {
    Writing,
    Reading,
}

/// What a [`MigrateIo`] means, by Redis 7.0's rules.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Indexes of the keys the target restored.
    pub acked: Vec<usize>,
    /// The error reply, or None for `+OK`.
    pub error: Option<String>,
    /// The target answered an error: its selected db is no longer known.
    pub target_error: bool,
}

/// Judges the exchange as Redis does: a key counts as moved when its RESTORE succeeded and
/// neither AUTH nor SELECT failed; the first target error is the reply, else a socket
/// error is, else `+OK`.
pub fn judge(io: &MigrateIo) -> Verdict {
    let (auth, select, restores, failure) = match io {
        MigrateIo::ConnectFailed => {
            return Verdict { acked: Vec::new(), error: Some(IOERR_CONNECT.into()), target_error: false }
        }
        MigrateIo::Exchanged { auth, select, restores, failure } => (auth, select, restores, failure),
    };
    fn is_err(l: &Option<Vec<u8>>) -> Option<&Vec<u8>> {
        l.as_ref().filter(|l| l.first() == Some(&b'-'))
    }
    let mut acked = Vec::new();
    let mut error = None;
    for (i, line) in restores.iter().enumerate() {
        let failed = is_err(auth).or(is_err(select)).or((line.first() == Some(&b'-')).then_some(line));
        match failed {
            Some(e) if error.is_none() => {
                error = Some(format!("ERR Target instance replied with error: {}", String::from_utf8_lossy(&e[1..])))
            }
            Some(_) => {}
            None => acked.push(i),
        }
    }
    let target_error = error.is_some();
    if error.is_none() {
        if let Some(f) = failure {
            let how = if *f == IoFailure::Writing { "writing" } else { "reading" };
            error = Some(format!("IOERR error or timeout {how} to target instance"));
        }
    }
    Verdict { acked, error, target_error }
}

/// A MIGRATE between its two runs, kept on the client.
pub struct MigratePending {
    /// Taken by the server.
    job: Option<MigrateJob>,
    keys: Vec<SmallBytes>,
    /// Each key's touch count when its payload was taken.
    marks: Vec<u64>,
    resets: u64,
    copy: bool,
    cmd: crate::commands::CmdId,
    argv: Argv,
    /// Set by the server before the second run.
    io: Option<MigrateIo>,
    /// The server's role when the payloads were taken.
    was_replica: bool,
}

impl MigratePending {
    /// The server has yet to take the job.
    pub fn needs_server(&self) -> bool {
        self.job.is_some()
    }
}

/// Keys some MIGRATE is moving, with a count of the changes made to each since.
#[derive(Default)]
pub struct MigratingKeys {
    keys: HashMap<(usize, SmallBytes), (u64, u32)>,
    /// Whole-dataset events (flushes, swaps, a new dataset): every key counts as changed.
    resets: u64,
}

impl MigratingKeys {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A change to `key` (the WATCH hook calls this).
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if let Some(e) = self.keys.get_mut(&(db, SmallBytes::from(key))) {
            e.0 += 1;
        }
    }

    pub fn reset_all(&mut self) {
        if !self.keys.is_empty() {
            self.resets += 1;
        }
    }

    fn register(&mut self, db: usize, key: &SmallBytes) -> u64 {
        let e = self.keys.entry((db, key.clone())).or_insert((0, 0));
        e.1 += 1;
        e.0
    }

    fn changed(&self, db: usize, key: &SmallBytes, mark: u64, resets: u64) -> bool {
        self.resets != resets || self.keys.get(&(db, key.clone())).is_none_or(|e| e.0 != mark)
    }

    fn release(&mut self, db: usize, key: &SmallBytes) {
        let slot = (db, key.clone());
        if let Some(e) = self.keys.get_mut(&slot) {
            e.1 -= 1;
            if e.1 == 0 {
                self.keys.remove(&slot);
            }
        }
    }
}

/// The parsed arguments: `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key …]`, checked in Redis's order.
struct Args {
    copy: bool,
    replace: bool,
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    first_key: usize,
    num_keys: usize,
    dest_db: i64,
    timeout_ms: i64,
}

fn parse(c: &Ctx) -> Result<Args, CmdError> {
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let (mut first_key, mut num_keys) = (3, 1);
    let mut j = 6;
    while j < c.argc() {
        let more = c.argc() - 1 - j;
        let a = c.arg(j);
        if is(a, "COPY") {
            copy = true;
        } else if is(a, "REPLACE") {
            replace = true;
        } else if is(a, "AUTH") {
            if more == 0 {
                return Err(CmdError::Syntax);
            }
            j += 1;
            auth = Some((None, c.arg(j).to_vec()));
        } else if is(a, "AUTH2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            auth = Some((Some(c.arg(j + 1).to_vec()), c.arg(j + 2).to_vec()));
            j += 2;
        } else if is(a, "KEYS") {
            if !c.arg(3).is_empty() {
                return fail(KEYS_NEEDS_EMPTY_KEY);
            }
            first_key = j + 1;
            num_keys = c.argc() - j - 1;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout_ms = int_arg(c.arg(5))?;
    let dest_db = int_arg(c.arg(4))?;
    Ok(Args { copy, replace, auth, first_key, num_keys, dest_db, timeout_ms })
}

/// The argument positions MONITOR must not show: AUTH's password, AUTH2's user and
/// password, as Redis redacts them while parsing.
pub fn secret_args(argv: &Argv) -> Vec<usize> {
    let mut secrets = Vec::new();
    let mut j = 6;
    while j < argv.len() {
        let a = argv.get(j);
        if is(a, "KEYS") {
            break;
        } else if is(a, "AUTH") && j + 1 < argv.len() {
            secrets.push(j + 1);
            j += 1;
        } else if is(a, "AUTH2") && j + 2 < argv.len() {
            secrets.extend([j + 1, j + 2]);
            j += 2;
        }
        j += 1;
    }
    secrets
}

pub fn migrate(c: &mut Ctx) -> CmdResult {
    if c.client.migrating.as_ref().is_some_and(|p| p.io.is_some()) {
        let pending = c.client.migrating.take().expect("checked above");
        return finish(c, *pending);
    }
    let args = parse(c)?;
    let db = c.client.db;
    // Redis first looks every key up (a miss is counted, an expired key reclaimed).
    let mut found = Vec::with_capacity(args.num_keys);
    for i in args.first_key..args.first_key + args.num_keys {
        if c.eng.lookup_read(db, c.arg(i), c.now).is_some() {
            found.push(i);
        }
    }
    if found.is_empty() {
        c.out().simple("NOKEY");
        return Ok(());
    }
    const CLUSTER_ENABLED: ferrokv_config::Pid = pid("cluster-enabled");
    let restore: &[u8] = if c.eng.cfg.bool(CLUSTER_ENABLED) { b"RESTORE-ASKING" } else { b"RESTORE" };
    let opts = write_options(c.eng);
    let mut restores = Vec::new();
    let mut keys = Vec::with_capacity(found.len());
    for i in found {
        let key = c.arg(i);
        let mut ttl = 0;
        if let Some(at) = c.eng.dbs[db].expire_at(key) {
            ttl = at - c.now;
            if ttl < 0 {
                continue;
            }
            ttl = ttl.max(1);
        }
        let Some(obj) = c.eng.dbs[db].peek(key, c.now) else { continue };
        let payload = with_value_ref(&obj.value, |v| dump_payload_with(v, &opts))
            .map_err(|e| CmdError::msg(format!("ERR can't dump the value: {e}")))?;
        let ttl = ttl.to_string();
        let mut command: Vec<&[u8]> = vec![restore, key, ttl.as_bytes(), &payload];
        if args.replace {
            command.push(b"REPLACE");
        }
        write_command(&mut restores, &command);
        keys.push(SmallBytes::from(key));
    }
    let timeout = if args.timeout_ms <= 0 { 1000 } else { args.timeout_ms };
    let job = MigrateJob {
        host: String::from_utf8_lossy(c.arg(1)).into_owned(),
        port: c.arg(2).to_vec(),
        dest_db: args.dest_db,
        timeout: Duration::from_millis(timeout as u64),
        auth: args.auth,
        restores,
        keys: keys.len(),
    };
    if !c.can_block() {
        // Inside MULTI/EXEC or a script nothing may wait: the host talks to the target
        // now, holding everyone up as Redis does, and nothing can change the keys meanwhile.
        let io = c.eng.host.migrate_blocking(&job);
        let marks = keys.iter().map(|k| c.eng.migrating.register(db, k)).collect();
        let resets = c.eng.migrating.resets;
        let pending = MigratePending {
            job: None,
            keys,
            marks,
            resets,
            copy: args.copy,
            cmd: c.cmd,
            argv: c.argv.clone(),
            io: Some(io),
            was_replica: c.eng.is_replica(),
        };
        return finish(c, pending);
    }
    let marks = keys.iter().map(|k| c.eng.migrating.register(db, k)).collect();
    c.client.migrating = Some(Box::new(MigratePending {
        job: Some(job),
        keys,
        marks,
        resets: c.eng.migrating.resets,
        copy: args.copy,
        cmd: c.cmd,
        argv: c.argv.clone(),
        io: None,
        was_replica: c.eng.is_replica(),
    }));
    Ok(())
}

/// The second run: delete what the target acknowledged (unless COPY or changed here since),
/// reply, and be propagated as the DEL of the deleted keys.
fn finish(c: &mut Ctx, p: MigratePending) -> CmdResult {
    let io = p.io.as_ref().expect("the server's result is attached before the second run");
    let verdict = judge(io);
    let db = c.client.db;
    let mut del: Vec<Vec<u8>> = Vec::new();
    // A server that became a replica meanwhile takes its dataset from its master.
    let became_replica = c.eng.is_replica() && !p.was_replica;
    // Writes paused meanwhile (CLUSTER FAILOVER, FAILOVER, SHUTDOWN): a replica about to be
    // promoted has taken the master's offset, so a DEL now could miss it; the keys stay
    // here, as when a key changed (the target has its copy; the reply is still OK).
    let paused = c.eng.pause.is_some_and(|pause| c.now < pause.until_ms);
    if !p.copy && !became_replica && !paused {
        for &i in &verdict.acked {
            let key = &p.keys[i];
            if c.eng.migrating.changed(db, key, p.marks[i], p.resets) {
                continue;
            }
            if c.eng.lookup_write(db, key, c.now).is_none() {
                continue;
            }
            if c.eng.dbs[db].remove(key).is_some() {
                c.modified(key);
                c.notify(notify::GENERIC, "del", key);
                if del.is_empty() {
                    del.push(b"DEL".to_vec());
                }
                del.push(key.to_vec());
            }
        }
    }
    for key in &p.keys {
        c.eng.migrating.release(db, key);
    }
    if !del.is_empty() {
        c.rewrite_as(del);
    }
    match verdict.error {
        Some(e) => Err(CmdError::msg(e)),
        None => {
            c.out().ok();
            Ok(())
        }
    }
}

impl Engine {
    /// The network part of client `id`'s MIGRATE, if it just asked for one.
    pub fn take_migrate_job(&mut self, id: crate::client::ClientId) -> Option<MigrateJob> {
        self.clients.get_mut(id)?.migrating.as_mut()?.job.take()
    }

    /// Finishes client `id`'s MIGRATE with what the server read from the target: the
    /// command runs again with the result (see the module docs) and replies.
    pub fn finish_migrate(&mut self, id: crate::client::ClientId, io: MigrateIo, now_ms: i64) {
        let Some(mut client) = self.clients.take(id) else { return };
        let Some(pending) = client.migrating.as_mut() else {
            self.clients.put(client);
            return;
        };
        pending.io = Some(io);
        let (cmd, argv) = (pending.cmd, pending.argv.clone());
        self.now_ms = now_ms;
        // Re-run as a served command: counted and shown to MONITOR once, when issued.
        self.call_inner(&mut client, cmd, &argv, now_ms, Some(SmallBytes::default()));
        if self.tracking.active() {
            self.tracking_after_command(&mut client, false);
        }
        self.clients.put(client);
        self.after_command(now_ms);
    }

    /// A client going away in the middle of a MIGRATE (its task ended): forget its keys.
    pub(crate) fn abandon_migrate(&mut self, client: &mut crate::client::Client) {
        if let Some(p) = client.migrating.take() {
            for key in &p.keys {
                self.migrating.release(client.db, key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchanged(auth: Option<&str>, select: Option<&str>, restores: &[&str], failure: Option<IoFailure>) -> MigrateIo {
        MigrateIo::Exchanged {
            auth: auth.map(|s| s.as_bytes().to_vec()),
            select: select.map(|s| s.as_bytes().to_vec()),
            restores: restores.iter().map(|s| s.as_bytes().to_vec()).collect(),
            failure,
        }
    }

    #[test]
    fn judge_follows_redis() {
        let ok = judge(&exchanged(None, Some("+OK"), &["+OK", "+OK"], None));
        assert_eq!(ok, Verdict { acked: vec![0, 1], error: None, target_error: false });
        let busy = judge(&exchanged(None, None, &["+OK", "-BUSYKEY Target key name already exists.", "+OK"], None));
        assert_eq!(busy.acked, vec![0, 2]);
        assert_eq!(
            busy.error.as_deref(),
            Some("ERR Target instance replied with error: BUSYKEY Target key name already exists.")
        );
        let noauth = judge(&exchanged(Some("-WRONGPASS bad"), None, &["-NOAUTH x"], None));
        assert!(noauth.acked.is_empty());
        assert_eq!(noauth.error.as_deref(), Some("ERR Target instance replied with error: WRONGPASS bad"));
        let cut = judge(&exchanged(None, None, &["+OK"], Some(IoFailure::Reading)));
        assert_eq!(cut.acked, vec![0]);
        assert_eq!(cut.error.as_deref(), Some("IOERR error or timeout reading to target instance"));
        let w = judge(&exchanged(None, None, &[], Some(IoFailure::Writing)));
        assert_eq!(w.error.as_deref(), Some("IOERR error or timeout writing to target instance"));
        assert_eq!(judge(&MigrateIo::ConnectFailed).error.as_deref(), Some(IOERR_CONNECT));
    }

    #[test]
    fn head_has_auth_and_select_then_the_restores() {
        let job = MigrateJob {
            host: "h".into(),
            port: b"12x".to_vec(),
            dest_db: 3,
            timeout: Duration::from_millis(5),
            auth: Some((Some(b"u".to_vec()), b"p".to_vec())),
            restores: b"R".to_vec(),
            keys: 1,
        };
        assert_eq!(job.port_number(), 12);
        assert_eq!(job.cache_name(), "h:12x");
        assert_eq!(
            job.head(true),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n".to_vec()
        );
        assert_eq!(job.head(false), b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n".to_vec());
        assert_eq!(job.restores(), b"R");
    }
}
