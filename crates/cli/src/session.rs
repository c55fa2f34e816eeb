//! A client session: the connection (made, authenticated and re-made on demand), the
//! state redis-cli tracks from the commands it sends (selected database, MULTI, RESP3),
//! and sending a command with its repeat count, printing each reply.

use crate::conn::{os_error_text, Conn, ConnError};
use crate::format::{self, OutputMode};
use crate::help::{self, HelpTable};
use crate::options::{atoi, Options};
use crate::prompt;
use ferrokv_resp::Frame;
use std::io::Write;
use std::time::Duration;

/// The process should end with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub i32);

/// Why a command stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The connection broke; the interactive mode reconnects on the next command.
    Disconnected(ConnError),
    Exit(Exit),
}

impl From<Exit> for Stop {
    fn from(e: Exit) -> Self {
        Stop::Exit(e)
    }
}

/// Writes to stdout and flushes, so output interleaves correctly with stderr and
/// reaches `grep` at once. A closed stdout ends the process, as SIGPIPE ends redis-cli.
pub fn emit(bytes: &[u8]) -> Result<(), Exit> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(|_| Exit(1))
}

/// One line on stderr in a single write, so it cannot interleave with another thread's
/// output (eprintln! writes the message and the newline separately).
pub fn warn(msg: &str) {
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg.as_bytes());
    line.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&line);
}

pub struct Session {
    pub opts: Options,
    conn: Option<Conn>,
    /// The database the connection has selected (the wanted one is `opts.conn.dbnum`).
    pub dbnum: i64,
    in_multi: bool,
    dbnum_before_multi: i64,
    /// Set at the interactive prompt: a broken connection is then reported, not fatal.
    pub interactive: bool,
    /// SHUTDOWN was sent: the server closing the connection is the expected answer.
    shutdown: bool,
    help: Option<HelpTable>,
    /// With `-c`: the node a MOVED or ASK reply named (host, port, ASK), where the
    /// command goes again.
    redirect: Option<(String, i64, bool)>,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            conn: None,
            dbnum: 0,
            in_multi: false,
            dbnum_before_multi: 0,
            interactive: false,
            shutdown: false,
            help: None,
            redirect: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    pub fn conn_mut(&mut self) -> Option<&mut Conn> {
        self.conn.as_mut()
    }

    /// Hands the connection over (to --pipe, which splits it).
    pub fn take_conn(&mut self) -> Option<Conn> {
        self.conn.take()
    }

    pub fn prompt(&self) -> String {
        if self.conn.is_some() {
            prompt::prompt(&self.opts.conn.target(), self.dbnum, self.in_multi)
        } else {
            prompt::NOT_CONNECTED.to_string()
        }
    }

    /// Connects unless connected.
    pub fn ensure_connected(&mut self, quiet: bool) -> bool {
        self.conn.is_some() || self.connect(quiet)
    }

    /// (Re)connects, then authenticates, selects the database and switches to RESP3 as
    /// the options ask. `quiet` hides a failure to connect (not a failed AUTH).
    pub fn connect(&mut self, quiet: bool) -> bool {
        // A new connection starts on database 0, outside MULTI. (redis-cli 7.0 forgets this
        // after a dropped connection and keeps using database 0 under a `[db]` prompt.)
        self.conn = None;
        self.dbnum = 0;
        self.in_multi = false;
        let target = self.opts.conn.target();
        match Conn::connect(&target) {
            Ok(c) => self.conn = Some(c),
            Err(e) => {
                if !quiet {
                    eprintln!("Could not connect to Redis at {target}: {}", os_error_text(&e));
                }
                return false;
            }
        }
        self.authenticate() && self.select() && self.switch_protocol()
    }

    /// A handshake command; an I/O failure drops the connection so the next command
    /// starts over.
    fn handshake(&mut self, args: &[&[u8]]) -> Option<Frame> {
        let conn = self.conn.as_mut()?;
        match conn.call(args) {
            Ok(reply) => Some(reply),
            Err(_) => {
                eprintln!("\nI/O error");
                self.conn = None;
                None
            }
        }
    }

