"""Processes and network for bench/failover.py: a replication group (1 master, 2 replicas)
watched by 3 sentinels, ferrokv's or Redis's, placed on loopback or, for the scenarios that
cut the master's network, with the master alone in a network namespace joined to the root
namespace by a veth pair (the replicas, sentinels and clients stay in the root namespace).
Every process is started here and stopped by its PID."""

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time

from common import FERROKV, free_port, redis_tool

try:
    import redis
except ImportError:
    raise SystemExit("redis-py is required: pip install redis")

NAME = "mymaster"
LOCALHOST = "127.0.0.1"
CLONE_NEWNET = 0x40000000


def wait(cond, timeout, what=None, interval=0.05):
    """Polls cond() until true; returns whether it became true (or exits naming `what`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except (redis.exceptions.RedisError, OSError):
            pass
        time.sleep(interval)
    if what:
        raise SystemExit(f"timed out waiting for {what}")
    return False


def ip(*args):
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


class Netns:
    """The master's namespace, 10.78.<n>.2 inside, 10.78.<n>.1 on the root side. Cutting sets
    the inner end of the veth down: packets are dropped silently, connections stall (no
    resets), as when a machine's network fails."""

    def __init__(self):
        if os.geteuid() != 0:
            raise SystemExit("the partition and linkcut scenarios need root (network namespaces)")
        if shutil.which("ip") is None:
            raise SystemExit("the partition and linkcut scenarios need iproute2's `ip`")
        pid = os.getpid()
        self.name = f"fkvbench-{pid}"
        self.inner_if = f"fkbn{pid}"
        self.root_if = f"fkbr{pid}"
        # Not the tests' 10.77.x: a test may run at the same time.
        subnet = 20 + pid % 200
        self.root_addr = f"10.78.{subnet}.1"
        self.inner_addr = f"10.78.{subnet}.2"
        try:
            ip("netns", "add", self.name)
            ip("link", "add", self.root_if, "type", "veth", "peer", "name", self.inner_if)
            ip("link", "set", self.inner_if, "netns", self.name)
            ip("addr", "add", f"{self.root_addr}/24", "dev", self.root_if)
            ip("link", "set", self.root_if, "up")
            self.inside("addr", "add", f"{self.inner_addr}/24", "dev", self.inner_if)
            self.inside("link", "set", self.inner_if, "up")
            self.inside("link", "set", "lo", "up")
        except RuntimeError as e:
            self.delete()
            raise SystemExit(f"cannot set up a network namespace: {e}")

    def inside(self, *args):
        ip("netns", "exec", self.name, "ip", *args)

    def prefix(self):
        # `ip netns exec` execs the command (no fork): the PID we get is the server's.
        return ["ip", "netns", "exec", self.name]

    def cut(self):
        self.inside("link", "set", self.inner_if, "down")

    def heal(self):
        self.inside("link", "set", self.inner_if, "up")

    def enter(self):
        """Moves the calling thread (only it) into the namespace: sockets it opens then live
        there, as a client on the master's side of a partition."""
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def delete(self):
        # Deleting the namespace destroys the inner veth end, and with it the pair.
        for args in (("netns", "del", self.name), ("link", "del", self.root_if)):
            try:
                ip(*args)
            except RuntimeError:
                pass


class Placement:
    """Where a node listens and how it is started: loopback, or an address of the netns
    topology (then also on loopback, for local queries)."""

    def __init__(self, host=LOCALHOST, prefix=()):
        self.host = host
        self.prefix = list(prefix)

    def listen_conf(self):
        if self.host == LOCALHOST:
            return f"bind {LOCALHOST}\n"
        return f"bind {self.host} {LOCALHOST}\nprotected-mode no\n"


