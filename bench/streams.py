#!/usr/bin/env python3
"""Streams, side by side with Debian's redis-server: throughput of XADD and XRANGE with
redis-benchmark (alternating A/B rounds, medians, ratio ferrokv/redis, server CPU per
request) and the memory of a long stream.

    python3 bench/streams.py [--rounds 5] [--requests 200000] [--entries 1000000]
                             [--tests xadd,xrange_10,xrange_100,memory]

  xadd        XADD bench:stream * field __rand_int__ (-c 50, -P 1 and -P 16; the stream
              grows through the run, as a producer's does; FLUSHALL before each run)
  xrange_10   XRANGE bench:stream <random ID> + COUNT 10 on a stream of 1000 entries with
  xrange_100  3 fields each (IDs 1-0..1000-0), COUNT 100 likewise
  xreadgroup  XREADGROUP GROUP g c<n> COUNT 1 STREAMS bench:stream > and the XACK of the entry
              read, per operation, by bench/loadgen (redis-benchmark cannot acknowledge the
              IDs it reads) on a stream seeded with one entry per operation
  memory      --entries XADDs with 3 fields (f1 .. f3, 8-byte values) and generated IDs,
              sent with redis-cli --pipe: used_memory and RSS per entry"""

import argparse
import os
import subprocess

from common import ROOT, TARGET_DIR, build_ferrokv, median, redis_tool, resp, Server
from throughput import cpu_seconds, run_benchmark

LOADGEN = os.path.join(TARGET_DIR, "release", "ferrokv-loadgen")

SEEDED = 1000


def pipe(srv, data):
    subprocess.run([redis_tool("redis-cli"), "-p", str(srv.port), "--pipe"], input=data, check=True,
                   capture_output=True)


def seed_range(srv):
    pipe(srv, b"".join(resp("XADD", "bench:stream", f"{i}-0", "f1", f"value{i:03}", "f2", "x" * 10, "f3", i)
                       for i in range(1, SEEDED + 1)))


# test -> (seed, command, -r range)
TESTS = {
    "xadd": (None, ["XADD", "bench:stream", "*", "field", "__rand_int__"], 100000),
    # __rand_int__ is a zero-padded number: a valid ID (ms part) for both servers.
    "xrange_10": (seed_range, ["XRANGE", "bench:stream", "__rand_int__", "+", "COUNT", "10"], SEEDED - 100),
    "xrange_100": (seed_range, ["XRANGE", "bench:stream", "__rand_int__", "+", "COUNT", "100"], SEEDED - 100),
}


def throughput(fk, rs, tests, rounds, requests, clients):
    results = {}
    for p in (1, 16):
        n = requests * (8 if p > 1 else 1)
        for r in range(rounds):
            order = [("ferrokv", fk), ("redis", rs)] if r % 2 == 0 else [("redis", rs), ("ferrokv", fk)]
            for name, srv in order:
                for t in tests:
                    seed, argv, rand = TESTS[t]
                    srv.cli("FLUSHALL")
                    if seed:
                        seed(srv)
                    got = run_benchmark(srv, n, p, clients, rand, argv)
                    results.setdefault((t, p, name), []).append(next(iter(got.values())))
    print(f"\nmedian of {rounds} rounds, -c {clients}, ops/s")
    print(f"{'test':12} {'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7} {'cpu/req ratio':>14} {'client cpu %':>13}")
    for t in tests:
        for p in (1, 16):
            def med(name, i):
                return median([m[i] for m in results[(t, p, name)]])
            a, b = med("ferrokv", 0), med("redis", 0)
            client = f"{med('ferrokv', 2):.0f}/{med('redis', 2):.0f}"
            print(f"{t:12} {p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f} {med('ferrokv', 1) / med('redis', 1):>14.2f} {client:>13}")


def seed_group(srv, entries):
    srv.cli("FLUSHALL")
    pipe(srv, b"".join(resp("XADD", "bench:stream", "*", "f1", f"value{i:08}", "f2", "x" * 10) for i in range(entries)))
    srv.cli("XGROUP", "CREATE", "bench:stream", "g", "0")


def xreadgroup_ack(fk, rs, rounds, requests, clients):
    """XREADGROUP + XACK pairs per second through bench/loadgen, alternating servers."""
    subprocess.run(["cargo", "build", "--release", "-p", "ferrokv-loadgen"], cwd=ROOT, check=True,
                   capture_output=True)
    results = {}
    for p in (1, 16):
        n = requests * (2 if p > 1 else 1)
        for r in range(rounds):
            order = [("ferrokv", fk), ("redis", rs)] if r % 2 == 0 else [("redis", rs), ("ferrokv", fk)]
            for name, srv in order:
                seed_group(srv, n)
                before = cpu_seconds(srv.proc.pid)
                out = subprocess.run([LOADGEN, "--port", str(srv.port), "--mode", "xreadgroup", "--clients",
                                      str(clients), "--pipeline", str(p), "--requests", str(n)],
                                     check=True, capture_output=True, text=True).stdout
                fields = dict(kv.split("=") for kv in out.split())
                if int(fields["errors"]):
                    raise SystemExit(f"{name}: {out}")
                pending = srv.cli("XPENDING", "bench:stream", "g").split()[0]
                if pending != "0":
                    raise SystemExit(f"{name}: {pending} entries left pending")
                cpu = (cpu_seconds(srv.proc.pid) - before) * 1e6 / n
                results.setdefault((p, name), []).append((float(fields["ops_per_sec"]), cpu))
    print(f"\nXREADGROUP + XACK, median of {rounds} rounds, -c {clients}, pairs/s")
    print(f"{'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7} {'cpu/pair ratio':>15}")
    for p in (1, 16):
        def med(name, i):
            return median([m[i] for m in results[(p, name)]])
        a, b = med("ferrokv", 0), med("redis", 0)
        print(f"{p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f} {med('ferrokv', 1) / med('redis', 1):>15.2f}")


def memory(entries):
    data = b"".join(resp("XADD", "bench:mem", "*", "f1", f"{i:08}", "f2", f"v{i % 9973:07}", "f3", "abcdefgh")
                    for i in range(entries))
    out = {}
    for kind in ("ferrokv", "redis"):
        srv = Server(kind)
        try:
            before, rss_before = int(srv.info()["used_memory"]), srv.rss()
            pipe(srv, data)
            assert int(srv.cli("XLEN", "bench:mem")) == entries
            out[kind] = (int(srv.info()["used_memory"]) - before, srv.rss() - rss_before)
        finally:
            srv.stop()
    (fu, fr), (ru, rr) = out["ferrokv"], out["redis"]
    print(f"\n{entries} entries x 3 fields     {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    print(f"{'used_memory/entry':28} {fu / entries:>12.1f} {ru / entries:>12.1f} {fu / ru:>7.2f}")
    print(f"{'RSS/entry':28} {fr / entries:>12.1f} {rr / entries:>12.1f} {fr / rr:>7.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--tests", default="xadd,xrange_10,xrange_100,xreadgroup,memory")
    args = ap.parse_args()
    tests = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
    build_ferrokv()
    timed = [t for t in tests if t in TESTS]
    if timed or "xreadgroup" in tests:
        fk, rs = Server("ferrokv"), Server("redis")
        try:
            if timed:
                throughput(fk, rs, timed, args.rounds, args.requests, args.clients)
            if "xreadgroup" in tests:
                xreadgroup_ack(fk, rs, args.rounds, args.requests, args.clients)
        finally:
            fk.stop()
            rs.stop()
    if "memory" in tests:
        memory(args.entries)


if __name__ == "__main__":
    main()