    fn authenticate(&mut self) -> bool {
        let Some(auth) = self.opts.conn.auth.clone() else { return true };
        let reply = match self.opts.conn.user.clone() {
            Some(user) => self.handshake(&[b"AUTH", &user, &auth]),
            None => self.handshake(&[b"AUTH", &auth]),
        };
        match reply {
            None => false,
            Some(Frame::Error(e)) => {
                eprintln!("AUTH failed: {}", String::from_utf8_lossy(&e));
                false
            }
            Some(_) => true,
        }
    }

    /// Selects the wanted database if the connection is on another one.
    pub fn select(&mut self) -> bool {
        let want = self.opts.conn.dbnum;
        if want == self.dbnum {
            return true;
        }
        match self.handshake(&[b"SELECT", want.to_string().as_bytes()]) {
            None => false,
            Some(Frame::Error(e)) => {
                eprintln!("SELECT {want} failed: {}", String::from_utf8_lossy(&e));
                false
            }
            Some(_) => {
                self.dbnum = want;
                true
            }
        }
    }

    fn switch_protocol(&mut self) -> bool {
        if !self.opts.resp3 || self.opts.resp2 {
            return true;
        }
        match self.handshake(&[b"HELLO", b"3"]) {
            None => false,
            Some(Frame::Error(e)) => {
                eprintln!("HELLO 3 failed: {}", String::from_utf8_lossy(&e));
                false
            }
            Some(_) => true,
        }
    }

    /// Sends one command and returns its reply, for the special modes (--scan, --stat…).
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Frame, ConnError> {
        let conn = self.conn.as_mut().ok_or(ConnError::Eof)?;
        let result = conn.call(args);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// The help table, fetched from the server the first time it is needed (again while
    /// it is empty: the server may not have been reachable yet).
    pub fn help_table(&mut self) -> &HelpTable {
        if self.help.as_ref().is_none_or(HelpTable::is_empty) {
            let table = self.fetch_help();
            self.help = Some(table);
        }
        self.help.get_or_insert_with(HelpTable::default)
    }

    fn fetch_help(&mut self) -> HelpTable {
        if !self.ensure_connected(true) {
            return HelpTable::default();
        }
        match self.call(&[b"COMMAND", b"DOCS"]) {
            Ok(Frame::Error(_)) => match self.call(&[b"COMMAND"]) {
                Ok(list) => HelpTable::from_command_list(&list),
                Err(_) => HelpTable::default(),
            },
            Ok(docs) => HelpTable::from_command_docs(&docs).unwrap_or_default(),
            Err(_) => HelpTable::default(),
        }
    }

    /// Runs one command line (`repeat` times). Returns false if it could not be sent
    /// or the connection broke (already reported on stderr).
    pub fn issue(&mut self, argv: &[Vec<u8>], repeat: i64) -> Result<bool, Exit> {
        let Some(name) = argv.first() else { return Ok(true) };
        if name.eq_ignore_ascii_case(b"help") || name == b"?" {
            let text = if argv.len() == 1 {
                help::generic_help(&crate::version()).into_bytes()
            } else {
                self.help_table().render(&argv[1..])
            };
            emit(&text)?;
            return Ok(true);
        }
        if self.conn.is_none() && !self.connect(false) && self.conn.is_none() {
            return Ok(false);
        }
        let mut redirects = 0;
        loop {
            match self.send_command(argv, repeat) {
                Ok(()) => {}
                Err(Stop::Exit(e)) => return Err(e),
                Err(Stop::Disconnected(e)) => {
                    eprintln!("Error: {e}");
                    self.conn = None;
                    return Ok(false);
                }
            }
            // -c: the command goes again to the node the redirection named.
            let Some((host, port, ask)) = self.redirect.take() else { return Ok(true) };
            // redis-cli follows forever; a cluster that sends a command around in circles
            // should not keep the client busy for good.
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                eprintln!("Error: more than {MAX_REDIRECTS} cluster redirections");
                return Ok(false);
            }
            self.opts.conn.host = host;
            self.opts.conn.port = port;
            if !self.connect(false) {
                return Ok(false);
            }
            if ask && self.call(&[b"ASKING"]).is_err() {
                eprintln!("\nI/O error");
                return Ok(false);
            }
        }
    }

