#!/usr/bin/env python3
"""Throughput, side by side: redis-benchmark against ferrokv and Debian's redis-server on
the same machine, alternating A/B runs, medians of several rounds, ratio ferrokv/redis.

    python3 bench/throughput.py [--rounds 5] [--requests 200000]
                                [--tests set,get,incr,mset,lpush,lpop,lrange_100,sadd,spop,hset,zadd,zrangebyscore]
                                [--server-args "--appendonly yes --appendfsync always"]

Both servers run with persistence off unless --server-args says otherwise. -c 50 clients,
pipeline depths 1 and 16 (-P 16 runs 8x the requests so each run lasts long enough).

Built-in redis-benchmark tests run as redis-benchmark runs them (`-r 100000` random keys
or members; LPOP pops what LPUSH pushed, SPOP what SADD added, LRANGE_100 reads the list
redis-benchmark first fills with its own "LPUSH (needed to benchmark LRANGE)" run, which
is not reported). Tests redis-benchmark does not have are custom commands on a seeded key:
  zrangebyscore  ZRANGEBYSCORE bench:zset <random score> +inf LIMIT 0 10 on a sorted set
                 of 1000 members with scores 0..999 (a skiplist: past the listpack limit).
Every round starts from FLUSHALL and a fresh seed, so the dataset does not grow with rounds."""

import argparse
import csv
import io
import subprocess

from common import Server, build_ferrokv, median

ZSET_MEMBERS = 1000


def seed_zset(srv):
    args = ["ZADD", "bench:zset"]
    for i in range(ZSET_MEMBERS):
        args += [str(i), f"member:{i}"]
    srv.cli(*args)


# name -> (seed function, command line, -r range for __rand_int__)
CUSTOM = {
    "zrangebyscore": (seed_zset, ["ZRANGEBYSCORE", "bench:zset", "__rand_int__", "+inf", "LIMIT", "0", "10"],
                      ZSET_MEMBERS),
}


def run_benchmark(port, requests, pipeline, clients, rand_range, selector):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests), "-P", str(pipeline),
         "-r", str(rand_range), "--csv"] + selector,
        check=True, capture_output=True, text=True).stdout
    rows = {}
    for row in csv.reader(io.StringIO(out)):
        if not row or row[0] == "test" or "(needed" in row[0]:
            # The header, and the LPUSH that only fills the list for LRANGE_*.
            continue
        rows[row[0].split(" ")[0].upper()] = float(row[1])
    return rows


def bench(srv, tests, requests, pipeline, clients):
    srv.cli("FLUSHALL")
    builtin = [t for t in tests if t not in CUSTOM]
    rows = {}
    if builtin:
        rows.update(run_benchmark(srv.port, requests, pipeline, clients, 100000, ["-t", ",".join(builtin)]))
    for t in tests:
        if t in CUSTOM:
            seed, argv, rand_range = CUSTOM[t]
            seed(srv)
            got = run_benchmark(srv.port, requests, pipeline, clients, rand_range, argv)
            rows[t.upper()] = next(iter(got.values()))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--tests", default="set,get,incr,mset,lpush,lpop,lrange_100,sadd,spop,hset,zadd,zrangebyscore")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--server-args", default="",
                    help='extra directives for both servers, e.g. "--appendonly yes --appendfsync always"')
    args = ap.parse_args()
    tests = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
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
                    for test, rps in bench(srv, tests, n, p, args.clients).items():
                        results.setdefault((test, p, name), []).append(rps)
    finally:
        fk.stop()
        rs.stop()
    print(f"\nmedian of {args.rounds} rounds, -c {args.clients}, ops/s {args.server_args}")
    print(f"{'test':14} {'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    for test in [t.upper() for t in tests]:
        for p in [int(x) for x in args.pipelines.split(",")]:
            a = median(results.get((test, p, "ferrokv"), []))
            b = median(results.get((test, p, "redis"), []))
            print(f"{test:14} {p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
