#!/usr/bin/env python3
"""MIGRATE throughput, ferrokv vs redis-server, interleaved rounds.

Each round and kind: a source and a target of the same kind; DEBUG POPULATE puts
--keys string keys (`key:N`, --size bytes) in the source; one client then moves them all
with `MIGRATE host port "" 0 5000 KEYS key:i … key:i+batch-1`, one call after the other
(the first call opens the connection, the others reuse the cached one). Times the whole
move, checks the source is empty and the target holds every key, and reports keys/s and
the CPU time source and target spent per key (from /proc, user + system), which a busy
machine disturbs less than the rate. Prints the medians per kind and the ratios
ferrokv/redis of the medians (keys/s: higher is better; CPU: lower is better). The
machine is shared: compare the ratios, not the absolute figures.

    python3 bench/migrate.py [--rounds 3] [--keys 100000] [--batch 100] [--size 16]
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_ferrokv, median, read_line, resp, Server  # noqa: E402


def cpu_seconds(proc):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(kind, args):
    src, dst = Server(kind), Server(kind)
    try:
        src.cli("DEBUG", "POPULATE", str(args.keys), "key", str(args.size))
        sock = socket.create_connection(("127.0.0.1", src.port))
        sock.settimeout(60)
        buf = [b""]
        cpu_before = cpu_seconds(src.proc), cpu_seconds(dst.proc)
        started = time.perf_counter()
        for first in range(0, args.keys, args.batch):
            keys = [f"key:{i}" for i in range(first, min(first + args.batch, args.keys))]
            sock.sendall(resp("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys))
            reply = read_line(sock, buf)
            if reply != b"+OK":
                raise SystemExit(f"{kind}: MIGRATE answered {reply!r}")
        elapsed = time.perf_counter() - started
        src_cpu = (cpu_seconds(src.proc) - cpu_before[0]) * 1e6 / args.keys
        dst_cpu = (cpu_seconds(dst.proc) - cpu_before[1]) * 1e6 / args.keys
        sock.close()
        left, moved = int(src.cli("DBSIZE")), int(dst.cli("DBSIZE"))
        if left != 0 or moved != args.keys:
            raise SystemExit(f"{kind}: {left} keys left, {moved} moved")
        return args.keys / elapsed, src_cpu, dst_cpu
    finally:
        src.stop()
        dst.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--size", type=int, default=16)
    args = ap.parse_args()
    build_ferrokv()
    results = {"ferrokv": [], "redis": []}
    for r in range(args.rounds):
        # Alternate who goes first, so load bursts hit both sides of the ratio.
        order = ("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")
        for kind in order:
            results[kind].append(one_round(kind, args))
            rate, src_cpu, dst_cpu = results[kind][-1]
            print(f"round {r + 1} {kind:8} {rate:>9.0f} keys/s  CPU µs/key source {src_cpu:5.2f} target {dst_cpu:5.2f}",
                  flush=True)
    print()
    print(f"{'':14} {'ferrokv':>9} {'redis':>9} {'ratio':>6}")
    for i, name in enumerate(("keys/s", "source µs/key", "target µs/key")):
        fk = median([x[i] for x in results["ferrokv"]])
        rd = median([x[i] for x in results["redis"]])
        print(f"{name:14} {fk:>9.2f} {rd:>9.2f} {fk / rd:>6.2f}")


if __name__ == "__main__":
    main()