    fn send_command(&mut self, argv: &[Vec<u8>], repeat: i64) -> Result<(), Stop> {
        let name = argv[0].to_ascii_lowercase();
        let verbatim = prints_verbatim(argv);
        if name == b"shutdown" {
            self.shutdown = true;
        }
        let monitor = name == b"monitor";
        let pubsub = matches!(name.as_slice(), b"subscribe" | b"psubscribe" | b"ssubscribe");
        let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let mut remaining = repeat;
        while remaining != 0 {
            if remaining > 0 {
                remaining -= 1;
            }
            let Some(conn) = self.conn.as_mut() else { break };
            conn.send(&args).map_err(|e| self.read_failure(e))?;
            if monitor || pubsub {
                // These stream replies until the server ends them with an error.
                if pubsub && self.opts.output != OutputMode::Raw {
                    emit(b"Reading messages... (press Ctrl-C to quit)\n")?;
                }
                while let Some(reply) = self.read_and_print(verbatim, true)? {
                    if reply.is_error() {
                        break;
                    }
                }
                if monitor {
                    return Ok(());
                }
                continue;
            }
            let Some(reply) = self.read_and_print(verbatim, false)? else { break };
            if self.redirect.is_some() {
                // Sent again elsewhere: the remaining repeats go there.
                break;
            }
            self.track_state(argv, &reply);
            if !self.opts.interval.is_zero() {
                std::thread::sleep(self.opts.interval);
            }
        }
        Ok(())
    }

    /// Reads a reply and prints it. None when the server closed the connection after
    /// SHUTDOWN, as expected.
    fn read_and_print(&mut self, verbatim: bool, streaming: bool) -> Result<Option<Frame>, Stop> {
        let reply = loop {
            let Some(conn) = self.conn.as_mut() else { return Ok(None) };
            match conn.read_reply() {
                // Pushes are the replies of pub/sub; elsewhere they are out-of-band.
                Ok(Frame::Push(items)) if !streaming => {
                    if self.opts.push_output {
                        emit(&format::push(&Frame::Push(items), self.opts.output, &self.opts.delims))?;
                    }
                }
                Ok(reply) => break reply,
                Err(_) if self.shutdown => {
                    self.conn = None;
                    return Ok(None);
                }
                Err(e) => return Err(self.read_failure(e)),
            }
        };
        if let Some(target) = self.opts.follow_redirects.then(|| redirection(&reply)).flatten() {
            if self.interactive {
                emit(
                    format!("-> Redirected to slot [{}] located at {}:{}\n", target.0, target.1, target.2).as_bytes(),
                )?;
            }
            self.redirect = Some((target.1, target.2, target.3));
            return Ok(Some(reply));
        }
        if let Frame::Error(e) = &reply {
            if !self.interactive && self.opts.exit_on_error {
                eprintln!("{}", String::from_utf8_lossy(e));
                return Err(Exit(1).into());
            }
        }
        emit(&format::reply(&reply, self.opts.output, verbatim, &self.opts.delims))?;
        Ok(Some(reply))
    }

    /// A broken connection is fatal outside the prompt; at the prompt a dropped one is
    /// reported and the next command reconnects.
    fn read_failure(&mut self, e: ConnError) -> Stop {
        if self.interactive && e.is_disconnect() {
            return Stop::Disconnected(e);
        }
        eprintln!("Error: {e}");
        Stop::Exit(Exit(1))
    }

    /// Follows the commands that change the connection's state, for the prompt and for
    /// reconnecting to the same database.
    fn track_state(&mut self, argv: &[Vec<u8>], reply: &Frame) {
        let is = |word: &[u8]| argv[0].eq_ignore_ascii_case(word);
        let failed = reply.is_error();
        let argc = argv.len();
        if is(b"select") && argc == 2 && !failed {
            self.dbnum = atoi(&argv[1]);
            self.opts.conn.dbnum = self.dbnum;
        } else if is(b"auth") && (argc == 2 || argc == 3) {
            self.select();
        } else if is(b"multi") && argc == 1 && !failed {
            self.in_multi = true;
            self.dbnum_before_multi = self.dbnum;
        } else if is(b"exec") && argc == 1 && self.in_multi {
            self.in_multi = false;
            // A failed transaction did not run its SELECTs.
            if failed || *reply == Frame::Null {
                self.dbnum = self.dbnum_before_multi;
                self.opts.conn.dbnum = self.dbnum;
            }
        } else if is(b"discard") && argc == 1 && !failed {
            self.in_multi = false;
            self.dbnum = self.dbnum_before_multi;
            self.opts.conn.dbnum = self.dbnum;
        } else if is(b"reset") && argc == 1 && !failed {
            self.in_multi = false;
            self.dbnum = 0;
            self.opts.conn.dbnum = 0;
            self.opts.resp3 = false;
        }
    }

