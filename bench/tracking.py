#!/usr/bin/env python3
"""SET throughput under client-side caching, ferrokv vs redis-server, interleaved rounds.

Modes (redis-benchmark cannot enable tracking itself, so the tracking clients are extra
connections this script holds):
  none      50 idle extra connections, no tracking: the cost of the feature when unused.
  tracking  50 RESP3 connections with CLIENT TRACKING on (default mode), each having read
            every key redis-benchmark will write (`key:%012d`, -r keys), so the first SET
            of each key sends 50 invalidation pushes; a thread drains the pushes as a real
            cache would read them.

Then `redis-benchmark -t set -c 50 -P <p> -n <requests> -r <keys>`. Reports the median
ops/s per server and mode, the ratio ferrokv/redis (higher is better) and server CPU µs
per SET. The machine is shared: compare the ratio, not the absolute figures, and rerun
when other work is compiling (say so with the figures).

    python3 bench/tracking.py [--rounds 3] [--requests 200000] [--keys 10000] [--pipeline 16]
"""

import argparse
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_ferrokv, median, resp, Server  # noqa: E402
from throughput import run_benchmark  # noqa: E402

TRACKERS = 50


def read_until(sock, marker, count, timeout=60):
    """Reads until `marker` was seen `count` times (bounded in time)."""
    seen, tail = 0, b""
    deadline = time.time() + timeout
    while seen < count:
        if time.time() > deadline:
            raise SystemExit("server did not answer in time")
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed a tracking connection")
        data = tail + chunk
        seen += data.count(marker)
        # Keep less than a marker, so a marker split between reads is counted once.
        tail = data[-(len(marker) - 1):]


class Trackers:
    """TRACKERS connections; with `track`, each turns tracking on and reads every key."""

    def __init__(self, port, track, keys):
        self.socks = []
        self.stop = False
        for _ in range(TRACKERS):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(s)
        if track:
            names = [f"key:{i:012d}" for i in range(keys)]
            for s in self.socks:
                s.sendall(resp("HELLO", "3") + resp("CLIENT", "TRACKING", "on"))
                read_until(s, b"+OK\r\n", 1)
                # MGET in chunks: one reply per chunk, every key tracked.
                chunks = [names[i:i + 500] for i in range(0, len(names), 500)]
                s.sendall(b"".join(resp("MGET", *c) for c in chunks))
                read_until(s, b"*500\r\n", len(chunks))
        self.drained = 0
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self):
        while not self.stop:
            ready, _, _ = select.select(self.socks, [], [], 0.1)
            for s in ready:
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    return
                self.drained += len(data)

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()


def one_round(kind, mode, args):
    srv = Server(kind)
    try:
        trackers = Trackers(srv.port, mode == "tracking", args.keys)
        info = srv.info("stats")
        tracked = int(info.get("tracking_total_items", "0"))
        rows = run_benchmark(srv, args.requests, args.pipeline, 50, args.keys, ["-t", "set"])
        ops, cpu_us, _client = rows["SET"]
        trackers.close()
        return ops, cpu_us, tracked
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--modes", default="none,tracking")
    args = ap.parse_args()
    if args.keys % 500:
        raise SystemExit("--keys must be a multiple of 500 (the trackers read them 500 per MGET)")
    build_ferrokv()
    modes = args.modes.split(",")
    results = {(k, m): [] for k in ("ferrokv", "redis") for m in modes}
    for r in range(args.rounds):
        for mode in modes:
            # Alternate who goes first, so load bursts hit both sides of a ratio.
            order = ("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")
            for kind in order:
                results[(kind, mode)].append(one_round(kind, mode, args))
                ops, cpu, tracked = results[(kind, mode)][-1]
                print(f"round {r + 1} {mode:9} {kind:8} {ops:>11.0f} ops/s  {cpu:6.2f} µs CPU/SET  "
                      f"tracked items {tracked}", flush=True)
    print()
    print(f"{'mode':9} {'ferrokv ops/s':>14} {'redis ops/s':>12} {'ratio':>6} {'fk µs/SET':>10} {'redis µs/SET':>13}")
    for mode in modes:
        fk = results[("ferrokv", mode)]
        rd = results[("redis", mode)]
        fk_ops, rd_ops = median([x[0] for x in fk]), median([x[0] for x in rd])
        fk_cpu, rd_cpu = median([x[1] for x in fk]), median([x[1] for x in rd])
        print(f"{mode:9} {fk_ops:>14.0f} {rd_ops:>12.0f} {fk_ops / rd_ops:>6.2f} {fk_cpu:>10.2f} {rd_cpu:>13.2f}")


if __name__ == "__main__":
    main()
