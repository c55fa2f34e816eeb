#!/usr/bin/env python3
"""Memory, side by side: load the same dataset into ferrokv and Debian's redis-server and
compare INFO used_memory and RSS growth, and their ratio ferrokv/redis.

    python3 bench/memory.py [--case strings|hashes|zsets|sets|all] [--scale 1.0]

Cases:
  strings  1,000,000 keys with 16-byte values (DEBUG POPULATE)
  hashes   100 hashes x 10,000 fields (field:N -> value:N)
  zsets    100 sorted sets x 10,000 members (member:N, score N)
  sets     1,000,000 small sets of 5 short string members
Data is sent with `redis-cli --pipe`, the same bytes to both servers. --scale < 1 shrinks
the number of keys (not the size of each aggregate, so encodings stay those of the full
case) for a quick sanity run, e.g. --scale 0.01; figures are per element either way."""

import argparse
import subprocess

from common import build_ferrokv, redis_tool, resp, Server


def scaled(n, scale):
    return max(1, int(n * scale))


def gen_hashes(scale):
    for h in range(scaled(100, scale)):
        for base in range(0, 10000, 100):
            args = ["HSET", f"hash:{h}"]
            for j in range(base, base + 100):
                args += [f"field:{j}", f"value:{j}"]
            yield resp(*args)


def gen_zsets(scale):
    for z in range(scaled(100, scale)):
        for base in range(0, 10000, 100):
            args = ["ZADD", f"zset:{z}"]
            for j in range(base, base + 100):
                args += [j, f"member:{j}"]
            yield resp(*args)


def gen_sets(scale):
    for s in range(scaled(1000000, scale)):
        yield resp("SADD", f"set:{s}", "alpha", "beta", "gamma", "delta", "epsilon")


# case -> (label, generator, elements per unit of scale, elements per key)
CASES = {
    "strings": ("1M keys, 16-byte values", None, 1000000, 1),
    "hashes": ("100 hashes x 10k fields", gen_hashes, 1000000, 10000),
    "zsets": ("100 zsets x 10k members", gen_zsets, 1000000, 10000),
    "sets": ("1M sets x 5 members", gen_sets, 1000000, 1),
}


def elements(case, scale):
    _, _, total, per_key = CASES[case]
    return scaled(total // per_key, scale) * per_key


def load(srv, case, scale):
    _, gen, _, _ = CASES[case]
    if gen is None:
        srv.cli("DEBUG", "POPULATE", str(elements(case, scale)), "key", "16")
        return
    data = b"".join(gen(scale))
    subprocess.run([redis_tool("redis-cli"), "-p", str(srv.port), "--pipe"], input=data, check=True, capture_output=True)


def measure(kind, case, scale):
    srv = Server(kind)
    try:
        before, rss_before = int(srv.info()["used_memory"]), srv.rss()
        load(srv, case, scale)
        used = int(srv.info()["used_memory"]) - before
        return used, srv.rss() - rss_before
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="all", choices=["all"] + list(CASES))
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the keys to load (sanity runs)")
    args = ap.parse_args()
    build_ferrokv()
    cases = list(CASES) if args.case == "all" else [args.case]
    print(f"\n{'case':36} {'metric':16} {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    for case in cases:
        label = CASES[case][0] + (f" (scale {args.scale:g})" if args.scale != 1.0 else "")
        per = elements(case, args.scale)
        fu, fr = measure("ferrokv", case, args.scale)
        ru, rr = measure("redis", case, args.scale)
        print(f"{label:36} {'used_memory/elem':16} {fu / per:>12.1f} {ru / per:>12.1f} {fu / ru:>7.2f}")
        print(f"{'':36} {'RSS/elem':16} {fr / per:>12.1f} {rr / per:>12.1f} {fr / rr:>7.2f}")


if __name__ == "__main__":
    main()
