#!/usr/bin/env python3
"""Memory of cached scripts, side by side: SCRIPT LOAD the same N distinct scripts into
ferrokv and Debian's redis-server and compare what each grew by, per script.

    python3 bench/scripting.py [--scripts 10000] [--rounds 3]

Each round starts both servers fresh, reads INFO memory and RSS, loads the scripts with
`redis-cli --pipe` (the same bytes to both), and reads them again. Reported (medians):
used_memory growth, used_memory_vm_eval (the Lua heap) and used_memory_scripts_eval
(the cache's own bookkeeping) after the load, and RSS growth, each per script and as the
ratio ferrokv/redis. The scripts look like what applications cache: a few lines with
KEYS/ARGV and redis.call, each made distinct by a number.

The EVAL-throughput side (a new script on every call) is `bench/throughput.py --tests
evalnew`."""

import argparse
import subprocess

from common import build_ferrokv, median, redis_tool, resp, Server

TEMPLATE = (
    "local current = redis.call('GET', KEYS[1]) -- script {n}\n"
    "if current == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end\n"
    "return {n}"
)


def load(srv, n):
    payload = b"".join(resp("SCRIPT", "LOAD", TEMPLATE.format(n=i)) for i in range(n))
    subprocess.run([redis_tool("redis-cli"), "-p", str(srv.port), "--pipe"], input=payload, check=True,
                   capture_output=True)


def measure(kind, n):
    srv = Server(kind)
    try:
        before, rss_before = srv.info(), srv.rss()
        load(srv, n)
        after, rss_after = srv.info(), srv.rss()
        cached = int(srv.info("memory").get("number_of_cached_scripts", 0))
        assert cached == n, f"{kind}: {cached} scripts cached, expected {n}"
        return {
            "used_memory": (int(after["used_memory"]) - int(before["used_memory"])) / n,
            "vm_eval": int(after["used_memory_vm_eval"]) / n,
            "scripts_eval": int(after["used_memory_scripts_eval"]) / n,
            "rss": (rss_after - rss_before) / n,
        }
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scripts", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    build_ferrokv()
    results = {"ferrokv": [], "redis": []}
    for r in range(args.rounds):
        for kind in (["ferrokv", "redis"] if r % 2 == 0 else ["redis", "ferrokv"]):
            results[kind].append(measure(kind, args.scripts))
    print(f"\n{args.scripts} distinct cached scripts, median of {args.rounds} rounds, bytes per script")
    print(f"{'field':28} {'ferrokv':>10} {'redis':>10} {'ratio':>7}")
    for field, label in [("used_memory", "used_memory growth"), ("vm_eval", "used_memory_vm_eval"),
                         ("scripts_eval", "used_memory_scripts_eval"), ("rss", "RSS growth")]:
        a = median([m[field] for m in results["ferrokv"]])
        b = median([m[field] for m in results["redis"]])
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"{label:28} {a:>10.0f} {b:>10.0f} {ratio:>7}")


if __name__ == "__main__":
    main()
