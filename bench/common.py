"""Shared helpers for the side-by-side benchmarks: start ferrokv and Debian's redis-server
on free loopback ports with the same settings, talk to them, stop them by PID."""

import functools
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# cargo puts the binary under $CARGO_TARGET_DIR when set, as build_ferrokv() then does too.
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
FERROKV = os.environ.get("FERROKV_BIN", os.path.join(TARGET_DIR, "release", "ferrokv"))


@functools.lru_cache(maxsize=None)
def redis_tool(program):
    """Debian's Redis program, never one from PATH (where a ferrokv linked as redis-server
    may come first, and a side-by-side run would compare ferrokv with itself): the path in
    FERROKV_<PROGRAM> (FERROKV_REDIS_SERVER, FERROKV_REDIS_CLI, FERROKV_REDIS_BENCHMARK,
    FERROKV_REDIS_SENTINEL), default /usr/bin/<program>. A ferrokv binary there is refused:
    started as redis-server with --version, any ferrokv names itself; Redis's programs never do."""
    var = "FERROKV_" + program.upper().replace("-", "_")
    path = os.environ.get(var) or os.path.join("/usr/bin", program)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{program} not found at {path} (set {var}, or apt-get install redis-server redis-tools redis-sentinel)")
    out = subprocess.run(["redis-server", "--version"], executable=path, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    said = (out.stdout + out.stderr).strip()
    if "ferrokv" in said.lower():
        raise SystemExit(f"{path} is ferrokv, not Redis ({said}): set {var} to Debian's {program}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_ferrokv():
    if "FERROKV_BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "-p", "ferrokv"], cwd=ROOT, check=True)


class Server:
    """A server process ("ferrokv" or "redis") with its own port and directory."""

    def __init__(self, kind, extra=(), timeout=10, cpus=None):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        self.port = free_port()
        base = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--enable-debug-command", "yes", "--protected-mode", "no"]
        if kind == "ferrokv":
            cmd = [FERROKV, "server"] + base
        else:
            cmd = [redis_tool("redis-server")] + base
        cmd += list(extra)
        if cpus is not None:
            # Pinned (taskset -c): benchmarks that pin the client elsewhere measure the
            # servers without the scheduler moving client and server onto one core.
            cmd = ["taskset", "-c", cpus] + cmd
        started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = started + timeout
        while time.time() < deadline:
            try:
                if self.cli("PING").strip() == "PONG":
                    # Until PONG (not -LOADING): includes loading the dataset.
                    self.startup_seconds = time.time() - started
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{kind} did not start")

    def cli(self, *args):
        return subprocess.run([redis_tool("redis-cli"), "-p", str(self.port)] + list(args),
                              check=True, capture_output=True, text=True).stdout

    def info(self, section="memory"):
        out = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def resp(*args):
    """One command in RESP (multibulk) form: bytes as they are, anything else as its text."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_line(sock, buf):
    """One RESP line from `sock` (buf is a one-element list holding what was read past it),
    bounded in time by the socket's timeout."""
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line


def median(xs):
    return statistics.median(xs) if xs else float("nan")
