#!/usr/bin/env python3
"""Replication, side by side: ferrokv and Debian's redis-server on the same machine.

    python3 bench/replication.py [--rounds 3] [--keys 1000000]

Prints, for each system (medians of the rounds) and as ratios ferrokv/redis:
  - full sync time of --keys keys to a fresh replica, diskless and disk-based,
    from REPLICAOF to the replica holding every key with its link up;
  - master SET throughput (redis-benchmark -P 16 -c 50) with 0, 1 and 2 replicas;
  - replication lag under that flood: bytes (master_repl_offset - slave_repl_offset,
    sampled every 20 ms) and milliseconds (a marker written on the master, polled on the
    replica), medians of the samples.
"""

import argparse
import statistics
import subprocess
import threading
import time

from common import Server, build_ferrokv, median, redis_tool


def wait(cond, timeout=300, step=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    raise SystemExit("timed out")


def synced(replica, keys):
    info = replica.info("replication")
    if info.get("master_link_status") != "up":
        return False
    return int(replica.cli("DBSIZE").strip() or 0) >= keys


def full_sync_time(kind, keys, diskless):
    extra = ["--repl-diskless-sync", "yes" if diskless else "no", "--repl-diskless-sync-delay", "0"]
    master = Server(kind, extra)
    replica = Server(kind)
    try:
        master.cli("DEBUG", "POPULATE", str(keys))
        start = time.time()
        replica.cli("REPLICAOF", "127.0.0.1", str(master.port))
        wait(lambda: synced(replica, keys))
        return time.time() - start
    finally:
        replica.stop()
        master.stop()


def throughput_and_lag(kind, nreplicas, requests):
    master = Server(kind, ["--repl-diskless-sync-delay", "0"])
    replicas = [Server(kind, ["--replicaof", "127.0.0.1", str(master.port)]) for _ in range(nreplicas)]
    try:
        for r in replicas:
            wait(lambda r=r: r.info("replication").get("master_link_status") == "up")
        lag_bytes, lag_ms = [], []
        done = threading.Event()

        def sample():
            while not done.is_set():
                if replicas:
                    m = int(master.info("replication")["master_repl_offset"])
                    s = int(replicas[0].info("replication").get("slave_repl_offset", m))
                    lag_bytes.append(max(0, m - s))
                    marker = str(time.time())
                    t0 = time.time()
                    master.cli("SET", "lag-marker", marker)
                    deadline = t0 + 5
                    while time.time() < deadline and replicas[0].cli("GET", "lag-marker").strip() != marker:
                        time.sleep(0.001)
                    lag_ms.append((time.time() - t0) * 1000)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out = subprocess.run(
            [redis_tool("redis-benchmark"), "-p", str(master.port), "-c", "50", "-n", str(requests), "-P", "16",
             "-r", "1000000", "-t", "set", "--csv"],
            check=True, capture_output=True, text=True).stdout
        done.set()
        sampler.join()
        rps = float([line for line in out.splitlines() if line.startswith('"SET"')][0].split(",")[1].strip('"'))
        return rps, (statistics.median(lag_bytes) if lag_bytes else 0), (statistics.median(lag_ms) if lag_ms else 0)
    finally:
        for r in replicas:
            r.stop()
        master.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2_000_000)
    args = ap.parse_args()
    build_ferrokv()
    res = {}
    for r in range(args.rounds):
        kinds = ["ferrokv", "redis"] if r % 2 == 0 else ["redis", "ferrokv"]
        for kind in kinds:
            res.setdefault((kind, "sync-diskless"), []).append(full_sync_time(kind, args.keys, True))
            res.setdefault((kind, "sync-disk"), []).append(full_sync_time(kind, args.keys, False))
            for n in (0, 1, 2):
                rps, lb, lm = throughput_and_lag(kind, n, args.requests)
                res.setdefault((kind, f"set-{n}"), []).append(rps)
                if n > 0:
                    res.setdefault((kind, f"lagb-{n}"), []).append(lb)
                    res.setdefault((kind, f"lagms-{n}"), []).append(lm)
    f = lambda k, m: median(res.get((k, m), []))
    print(f"\nmedian of {args.rounds} rounds; {args.keys} keys; SET -P 16 -c 50, {args.requests} requests")
    print(f"{'metric':34} {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    rows = [
        ("full sync, diskless (s)", "sync-diskless", "sync-diskless"),
        ("full sync, disk-based (s)", "sync-disk", "sync-disk"),
        ("SET ops/s, 0 replicas", "set-0", "set-0"),
        ("SET ops/s, 1 replica", "set-1", "set-1"),
        ("SET ops/s, 2 replicas", "set-2", "set-2"),
        ("lag bytes, 1 replica", "lagb-1", "lagb-1"),
        ("lag ms, 1 replica", "lagms-1", "lagms-1"),
        ("lag bytes, 2 replicas", "lagb-2", "lagb-2"),
        ("lag ms, 2 replicas", "lagms-2", "lagms-2"),
    ]
    for name, a, b in rows:
        x, y = f("ferrokv", a), f("redis", b)
        ratio = x / y if y else float("nan")
        print(f"{name:34} {x:>12.2f} {y:>12.2f} {ratio:>7.2f}")
    print(f"{'ferrokv SET with 2 replicas / without':34} {f('ferrokv', 'set-2') / f('ferrokv', 'set-0'):>12.2f}")


if __name__ == "__main__":
    main()
