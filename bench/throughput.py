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
  evalsha        EVALSHA of `return redis.call('INCR', KEYS[1])` (random key)
  evalsha10      EVALSHA of a script running ten INCRs on its key
  fcall          FCALL of a library function doing the one INCR
  evalnew        EVAL "return '<random number>'" 0: (nearly) every call a new script, so
                 the cache grows (Redis 7.0 never evicts EVAL scripts); the cache is flushed
                 before each run, -r 100,000,000
                 (these four only with --tests, e.g. --tests evalsha,evalsha10,fcall,evalnew)
  pfadd          PFADD bench:hll el:<random> (one HyperLogLog, dense after a few
                 thousand elements; only with --tests)
  pfcount        PFCOUNT of one of three 10,000-element HyperLogLogs (cached cardinality)
  pfcount3       PFCOUNT of the union of the three (computed every time)
  bitfield       BITFIELD bf:<random> INCRBY u8 #3 1 GET i5 100 (random key; a
                 zero-padded __rand_int__ is not a valid offset; only with --tests)
  geoadd         GEOADD bench:geo 13.<random> 38.<random> m:<random> (one geo set, points
                 in a 1-degree square; only with --tests)
  geosearch      GEOSEARCH bench:geo FROMMEMBER m:<random> BYRADIUS 3 km over a geo set of
                 1,000,000 members spread evenly over 10x10 degrees around (15, 40), about
                 one per km2, so each search returns ~25 members (seeded with redis-cli
                 --pipe; only with --tests)
Every round starts from FLUSHALL and a fresh seed, so the dataset does not grow with rounds.