class Node:
    """A server or sentinel we started; restartable on the same port, with its log kept in
    its directory until stop()."""

    def __init__(self, cmd, conf_text, host, prefix, kind):
        self.dir = tempfile.mkdtemp(prefix=f"bench-failover-{kind}-")
        self.kind = kind
        self.host = host
        self.port = free_port()
        self.log = os.path.join(self.dir, f"{kind}.log")
        self.conf = os.path.join(self.dir, f"{kind}.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\ndir {self.dir}\nlogfile {self.log}\n" + conf_text)
        self.cmd = list(prefix) + cmd + [self.conf]
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        wait(lambda: self.client(0.5).ping(), 15, f"{self.cmd} on {self.port}")

    def client(self, timeout=1.0):
        # Loopback within the node's own namespace is not reachable from the root one: use
        # the node's address (the link is up whenever this is called for the master).
        return redis.Redis(host=self.host, port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def restart_empty(self):
        """kill -9, then the same config without persistence: an empty dataset, a new
        replication id, on the same port."""
        self.kill()
        for name in os.listdir(self.dir):
            if name not in (os.path.basename(self.conf), os.path.basename(self.log)):
                path = os.path.join(self.dir, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        self.start()

    def stop(self, keep_under=None):
        self.kill()
        if keep_under:
            # Logs and configs only: datasets would fill the disk over many rounds.
            dest = os.path.join(keep_under, f"{self.kind}-{self.port}")
            os.makedirs(dest, exist_ok=True)
            for path in (self.log, self.conf):
                if os.path.exists(path):
                    shutil.copy(path, dest)
        shutil.rmtree(self.dir, ignore_errors=True)


def info(node, section="replication", timeout=1.0):
    return node.client(timeout).info(section)


class Stack:
    """1 master + 2 replicas + 3 sentinels (quorum 2) of one family, started and in sync."""

    def __init__(self, family, sync_replicas, master_at, others_at, args):
        self.family = family
        self.sync = sync_replicas
        server = [FERROKV, "server"] if family == "ferrokv" else [redis_tool("redis-server")]
        sentinel = [FERROKV, "sentinel"] if family == "ferrokv" else [redis_tool("redis-sentinel")]
        # Same settings for both: no persistence, full syncs start at once.
        base = 'save ""\nappendonly no\nrepl-diskless-sync yes\nrepl-diskless-sync-delay 0\n'
        if sync_replicas:
            base += f"sync-replicas {sync_replicas}\n"
        self.servers = []
        self.sentinels = []
        try:
            self.master = Node(server, master_at.listen_conf() + base, master_at.host, master_at.prefix, "server")
            self.servers.append(self.master)
            for _ in range(2):
                conf = others_at.listen_conf() + base + f"replicaof {master_at.host} {self.master.port}\n"
                self.servers.append(Node(server, conf, others_at.host, others_at.prefix, "server"))
            self.replicas = self.servers[1:]
            wait(lambda: all(info(r).get("master_link_status") == "up" for r in self.replicas), 20,
                 "replicas in sync")
            if sync_replicas:
                wait(lambda: int(info(self.master).get("sync_replicas_acking", 0)) >= 2, 20,
                     "sync-replicas acknowledgements")
            for _ in range(3):
                conf = (others_at.listen_conf()
                        + f"sentinel monitor {NAME} {master_at.host} {self.master.port} 2\n"
                        f"sentinel down-after-milliseconds {NAME} {args.down_after}\n"
                        f"sentinel failover-timeout {NAME} {args.failover_timeout}\n")
                self.sentinels.append(Node(sentinel, conf, LOCALHOST, others_at.prefix, "sentinel"))
            self.others_host = others_at.host

            def discovered():
                for s in self.sentinels:
                    m = s.client().sentinel_master(NAME)
                    if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                        return False
                return True
            wait(discovered, 30, "sentinel discovery")
        except BaseException:
            self.stop()
            raise

    def sentinel_addrs(self, host=LOCALHOST):
        return [(host, s.port) for s in self.sentinels]

    def node_at(self, host, port):
        for n in self.servers:
            if n.port == int(port) and n.host == host:
                return n
        return None

    def agreed_master(self):
        """The node every sentinel names as master, or None while they disagree."""
        addrs = {tuple(s.client(0.5).sentinel_get_master_addr_by_name(NAME) or ()) for s in self.sentinels}
        if len(addrs) != 1:
            return None
        (addr,) = addrs
        return self.node_at(*addr) if addr else None

    def converged(self):
        """The sentinels agree on a live master that says so, and every other live server
        replicates from it with its link up."""
        m = self.agreed_master()
        if m is None or not m.alive() or info(m, timeout=0.5).get("role") != "master":
            return None
        for n in self.servers:
            if n is m or not n.alive():
                continue
            i = info(n, timeout=0.5)
            if (i.get("role") != "slave" or i.get("master_host") != m.host or int(i.get("master_port", 0)) != m.port
                    or i.get("master_link_status") != "up"):
                return None
        return m

    def wait_caught_up(self, master, timeout):
        """Until every live replica applied the master's whole stream (bounded)."""
        def caught_up():
            target = int(info(master)["master_repl_offset"])
            return all(int(info(n).get("slave_repl_offset", -1)) >= target
                       for n in self.servers if n is not master and n.alive())
        return wait(caught_up, timeout)

    def stop(self, keep_under=None):
        for n in self.sentinels + self.servers:
            n.stop(keep_under)
