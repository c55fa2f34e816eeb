#!/usr/bin/env python3
"""Failover, side by side: a whole ferrokv stack (ferrokv servers watched by ferrokv
sentinels) against a whole Redis stack (redis-server watched by redis-sentinel), same
settings: 1 master + 2 replicas, 3 sentinels (quorum 2), kill -9 of the master under a
write load, N rounds, stacks alternating.

    python3 bench/failover.py [--rounds 5] [--down-after 1000] [--stacks ferrokv,redis,ferrokv-zero]

Stacks:
  ferrokv       ferrokv server x3 + ferrokv sentinel x3, writes acknowledged by the master
  redis         redis-server x3 + redis-sentinel x3, same writer
  ferrokv-zero  the ferrokv stack with the zero-loss writer: every SET is followed by
                `WAIT <--wait-replicas> <--wait-timeout>` on the same connection, and a write
                counts as acknowledged only when WAIT confirms it reached that many replicas
  redis-zero    the same writer against the Redis stack (for comparison)

Per round it measures:
  switch  time from kill -9 to the first +switch-master published by any sentinel
  write   time from kill -9 to the first successful write, issued after the kill, through
          redis-py's Sentinel client
  lost    acknowledged writes the new master does not have (read back after the failover)

and prints medians per stack and the ratio of each ferrokv stack to its Redis counterpart
(lower is better). Requires redis-server, redis-sentinel and redis-py (pip install redis).
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time

from common import FERROKV, build_ferrokv, free_port, median, redis_tool

try:
    import redis
    from redis.sentinel import Sentinel
except ImportError:
    raise SystemExit("redis-py is required: pip install redis")

NAME = "mymaster"
STACKS = ("ferrokv", "redis", "ferrokv-zero", "redis-zero")


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


class Proc:
    def __init__(self, cmd, port, workdir):
        self.port = port
        self.dir = workdir
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: redis.Redis(port=port, socket_timeout=0.5).ping(), 10, f"{cmd[0]} on {port}")

    def client(self):
        return redis.Redis(port=self.port, socket_timeout=1)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def server_cmd(family):
    return [FERROKV, "server"] if family == "ferrokv" else [redis_tool("redis-server")]


def sentinel_cmd(family):
    return [FERROKV, "sentinel"] if family == "ferrokv" else [redis_tool("redis-sentinel")]


def start_server(family, replica_of=None):
    d = tempfile.mkdtemp(prefix=f"bench-failover-{family}-srv-")
    port = free_port()
    conf = os.path.join(d, "redis.conf")
    with open(conf, "w") as f:
        # Same settings for both: no persistence, full syncs without waiting for more replicas.
        f.write(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {d}\n"
                "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n")
        if replica_of:
            f.write(f"replicaof 127.0.0.1 {replica_of}\n")
    return Proc(server_cmd(family) + [conf], port, d)


def start_sentinel(family, master_port, down_after, failover_timeout):
    d = tempfile.mkdtemp(prefix=f"bench-failover-{family}-sentinel-")
    port = free_port()
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                f"sentinel monitor {NAME} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {NAME} {down_after}\n"
                f"sentinel failover-timeout {NAME} {failover_timeout}\n")
    return Proc(sentinel_cmd(family) + [conf], port, d)


def make_writer(client, zero, args):
    """One write: returns True when it counts as acknowledged."""
    if not zero:
        def write(key, value):
            client.set(key, value)
            return True
        return write

    def write(key, value):
        # SET and WAIT on one connection: WAIT waits for this connection's last write.
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value)
        pipe.execute_command("WAIT", args.wait_replicas, args.wait_timeout)
        _, confirmed = pipe.execute()
        return confirmed >= args.wait_replicas
    return write


def one_round(stack, args):
    family = stack.split("-")[0]
    zero = stack.endswith("-zero")
    master = start_server(family)
    replicas = [start_server(family, master.port) for _ in range(2)]
    sentinels = []
    try:
        wait(lambda: all(r.client().info("replication").get("master_link_status") == "up" for r in replicas),
             15, "replicas in sync")
        sentinels = [start_sentinel(family, master.port, args.down_after, args.failover_timeout) for _ in range(3)]

        def discovered():
            for s in sentinels:
                m = s.client().sentinel_master(NAME)
                if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                    return False
            return True
        wait(discovered, 30, "sentinel discovery")

        # The first +switch-master any sentinel publishes (the leader's); the others learn
        # it from hellos up to 2 s later.
        switched = {}
        pubsubs = []
        for s in sentinels:
            pubsub = s.client().pubsub()
            pubsub.subscribe("+switch-master")
            pubsubs.append(pubsub)

        def listen(pubsub):
            try:
                for msg in pubsub.listen():
                    if msg["type"] == "message":
                        switched.setdefault("at", time.monotonic())
                        return
            except (redis.exceptions.RedisError, OSError, ValueError):
                return
        for pubsub in pubsubs:
            threading.Thread(target=listen, args=(pubsub,), daemon=True).start()

        sentinel = Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=0.2)
        client = sentinel.master_for(NAME, socket_timeout=0.2, socket_connect_timeout=0.2)
        write = make_writer(client, zero, args)
        acked = []
        state = {"killed": None, "first_write": None, "stop": False, "unconfirmed": 0}

        def writer():
            i = 0
            deadline = time.monotonic() + 120
            while not state["stop"] and time.monotonic() < deadline:
                i += 1
                issued = time.monotonic()
                try:
                    if not write(f"w:{i}", i):
                        state["unconfirmed"] += 1
                        continue
                    acked.append(i)
                    # Only a write issued after the master died proves a new master serves.
                    killed = state["killed"]
                    if killed is not None and issued > killed and state["first_write"] is None:
                        state["first_write"] = time.monotonic()
                except (redis.exceptions.RedisError, OSError):
                    time.sleep(0.01)
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        time.sleep(args.load_seconds)
        master.kill()
        state["killed"] = time.monotonic()
        wait(lambda: state["first_write"] is not None and "at" in switched, 60, "failover")
        time.sleep(0.3)
        state["stop"] = True
        w.join(5)
        for pubsub in pubsubs:
            pubsub.close()
        host, port = sentinel.discover_master(NAME)
        new = redis.Redis(host=host, port=port, socket_timeout=2)
        present = set()
        keys = [f"w:{i}" for i in acked]
        for k in range(0, len(keys), 1000):
            chunk = keys[k:k + 1000]
            for key, v in zip(chunk, new.mget(chunk)):
                if v is not None:
                    present.add(key)
        lost = sum(1 for key in keys if key not in present)
        return {
            "switch": switched["at"] - state["killed"],
            "write": state["first_write"] - state["killed"],
            "lost": lost,
            "acked": len(acked),
            "unconfirmed": state["unconfirmed"],
        }
    finally:
        for p in sentinels + replicas + [master]:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stacks", default="ferrokv,redis,ferrokv-zero",
                    help=f"comma-separated, from {', '.join(STACKS)}")
    ap.add_argument("--down-after", type=int, default=1000)
    ap.add_argument("--failover-timeout", type=int, default=6000)
    ap.add_argument("--load-seconds", type=float, default=1.0, help="writes before the kill")
    ap.add_argument("--wait-replicas", type=int, default=1, help="zero-loss stacks: WAIT numreplicas")
    ap.add_argument("--wait-timeout", type=int, default=1000, help="zero-loss stacks: WAIT timeout (ms)")
    args = ap.parse_args()
    stacks = [s for s in args.stacks.split(",") if s]
    for s in stacks:
        if s not in STACKS:
            raise SystemExit(f"unknown stack {s}: choose from {', '.join(STACKS)}")
    if any(s.startswith("redis") for s in stacks):
        for tool in ("redis-server", "redis-sentinel"):
            redis_tool(tool)  # exits with a message if missing, or if it is ferrokv
    build_ferrokv()
    results = {s: [] for s in stacks}
    for r in range(args.rounds):
        order = stacks if r % 2 == 0 else list(reversed(stacks))
        for stack in order:
            res = one_round(stack, args)
            results[stack].append(res)
            extra = f"  unconfirmed {res['unconfirmed']}" if stack.endswith("-zero") else ""
            print(f"round {r + 1} {stack:13s} switch {res['switch']:.2f}s  write {res['write']:.2f}s  "
                  f"lost {res['lost']}/{res['acked']}{extra}", flush=True)
    print(f"\nmedians over {args.rounds} rounds (down-after {args.down_after} ms)")
    print(f"{'stack':13s} {'switch s':>9s} {'write s':>9s} {'lost':>6s} {'lost max':>9s} {'acked':>7s}")
    for s in stacks:
        xs = results[s]
        print(f"{s:13s} {median([x['switch'] for x in xs]):9.2f} {median([x['write'] for x in xs]):9.2f} "
              f"{median([x['lost'] for x in xs]):6.0f} {max(x['lost'] for x in xs):9d} "
              f"{median([x['acked'] for x in xs]):7.0f}")
    for f, r in (("ferrokv", "redis"), ("ferrokv-zero", "redis-zero")):
        if f in results and r in results:
            for metric in ("switch", "write"):
                a = median([x[metric] for x in results[f]])
                b = median([x[metric] for x in results[r]])
                print(f"ratio {f}/{r} {metric}: {a / b if b else float('nan'):.2f}")


if __name__ == "__main__":
    main()
