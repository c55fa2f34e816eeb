#!/usr/bin/env python3
"""Failover, side by side: three ferrokv sentinels vs three Debian redis-sentinels
managing the same kind of servers (1 master + 2 replicas), kill -9 of the master, N rounds
each, alternating A/B.

    python3 bench/failover.py [--rounds 5] [--server "redis-server"] [--down-after 1000]

Per round it measures:
  switch  time from kill -9 to the first +switch-master a subscribed client receives
  write   time from kill -9 to the first successful write through redis-py's Sentinel client
  lost    writes the master acknowledged that the new master does not have

and prints medians per sentinel kind and the ratios ferrokv/redis (lower is better).
--server is the server command (default Debian's redis-server; later `target/release/ferrokv
server`). Requires redis-server, redis-sentinel and redis-py (pip install redis)."""

import argparse
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time

from common import FERROKV, build_ferrokv, free_port, median

try:
    import redis
    from redis.sentinel import Sentinel
except ImportError:
    raise SystemExit("redis-py is required: pip install redis")

NAME = "mymaster"


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


def start_server(server_cmd, replica_of=None):
    d = tempfile.mkdtemp(prefix="bench-failover-srv-")
    port = free_port()
    conf = os.path.join(d, "redis.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {d}\nrepl-diskless-sync no\n")
        if replica_of:
            f.write(f"replicaof 127.0.0.1 {replica_of}\n")
    return Proc(shlex.split(server_cmd) + [conf], port, d)


def start_sentinel(kind, master_port, down_after, failover_timeout):
    d = tempfile.mkdtemp(prefix=f"bench-failover-{kind}-")
    port = free_port()
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                f"sentinel monitor {NAME} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {NAME} {down_after}\n"
                f"sentinel failover-timeout {NAME} {failover_timeout}\n")
    cmd = [FERROKV, "sentinel", conf] if kind == "ferrokv" else ["redis-sentinel", conf]
    return Proc(cmd, port, d)


def one_round(kind, args):
    master = start_server(args.server)
    replicas = [start_server(args.server, master.port) for _ in range(2)]
    sentinels = []
    try:
        wait(lambda: all(r.client().info("replication").get("master_link_status") == "up" for r in replicas),
             15, "replicas in sync")
        sentinels = [start_sentinel(kind, master.port, args.down_after, args.failover_timeout) for _ in range(3)]

        def discovered():
            for s in sentinels:
                m = s.client().sentinel_master(NAME)
                if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                    return False
            return True
        wait(discovered, 30, "sentinel discovery")

        switched = {}
        pubsub = sentinels[0].client().pubsub()
        pubsub.subscribe("+switch-master")

        def listen():
            for msg in pubsub.listen():
                if msg["type"] == "message":
                    switched["at"] = time.monotonic()
                    return
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()

        sentinel = Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=0.2)
        client = sentinel.master_for(NAME, socket_timeout=0.2, socket_connect_timeout=0.2)
        acked = []
        state = {"killed": None, "first_write": None, "stop": False}

        def writer():
            i = 0
            while not state["stop"]:
                i += 1
                issued = time.monotonic()
                try:
                    client.set(f"w:{i}", i)
                    acked.append(i)
                    # Only a write issued after the master died proves a new master serves.
                    killed = state["killed"]
                    if killed is not None and issued > killed and state["first_write"] is None:
                        state["first_write"] = time.monotonic()
                except (redis.exceptions.RedisError, OSError):
                    time.sleep(0.01)
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        time.sleep(0.5)
        master.kill()
        state["killed"] = time.monotonic()
        wait(lambda: state["first_write"] is not None and "at" in switched, 60, "failover")
        time.sleep(0.3)
        state["stop"] = True
        w.join(5)
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
        }
    finally:
        for p in sentinels + replicas + [master]:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--server", default="redis-server", help="server command, e.g. 'target/release/ferrokv server'")
    ap.add_argument("--down-after", type=int, default=1000)
    ap.add_argument("--failover-timeout", type=int, default=6000)
    args = ap.parse_args()
    for tool in ("redis-sentinel", shlex.split(args.server)[0]):
        if not shutil.which(tool) and not os.path.exists(tool):
            raise SystemExit(f"{tool} not found")
    build_ferrokv()
    results = {"ferrokv": [], "redis": []}
    for r in range(args.rounds):
        for kind in (("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")):
            res = one_round(kind, args)
            results[kind].append(res)
            print(f"round {r + 1} {kind:8s} switch {res['switch']:.2f}s  write {res['write']:.2f}s  "
                  f"lost {res['lost']}/{res['acked']}", flush=True)
    print(f"\nmedians over {args.rounds} rounds (down-after {args.down_after} ms, server: {args.server})")
    print(f"{'metric':10s} {'ferrokv':>10s} {'redis':>10s} {'ratio':>8s}")
    for metric in ("switch", "write", "lost"):
        f = median([x[metric] for x in results["ferrokv"]])
        r = median([x[metric] for x in results["redis"]])
        ratio = f / r if r else float("nan")
        print(f"{metric:10s} {f:10.2f} {r:10.2f} {ratio:8.2f}")


if __name__ == "__main__":
    main()