    /// Waits `interval` (or `default` if none was given), for the periodic modes.
    pub fn pause(&self, default: Duration) {
        let d = if self.opts.interval.is_zero() { default } else { self.opts.interval };
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

/// How many redirections one command may follow with `-c`.
const MAX_REDIRECTS: u32 = 16;

/// A `MOVED <slot> <host>:<port>` or `ASK …` error: (slot, host, port, is ASK).
fn redirection(reply: &Frame) -> Option<(i64, String, i64, bool)> {
    let Frame::Error(e) = reply else { return None };
    let text = String::from_utf8_lossy(e);
    let mut words = text.split(' ');
    let ask = match words.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let slot = atoi(words.next()?.as_bytes());
    let (host, port) = words.next()?.rsplit_once(':')?;
    Some((slot, host.to_string(), atoi(port.as_bytes()), ask))
}

/// Commands whose reply is text for humans (INFO, CLIENT LIST…), printed as is in every
/// output mode rather than quoted.
pub fn prints_verbatim(argv: &[Vec<u8>]) -> bool {
    let is = |i: usize, w: &str| argv.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()));
    let argc = argv.len();
    is(0, "info")
        || is(0, "lolwut")
        || (argc >= 2 && is(0, "debug") && (is(1, "htstats") || is(1, "htstats-key") || is(1, "client-eviction")))
        || (argc >= 2 && is(0, "memory") && (is(1, "malloc-stats") || is(1, "doctor")))
        || (argc == 2 && is(0, "cluster") && (is(1, "nodes") || is(1, "info")))
        || (argc >= 2 && is(0, "client") && (is(1, "list") || is(1, "info")))
        || (argc == 3 && is(0, "latency") && is(1, "graph"))
        || (argc == 2 && is(0, "latency") && is(1, "doctor"))
        || (argc >= 2 && is(0, "proxy") && is(1, "info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn verbatim_commands() {
        assert!(prints_verbatim(&argv("INFO")));
        assert!(prints_verbatim(&argv("info server")));
        assert!(prints_verbatim(&argv("client list")));
        assert!(prints_verbatim(&argv("latency doctor")));
        assert!(!prints_verbatim(&argv("latency doctor x")));
        assert!(!prints_verbatim(&argv("client id")));
        assert!(!prints_verbatim(&argv("get info")));
    }

    #[test]
    fn state_follows_select_multi_exec() {
        let mut s = Session::new(Options::new(false));
        s.track_state(&argv("select 2"), &Frame::Simple("OK".into()));
        assert_eq!((s.dbnum, s.opts.conn.dbnum), (2, 2));
        assert_eq!(s.prompt(), prompt::NOT_CONNECTED);
        s.track_state(&argv("multi"), &Frame::Simple("OK".into()));
        s.track_state(&argv("select 5"), &Frame::Simple("QUEUED".into()));
        assert!(s.in_multi);
        assert_eq!(s.dbnum, 5);
        s.track_state(&argv("exec"), &Frame::Null);
        assert_eq!((s.dbnum, s.in_multi), (2, false));
        s.track_state(&argv("select 9"), &Frame::Error("ERR DB index is out of range".into()));
        assert_eq!(s.dbnum, 2);
        s.track_state(&argv("reset"), &Frame::Simple("RESET".into()));
        assert_eq!((s.dbnum, s.opts.conn.dbnum), (0, 0));
    }

    #[test]
    fn redirections() {
        let err = |s: &str| Frame::Error(bytes::Bytes::from(s.to_string()));
        assert_eq!(redirection(&err("MOVED 3999 127.0.0.1:6381")), Some((3999, "127.0.0.1".into(), 6381, false)));
        assert_eq!(redirection(&err("ASK 1 ::1:7000")), Some((1, "::1".into(), 7000, true)));
        assert_eq!(redirection(&err("ERR MOVED 1 h:1")), None);
        assert_eq!(redirection(&err("MOVED 1")), None);
        assert_eq!(redirection(&Frame::Simple(bytes::Bytes::from_static(b"MOVED 1 h:1"))), None);
    }
}
