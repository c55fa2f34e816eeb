//! The wire: inline commands, pipelining, RESP3, and malformed or oversized input —
//! answered with Redis's exact protocol errors, the offending connection closed, and
//! every other client unaffected.

mod common;
use common::*;

fn assert_other_clients_fine(s: &Server) {
    let mut c = s.conn();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn inline_commands_like_telnet() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"SET greeting \"hello world\"\r\n");
    assert_eq!(r.read_reply().unwrap(), b"+OK\r\n");
    r.send(b"GET greeting\n");
    assert_eq!(r.read_reply().unwrap(), b"$11\r\nhello world\r\n");
    r.send(b"\r\n\r\nPING\r\n");
    assert_eq!(r.read_reply().unwrap(), b"+PONG\r\n");
}

#[test]
fn pipelining_ten_thousand_commands_in_one_write() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut wire = Vec::new();
    for i in 0..10_000 {
        ferrokv_resp::encode_command(&mut wire, [&b"INCR"[..], b"counter"]);
        if i % 1000 == 0 {
            ferrokv_resp::encode_command(&mut wire, [&b"PING"[..]]);
        }
    }
    r.send(&wire);
    let mut n = 0;
    let mut last = Vec::new();
    for _ in 0..10_010 {
        last = r.read_reply().unwrap();
        n += 1;
    }
    assert_eq!(n, 10_010);
    assert_eq!(last, b":10000\r\n");
}

#[test]
fn resp3_via_hello() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let hello = r.cmd(&[b"HELLO", b"3"]);
    assert!(hello.starts_with(b"%7\r\n"), "{}", String::from_utf8_lossy(&hello));
    assert_eq!(r.cmd(&[b"GET", b"nokey"]), b"_\r\n");
    r.cmd(&[b"SET", b"f", b"1.5"]);
    assert_eq!(r.cmd(&[b"CONFIG", b"GET", b"port"])[..2].to_vec(), b"%1".to_vec());
    let info = r.cmd(&[b"CLIENT", b"INFO"]);
    assert!(info.starts_with(b"="), "verbatim string in RESP3");
    // Pub/sub messages are pushes, and RESP3 clients may run commands while subscribed.
    assert_eq!(r.cmd(&[b"SUBSCRIBE", b"ch"]), b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    assert_eq!(r.cmd(&[b"GET", b"f"]), b"$3\r\n1.5\r\n");
    let mut p = s.conn();
    let n: i64 = redis::cmd("PUBLISH").arg("ch").arg("hi").query(&mut p).unwrap();
    assert_eq!(n, 1);
    assert_eq!(r.read_reply().unwrap(), b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
}

fn expect_protocol_error(input: &[u8], error: &str) {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(input);
    let reply = r.read_reply().expect("an error reply before closing");
    assert_eq!(String::from_utf8_lossy(&reply), format!("-ERR Protocol error: {error}\r\n"));
    assert!(r.closed(), "connection closed after a protocol error");
    assert_other_clients_fine(&s);
}

#[test]
fn bad_bulk_length() {
    expect_protocol_error(b"*1\r\n$abc\r\n", "invalid bulk length");
    expect_protocol_error(b"*1\r\n$-1\r\n", "invalid bulk length");
}

#[test]
fn oversized_bulk_header_is_refused_without_allocating() {
    // 600 MB is over proto-max-bulk-len (512 MB): refused from the header alone.
    expect_protocol_error(b"*1\r\n$629145600\r\n", "invalid bulk length");
}

#[test]
fn bad_multibulk_length() {
    expect_protocol_error(b"*abc\r\n", "invalid multibulk length");
    expect_protocol_error(b"*1\r\nfoo\r\n", "expected '$', got 'f'");
}

#[test]
fn negative_multibulk_count_is_ignored() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"*-5\r\nPING\r\n");
    assert_eq!(r.read_reply().unwrap(), b"+PONG\r\n");
}

#[test]
fn unbalanced_quotes_inline() {
    expect_protocol_error(b"SET a \"b\r\n", "unbalanced quotes in request");
}

#[test]
fn too_big_inline_request() {
    expect_protocol_error(&vec![b'x'; 70 * 1024], "too big inline request");
}

#[test]
fn binary_junk_gets_an_error_or_is_ignored_never_a_crash() {
    let s = Server::start(&[]);
    let mut seed = 7u64;
    for _ in 0..20 {
        let mut junk = Vec::new();
        for _ in 0..512 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            junk.push((seed >> 33) as u8);
        }
        let mut r = s.raw();
        r.send(&junk);
        drop(r);
    }
    assert_other_clients_fine(&s);
}

#[test]
fn half_a_frame_then_disconnect() {
    let s = Server::start(&[]);
    {
        let mut r = s.raw();
        r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly part");
    }
    assert_other_clients_fine(&s);
    let mut c = s.conn();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, None);
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut r = s.raw();
    // An argument of 2 MB never completes within the 1 MB limit.
    r.send(b"*2\r\n$3\r\nGET\r\n$2000000\r\n");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..20 {
        if r.stream.write_all_chunk(&chunk).is_err() {
            break;
        }
    }
    assert!(r.closed());
    assert!(s.log_text().contains("max query buffer length"));
    assert_other_clients_fine(&s);
}

trait WriteChunk {
    fn write_all_chunk(&mut self, b: &[u8]) -> std::io::Result<()>;
}

impl WriteChunk for std::net::TcpStream {
    fn write_all_chunk(&mut self, b: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.write_all(b)
    }
}

#[test]
fn unauthenticated_clients_get_small_limits() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut r = s.raw();
    let mut wire = Vec::new();
    let args: Vec<&[u8]> = std::iter::repeat_n(&b"x"[..], 11).collect();
    ferrokv_resp::encode_command(&mut wire, args);
    r.send(&wire);
    assert_eq!(r.read_reply().unwrap(), b"-ERR Protocol error: unauthenticated multibulk length\r\n");
    let mut r = s.raw();
    assert_eq!(r.cmd(&[b"GET", b"a"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(r.cmd(&[b"AUTH", b"wrong"]), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(r.cmd(&[b"AUTH", b"secret"]), b"+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"a"]), b"$-1\r\n");
}

#[test]
fn large_values_round_trip() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let big = vec![b'z'; 5 * 1024 * 1024];
    let _: () = redis::cmd("SET").arg("big").arg(&big).query(&mut c).unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut c).unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big);
}

/// Before AUTH requests are parsed one at a time; the ones pipelined behind AUTH (replicas
/// and sentinels send AUTH + REPLCONF/SUBSCRIBE… in one packet) must run without the client
/// sending anything more.
#[test]
fn requests_pipelined_behind_auth_run_at_once() {
    let srv = Server::start(&["--requirepass", "pw"]);
    let mut raw = srv.raw();
    raw.send(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\nECHO inline\r\n");
    assert_eq!(raw.read_reply().as_deref(), Some(&b"+OK\r\n"[..]));
    assert_eq!(raw.read_reply().as_deref(), Some(&b"+PONG\r\n"[..]));
    assert_eq!(raw.read_reply().as_deref(), Some(&b"$6\r\ninline\r\n"[..]));
    // Unauthenticated clients get one reply per pipelined request too.
    let mut raw = srv.raw();
    raw.send(b"PING\r\nPING\r\n");
    for _ in 0..2 {
        assert_eq!(raw.read_reply().as_deref(), Some(&b"-NOAUTH Authentication required.\r\n"[..]));
    }
}
