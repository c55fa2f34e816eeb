#!/usr/bin/env python3
"""MIGRATE throughput, ferrokv vs redis-server, interleaved rounds.

Each round and kind: a source and a target of the same kind; DEBUG POPULATE puts
--keys string keys (`key:N`, --size bytes) in the source; one client then moves them all
with `MIGRATE host port "" 0 5000 KEYS key:i … key:i+batch-1`, one call after the other
(the first call opens the connection, the others reuse the cached one). Times the whole
move, checks the source is empty and the target holds every key, and reports keys/s.
Prints the median per kind and the ratio ferrokv/redis of the medians (higher is better).
The machine is shared: compare the ratio, not the absolute figures.

    python3 bench/migrate.py [--rounds 3] [--keys 100000] [--batch 100] [--size 16]
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, build_ferrokv, median  # noqa: E402


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
    return b"".join(out)


def read_line(sock, buf):
    """One reply line (the replies here are all one line), bounded in time by the socket."""
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line


def one_round(kind, args):
    src, dst = Server(kind), Server(kind)
    try:
        src.cli("DEBUG", "POPULATE", str(args.keys), "key", str(args.size))
        sock = socket.create_connection(("127.0.0.1", src.port))
        sock.settimeout(60)
        buf = [b""]
        started = time.perf_counter()
        for first in range(0, args.keys, args.batch):
            keys = [f"key:{i}" for i in range(first, min(first + args.batch, args.keys))]
            sock.sendall(resp("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys))
            reply = read_line(sock, buf)
            if reply != b"+OK":
                raise SystemExit(f"{kind}: MIGRATE answered {reply!r}")
        elapsed = time.perf_counter() - started
        sock.close()
        left, moved = int(src.cli("DBSIZE")), int(dst.cli("DBSIZE"))
        if left != 0 or moved != args.keys:
            raise SystemExit(f"{kind}: {left} keys left, {moved} moved")
        return args.keys / elapsed
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
            print(f"round {r + 1} {kind:8} {results[kind][-1]:>11.0f} keys/s", flush=True)
    fk, rd = median(results["ferrokv"]), median(results["redis"])
    print()
    print(f"{'ferrokv keys/s':>15} {'redis keys/s':>13} {'ratio':>6}")
    print(f"{fk:>15.0f} {rd:>13.0f} {fk / rd:>6.2f}")


if __name__ == "__main__":
    main()
