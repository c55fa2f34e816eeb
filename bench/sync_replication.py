#!/usr/bin/env python3
"""What acknowledged writes cost: a master with two replicas, ferrokv with
`sync-replicas 1` against ferrokv asynchronous, and against Redis with `SET` + `WAIT 1 0`
after every write (what Redis users do today for the same guarantee), alternating rounds.

    python3 bench/sync_replication.py [--rounds 3] [--requests 200000]

Load from bench/loadgen (50 clients, -P 1 and -P 16, random keys out of 100,000).
Prints ops/s and p50/p99 latency per case (medians of the rounds) and the ratios the
issue asks for: sync / async ferrokv (goal >= 0.7 at -P 16) and sync / Redis SET+WAIT
(goal >= 3).
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, TARGET_DIR, Server, build_ferrokv, median  # noqa: E402

LOADGEN = os.path.join(TARGET_DIR, "release", "ferrokv-loadgen")


def build_loadgen():
    subprocess.run(["cargo", "build", "--release", "-p", "ferrokv-loadgen"], cwd=ROOT, check=True,
                   capture_output=True)


def group(kind, sync):
    extra = ["--repl-diskless-sync-delay", "0"]
    if kind == "ferrokv":
        extra += ["--sync-replicas", str(sync)]
    master = Server(kind, extra)
    replicas = [Server(kind, ["--replicaof", "127.0.0.1", str(master.port)]) for _ in range(2)]
    deadline = time.time() + 30
    while master.info("replication").get("connected_slaves") != "2" or any(
            r.info("replication").get("master_link_status") != "up" for r in replicas):
        if time.time() > deadline:
            raise SystemExit(f"{kind}: replicas did not sync")
        time.sleep(0.05)
    if kind == "ferrokv" and sync:
        while master.info("replication").get("sync_replicas_acking") != "2":
            if time.time() > deadline:
                raise SystemExit("sync mode never acknowledged")
            time.sleep(0.05)
    return master, replicas


def load(port, mode, pipeline, requests):
    out = subprocess.run([LOADGEN, "--port", str(port), "--mode", mode, "--clients", "50",
                          "--pipeline", str(pipeline), "--requests", str(requests)],
                         check=True, capture_output=True, text=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    if int(fields["errors"]) != 0:
        raise SystemExit(f"{mode} -P {pipeline} on {port}: {fields['errors']} errors")
    return float(fields["ops_per_sec"]), float(fields["p50_ms"]), float(fields["p99_ms"])


CASES = [
    # (name, kind, sync-replicas, load mode)
    ("ferrokv async", "ferrokv", 0, None),
    ("ferrokv sync-replicas 1", "ferrokv", 1, None),
    ("redis SET+WAIT 1 0", "redis", 0, "setwait"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    args = ap.parse_args()
    build_ferrokv()
    build_loadgen()
    results = {}
    for r in range(args.rounds):
        cases = CASES if r % 2 == 0 else list(reversed(CASES))
        for name, kind, sync, mode in cases:
            master, replicas = group(kind, sync)
            try:
                for pipeline in (1, 16):
                    n = args.requests * (4 if pipeline > 1 else 1)
                    for test in ("set", "get"):
                        m = mode if (mode and test == "set") else test
                        results.setdefault((name, test, pipeline), []).append(load(master.port, m, pipeline, n))
            finally:
                for s in replicas + [master]:
                    s.stop()
    print(f"{'case':<26}{'test':<5}{'-P':>4}{'ops/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    med = {}
    for (name, test, pipeline), rows in results.items():
        ops, p50, p99 = (median([x[i] for x in rows]) for i in range(3))
        med[(name, test, pipeline)] = ops
        print(f"{name:<26}{test:<5}{pipeline:>4}{ops:>11.0f}{p50:>9.3f}{p99:>9.3f}")
    print()
    for test in ("set", "get"):
        for pipeline in (1, 16):
            s = med[("ferrokv sync-replicas 1", test, pipeline)]
            a = med[("ferrokv async", test, pipeline)]
            w = med[("redis SET+WAIT 1 0", test, pipeline)]
            label = "Redis SET+WAIT" if test == "set" else "Redis GET"
            print(f"{test.upper()} -P {pipeline:<3} sync/async {s / a:5.2f}   sync/{label} {s / w:5.2f}")


if __name__ == "__main__":
    main()
