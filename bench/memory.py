#!/usr/bin/env python3
"""Memory per key, side by side: load the same 1,000,000 string keys (16-byte values, via
DEBUG POPULATE) into ferrokv and Debian's redis-server, then compare INFO used_memory and
RSS per key, and their ratio ferrokv/redis.

    python3 bench/memory.py [--keys 1000000] [--size 16]"""

import argparse

from common import Server, build_ferrokv


def measure(srv, keys, size):
    before = int(srv.info()["used_memory"])
    rss_before = srv.rss()
    srv.cli("DEBUG", "POPULATE", str(keys), "key", str(size))
    assert int(srv.cli("DBSIZE").strip()) == keys
    used = int(srv.info()["used_memory"]) - before
    rss = srv.rss() - rss_before
    return used / keys, rss / keys, srv.rss() / keys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=16)
    args = ap.parse_args()
    build_ferrokv()
    rows = {}
    for kind in ("ferrokv", "redis"):
        srv = Server(kind)
        try:
            rows[kind] = measure(srv, args.keys, args.size)
        finally:
            srv.stop()
    (fu, fr, ft), (ru, rr, rt) = rows["ferrokv"], rows["redis"]
    print(f"\n{args.keys} keys, {args.size}-byte values, bytes per key")
    print(f"{'metric':28} {'ferrokv':>10} {'redis':>10} {'ratio':>7}")
    print(f"{'used_memory growth / key':28} {fu:>10.1f} {ru:>10.1f} {fu / ru:>7.2f}")
    print(f"{'RSS growth / key':28} {fr:>10.1f} {rr:>10.1f} {fr / rr:>7.2f}")
    print(f"{'total RSS / key':28} {ft:>10.1f} {rt:>10.1f} {ft / rt:>7.2f}")


if __name__ == "__main__":
    main()
