#!/usr/bin/env python3
"""A/B of two ferrokv binaries (a change against the commit before it), alternating rounds:
redis-benchmark ops/s and the server's CPU time per request, medians, ratio B/A.

    python3 bench/ab.py --a /path/to/ferrokv-before --b /path/to/ferrokv-after \\
        [--tests set,get] [--pipelines 1,16] [--rounds 5] [--requests 200000] \\
        [--server-args "--appendonly yes"]

Use it for "no measurable loss" claims; compare with redis-server through throughput.py.
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from throughput import run_benchmark  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="ferrokv binary A (before)")
    ap.add_argument("--b", required=True, help="ferrokv binary B (after)")
    ap.add_argument("--tests", default="set,get")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--server-args", default="")
    args = ap.parse_args()
    extra = shlex.split(args.server_args)
    pipelines = [int(p) for p in args.pipelines.split(",")]
    tests = args.tests.split(",")
    results = {}
    for r in range(args.rounds):
        order = (("A", args.a), ("B", args.b)) if r % 2 == 0 else (("B", args.b), ("A", args.a))
        for name, binary in order:
            common.FERROKV = binary
            srv = common.Server("ferrokv", extra)
            try:
                for p in pipelines:
                    n = args.requests * (8 if p > 1 else 1)
                    srv.cli("FLUSHALL")
                    for t in tests:
                        got = run_benchmark(srv, n, p, args.clients, 100000, ["-t", t])
                        ops, cpu_per_req, _client_cpu = next(iter(got.values()))
                        results.setdefault((t, p, name), []).append((ops, cpu_per_req))
            finally:
                srv.stop()
    print(f"{'test':<8}{'-P':>4}{'A ops/s':>12}{'B ops/s':>12}{'B/A':>7}{'CPU/req B/A':>13}")
    for p in pipelines:
        for t in tests:
            a = results[(t, p, "A")]
            b = results[(t, p, "B")]
            a_ops, b_ops = common.median([x[0] for x in a]), common.median([x[0] for x in b])
            a_cpu, b_cpu = common.median([x[1] for x in a]), common.median([x[1] for x in b])
            print(f"{t:<8}{p:>4}{a_ops:>12.0f}{b_ops:>12.0f}{b_ops / a_ops:>7.2f}{b_cpu / a_cpu:>13.2f}")


if __name__ == "__main__":
    main()