Besides ops/s the table shows the server's CPU time per request (utime + stime from
/proc/<pid>/stat, ferrokv/redis) and redis-benchmark's own CPU use (% of one core, ferrokv
run / redis run). When the client is near 100% it is the bottleneck (typical at -P 1 on a
small machine): ops/s then measure redis-benchmark, and the CPU-per-request column is the
fairer comparison of the servers."""

import argparse
import csv
import hashlib
import io
import os
import resource
import subprocess
import time

from common import Server, build_ferrokv, median, redis_tool

ZSET_MEMBERS = 1000


def seed_zset(srv):
    args = ["ZADD", "bench:zset"]
    for i in range(ZSET_MEMBERS):
        args += [str(i), f"member:{i}"]
    srv.cli(*args)


INCR_SCRIPT = "return redis.call('INCR', KEYS[1])"
INCR10_SCRIPT = "local n for i = 1, 10 do n = redis.call('INCR', KEYS[1]) end return n"
FUNCTION_LIB = "#!lua name=benchlib\nredis.register_function('incr1', function(keys) return redis.call('INCR', keys[1]) end)"


def sha1hex(body):
    return hashlib.sha1(body.encode()).hexdigest()


def load_scripts(srv):
    srv.cli("SCRIPT", "LOAD", INCR_SCRIPT)
    srv.cli("SCRIPT", "LOAD", INCR10_SCRIPT)


def seed_hlls(srv):
    for n in (1, 2, 3):
        srv.cli("PFADD", f"bench:hll{n}", *[f"{n}:{i}" for i in range(10000)])
        srv.cli("PFCOUNT", f"bench:hll{n}")


GEO_MEMBERS = 1000000
_geo_protocol = None


def seed_geo(srv):
    """bench:geo with GEO_MEMBERS members m:<12-digit index> (the names redis-benchmark's
    __rand_int__ produces), at fixed pseudo-random points of 10..20 E, 35..45 N."""
    global _geo_protocol
    if _geo_protocol is None:
        import random
        rng = random.Random(42)
        out = io.BytesIO()
        batch = 1000
        for start in range(0, GEO_MEMBERS, batch):
            args = [b"GEOADD", b"bench:geo"]
            for i in range(start, start + batch):
                args += [b"%.6f" % rng.uniform(10, 20), b"%.6f" % rng.uniform(35, 45), b"m:%012d" % i]
            out.write(b"*%d\r\n" % len(args))
            for a in args:
                out.write(b"$%d\r\n%s\r\n" % (len(a), a))
        _geo_protocol = out.getvalue()
    subprocess.run([redis_tool("redis-cli"), "-p", str(srv.port), "--pipe"], input=_geo_protocol, check=True,
                   capture_output=True)


def flush_scripts(srv):
    srv.cli("SCRIPT", "FLUSH")


def load_function(srv):
    srv.cli("FUNCTION", "LOAD", "REPLACE", FUNCTION_LIB)


# name -> (seed function, command line, -r range for __rand_int__)
CUSTOM = {
    "zrangebyscore": (seed_zset, ["ZRANGEBYSCORE", "bench:zset", "__rand_int__", "+inf", "LIMIT", "0", "10"],
                      ZSET_MEMBERS),
    # Scripting (not in the default list): EVALSHA of one INCR, of ten, and FCALL of one.
    "evalsha": (load_scripts, ["EVALSHA", sha1hex(INCR_SCRIPT), "1", "key:__rand_int__"], 100000),
    "evalsha10": (load_scripts, ["EVALSHA", sha1hex(INCR10_SCRIPT), "1", "key:__rand_int__"], 100000),
    "fcall": (load_function, ["FCALL", "incr1", "1", "key:__rand_int__"], 100000),
    "pfadd": (lambda srv: None, ["PFADD", "bench:hll", "el:__rand_int__"], 1000000),
    "pfcount": (seed_hlls, ["PFCOUNT", "bench:hll1"], 100000),
    "pfcount3": (seed_hlls, ["PFCOUNT", "bench:hll1", "bench:hll2", "bench:hll3"], 100000),
    "bitfield": (lambda srv: None, ["BITFIELD", "bf:__rand_int__", "INCRBY", "u8", "#3", "1", "GET", "i5", "100"],
                 100000),
    "geoadd": (lambda srv: None, ["GEOADD", "bench:geo", "13.__rand_int__", "38.__rand_int__", "m:__rand_int__"],
               1000000),
    "geosearch": (seed_geo, ["GEOSEARCH", "bench:geo", "FROMMEMBER", "m:__rand_int__", "BYRADIUS", "3", "km"],
                  GEO_MEMBERS),
    "evalnew": (flush_scripts, ["EVAL", "return '__rand_int__'", "0"], 100000000),
}


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# `taskset -c CPUS` for redis-benchmark when --pin is given (empty: unpinned).
CLIENT_PREFIX = []


def run_benchmark(srv, requests, pipeline, clients, rand_range, selector):
    """One redis-benchmark run: {test: (ops/s, server CPU µs per request, client CPU %)}."""
    server_before = cpu_seconds(srv.proc.pid)
    child_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    out = subprocess.run(
        CLIENT_PREFIX + [redis_tool("redis-benchmark"), "-p", str(srv.port), "-c", str(clients), "-n", str(requests), "-P", str(pipeline),
         "-r", str(rand_range), "--csv"] + selector,
        check=True, capture_output=True, text=True).stdout
    wall = time.time() - started
    child_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (child_after.ru_utime + child_after.ru_stime - child_before.ru_utime - child_before.ru_stime)
    server = cpu_seconds(srv.proc.pid) - server_before
    rows = {}
    for row in csv.reader(io.StringIO(out)):
        if not row or row[0] == "test" or "(needed" in row[0]:
            # The header, and the LPUSH that only fills the list for LRANGE_*.
            continue
        rows[row[0].split(" ")[0].upper()] = float(row[1])
    # One test per run (see bench), so the CPU figures belong to it; LRANGE_*'s run also
    # holds its LPUSH fill, which both servers pay alike.
    return {k: (v, server * 1e6 / requests, 100 * client / wall) for k, v in rows.items()}


def bench(srv, tests, requests, pipeline, clients):
    srv.cli("FLUSHALL")
    rows = {}
    # One redis-benchmark run per test, in the given order without flushing in between:
    # LPOP pops what LPUSH pushed and SPOP what SADD added, as in a combined -t run.
    for t in tests:
        if t in CUSTOM:
            seed, argv, rand_range = CUSTOM[t]
            # The servers live through every round: without this, the scripts evalnew
            # cached (never evicted, as in Redis 7.0) weigh on every later script test,
            # and far more on Redis's than on ferrokv's (EVALSHA -P 16 ran at 0.28x its
            # own speed on Redis after one evalnew round).
            srv.cli("SCRIPT", "FLUSH")
            seed(srv)
            got = run_benchmark(srv, requests, pipeline, clients, rand_range, argv)
            rows[t.upper()] = next(iter(got.values()))
        else:
            rows.update(run_benchmark(srv, requests, pipeline, clients, 100000, ["-t", t]))
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
    ap.add_argument("--pin", metavar="CLIENT_CPUS:SERVER_CPUS",
                    help="pin redis-benchmark and the servers with taskset, e.g. 0:1: at -P 1 the client "
                         "is the bottleneck, and where the scheduler puts the three processes moves "
                         "ops/s more than the servers do")
    ap.add_argument("--control", action="store_true",
                    help="a second ferrokv in Redis's place: the ratios then show the noise floor")
    args = ap.parse_args()
    tests = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
    build_ferrokv()
    extra = args.server_args.split()
    server_cpus = None
    if args.pin:
        client_cpus, server_cpus = args.pin.split(":")
        CLIENT_PREFIX[:] = ["taskset", "-c", client_cpus]
    fk = Server("ferrokv", extra, cpus=server_cpus)
    rs = Server("ferrokv" if args.control else "redis", extra, cpus=server_cpus)
    results = {}
    try:
        for p in [int(x) for x in args.pipelines.split(",")]:
            n = args.requests * (8 if p > 1 else 1)
            for r in range(args.rounds):
                # Alternate who goes first so drift in machine load hits both equally.
                order = [("ferrokv", fk), ("redis", rs)] if r % 2 == 0 else [("redis", rs), ("ferrokv", fk)]
                for name, srv in order:
                    for test, measured in bench(srv, tests, n, p, args.clients).items():
                        results.setdefault((test, p, name), []).append(measured)
    finally:
        fk.stop()
        rs.stop()

    def med(test, p, name, i):
        return median([m[i] for m in results.get((test, p, name), [])])

    pinned = f", pinned {args.pin}" if args.pin else ""
    control = " (control: ferrokv in both columns)" if args.control else ""
    print(f"\nmedian of {args.rounds} rounds, -c {args.clients}, ops/s {args.server_args}{pinned}{control}")
    print(f"{'test':14} {'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7} {'cpu/req ratio':>14} {'client cpu %':>13}"
          f"  round ratios")
    for test in [t.upper() for t in tests]:
        for p in [int(x) for x in args.pipelines.split(",")]:
            a, b = med(test, p, "ferrokv", 0), med(test, p, "redis", 0)
            ca, cb = med(test, p, "ferrokv", 1), med(test, p, "redis", 1)
            client = f"{med(test, p, 'ferrokv', 2):.0f}/{med(test, p, 'redis', 2):.0f}"
            # Each round's own ratio (its two runs were back to back): their spread shows
            # how far the median can be trusted.
            rounds = [x[0] / y[0] for x, y in zip(results.get((test, p, "ferrokv"), []),
                                                  results.get((test, p, "redis"), []))]
            spread = " ".join(f"{r:.2f}" for r in rounds)
            print(f"{test:14} {p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f} {ca / cb:>14.2f} {client:>13}  {spread}")


if __name__ == "__main__":
    main()
