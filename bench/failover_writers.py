"""Writers for bench/failover.py: threads writing through redis-py's Sentinel client, each
recording every write answered OK, and the count of those a group lost.

Each thread writes unique keys `w:<thread>:<seq>` = `<seq>` in order. Any error (a
connection error or timeout, -READONLY from a demoted or fenced master, -UNACKED, -NOREPLICAS,
no master known to the sentinels) leaves that write's outcome unknown: it is not counted, the
thread drops its connections so the next write asks the sentinels for the master again, and
goes on with the next key. Only an OK counts as acknowledged."""

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from failover_stack import NAME

# Acknowledged keys created before the fault and read back at the end.
PRELOAD_PREFIX = "p:"


def error_kind(e):
    text = str(e)
    if "previous master is now a slave" in text:
        return "readonly"  # redis-py's Sentinel pool turns -READONLY into this ConnectionError
    for kind in ("UNACKED", "READONLY", "NOREPLICAS"):
        if text.startswith(kind) or kind.lower() in text.lower():
            return kind.lower()
    if isinstance(e, redis.exceptions.TimeoutError):
        return "timeout"
    if isinstance(e, MasterNotFoundError):
        return "no-master"
    if isinstance(e, (redis.exceptions.ConnectionError, OSError)):
        return "connection"
    return "other"


class WriterThread(threading.Thread):
    """Writes until stopped or for at most `limit` seconds. `timeout` is the client's socket
    timeout: short ones notice a dead master fast; a long one (like redis-py's default of
    none) stays on a stalled connection and gets the late OKs of a paused or partitioned
    master, then keeps using that connection until an error."""

    def __init__(self, tid, sentinels, timeout, zero, args, netns=None):
        super().__init__(daemon=True)
        self.tid = tid
        self.sentinels = sentinels
        self.timeout = timeout
        self.zero = zero
        self.args = args
        self.netns = netns
        self.acked = []  # (seq, issued, answered, (host, port)), monotonic seconds
        self.errors = {}
        self.stopping = threading.Event()
        self.limit = args.writer_limit

    def key(self, seq):
        return f"w:{self.tid}:{seq}"

    def run(self):
        if self.netns is not None:
            self.netns.enter()
        no_retry = Retry(NoBackoff(), 0)
        sentinel = Sentinel(self.sentinels, socket_timeout=0.5, socket_connect_timeout=0.5,
                            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5,
                                             "retry": no_retry})
        client = sentinel.master_for(NAME, socket_timeout=self.timeout,
                                     socket_connect_timeout=min(self.timeout, 1.0), retry=no_retry)
        deadline = time.monotonic() + self.limit
        seq = 0
        while not self.stopping.is_set() and time.monotonic() < deadline:
            seq += 1
            issued = time.monotonic()
            try:
                if self.write(client, self.key(seq), seq):
                    # The address the pool last got from the sentinels: the node that answered.
                    self.acked.append((seq, issued, time.monotonic(), client.connection_pool.master_address))
                else:
                    self.errors["wait-short"] = self.errors.get("wait-short", 0) + 1
            except Exception as e:  # noqa: BLE001 -- any failure leaves the outcome unknown; keep writing
                kind = error_kind(e)
                self.errors[kind] = self.errors.get(kind, 0) + 1
                client.connection_pool.disconnect()
                time.sleep(0.01)

    def write(self, client, key, value):
        if not self.zero:
            return client.set(key, value) is True
        # SET and WAIT on one connection: WAIT waits for this connection's last write.
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value)
        pipe.execute_command("WAIT", self.args.wait_replicas, self.args.wait_timeout)
        _, confirmed = pipe.execute()
        return confirmed >= self.args.wait_replicas


class Writers:
    def __init__(self, stack, zero, args, netns=None):
        self.threads = []
        outside = stack.sentinel_addrs()
        for i, t in enumerate(args.writer_timeouts):
            self.threads.append(WriterThread(f"o{i}", outside, t, zero, args))
        if netns is not None:
            inside = stack.sentinel_addrs(stack.others_host)
            for i in range(args.master_side_writers):
                self.threads.append(WriterThread(f"m{i}", inside, args.writer_timeouts[-1], zero, args, netns))
        for t in self.threads:
            t.start()

    def acked_count(self):
        return sum(len(t.acked) for t in self.threads)

    def stop(self, timeout):
        """Stops the threads; returns a snapshot of each one's acknowledged writes (a thread
        still blocked after `timeout` has its pending write left unknown)."""
        for t in self.threads:
            t.stopping.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [(t, list(t.acked)) for t in self.threads], sum(t.is_alive() for t in self.threads)

    def errors(self):
        out = {}
        for t in self.threads:
            for k, v in t.errors.items():
                out[k] = out.get(k, 0) + v
        return out


def preload(master, count):
    """`count` keys written on the master before the fault, counted when answered OK."""
    client = master.client(10)
    acked = 0
    for start in range(0, count, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(count, start + 1000)):
            pipe.set(f"{PRELOAD_PREFIX}{i}", i)
        acked += sum(1 for r in pipe.execute(raise_on_error=False) if r is True)
    if acked != count:
        raise SystemExit(f"preload: {acked} of {count} writes answered OK on a healthy master")
    return acked


def values(node, keys):
    client = node.client(10)
    out = []
    for k in range(0, len(keys), 1000):
        out.extend(client.mget(keys[k:k + 1000]))
    return out


def count_lost(node, snapshot, preloaded, fault_at):
    """On `node`: acknowledged writes missing or holding another value (an older one, were
    a key written twice), preload keys missing, and the time from the fault to the first
    acknowledged write issued after it that the node still has (a write the old master
    acknowledged and the group then dropped does not show the group serving again)."""
    lost = 0
    by_node = {}
    first = None
    for t, acked in snapshot:
        vals = values(node, [t.key(seq) for seq, _, _, _ in acked])
        for (seq, issued, answered, addr), v in zip(acked, vals):
            if v != str(seq):
                lost += 1
                where = f"{t.tid}@{addr[0]}:{addr[1]}" if addr else t.tid
                by_node[where] = by_node.get(where, 0) + 1
            elif issued > fault_at and (first is None or answered < first):
                first = answered
    pvals = values(node, [f"{PRELOAD_PREFIX}{i}" for i in range(preloaded)])
    preload_lost = sum(1 for i, v in enumerate(pvals) if v != str(i))
    return lost, preload_lost, (first - fault_at) if first is not None else None, by_node
