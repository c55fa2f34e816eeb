#!/usr/bin/env python3
"""Throughput, side by side: redis-benchmark against ferrokv and Debian's redis-server on
the same machine, alternating A/B runs, medians of several rounds, ratio ferrokv/redis.

    python3 bench/throughput.py [--rounds 5] [--requests 200000] [--tests set,get,incr,mset]
                                [--server-args "--appendonly yes --appendfsync always"]

Both servers run with persistence off unless --server-args says otherwise. -c 50 clients, pipeline depths 1 and 16."""

import argparse
import csv
import io
import subprocess

from common import Server, build_ferrokv, median


def bench(port, tests, requests, pipeline, clients):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests), "-P", str(pipeline),
         "-r", "100000", "-t", tests, "--csv"],
        check=True, capture_output=True, text=True).stdout
    rows = {}
    for row in csv.reader(io.StringIO(out)):
        if not row or row[0] == "test":
            continue
        name = row[0].split(" ")[0]
        rows[name] = float(row[1])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--tests", default="set,get,incr,mset")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--server-args", default="",
                    help='extra directives for both servers, e.g. "--appendonly yes --appendfsync always"')
    args = ap.parse_args()
    build_ferrokv()
    extra = args.server_args.split()
    fk, rs = Server("ferrokv", extra), Server("redis", extra)
    results = {}
    try:
        for p in [int(x) for x in args.pipelines.split(",")]:
            n = args.requests * (8 if p > 1 else 1)
            for r in range(args.rounds):
                # Alternate who goes first so drift in machine load hits both equally.
                order = [("ferrokv", fk), ("redis", rs)] if r % 2 == 0 else [("redis", rs), ("ferrokv", fk)]
                for name, srv in order:
                    for test, rps in bench(srv.port, args.tests, n, p, args.clients).items():
                        results.setdefault((test, p, name), []).append(rps)
    finally:
        fk.stop()
        rs.stop()
    print(f"\nmedian of {args.rounds} rounds, -c {args.clients}, ops/s {args.server_args}")
    print(f"{'test':8} {'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    for test in [t.upper() for t in args.tests.split(",")]:
        for p in [int(x) for x in args.pipelines.split(",")]:
            a = median(results.get((test, p, "ferrokv"), []))
            b = median(results.get((test, p, "redis"), []))
            print(f"{test:8} {p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
