#!/usr/bin/env python3
"""Instructions a server executes for a fixed redis-benchmark load, counted by callgrind:
repeatable on a shared, noisy machine where ops/s swing (valgrind counts instructions,
not time), so a change's CPU cost can be judged against the binary before it.

    python3 bench/instructions.py --bin before=/path/ferrokv-old --bin after=target/release/ferrokv \\
        [--tests set,get] [--pipelines 1,16] [--requests 50000] \\
        [--command "XADD bench:stream * field __rand_int__"]

--command runs that command (redis-benchmark's -r placeholders allowed) instead of
--tests. A --bin whose file is named redis-server* is started as Redis (without ferrokv's
`server` word), so ferrokv can be counted against Debian's Redis on the same load.

ACL checks: the same binary twice, the second run logged in as a user with these rules
(created with ACL SETUSER before the load; redis-benchmark then AUTHs as it):

    python3 bench/instructions.py --bin default=target/release/ferrokv --bin user=target/release/ferrokv \\
        --acl-for user --acl "~a:* ~b:* ~c:* ~d:* ~e:* ~f:* ~g:* ~h:* ~i:* ~key:* +@all"

Prints, per test and pipeline depth, each binary's total instructions (the whole server
run: startup, the load, shutdown), the ratio to the first binary, and instructions per
request. Random keys (-r 100000) make runs differ by about 0.5 %.

A binary named redis-server* is started as Redis (no `server` subcommand), so Debian's
redis-server can be a column: `--bin redis=/usr/bin/redis-server`. Tests are
redis-benchmark's own (-t) or throughput.py's custom ones (evalsha, evalsha10, fcall,
evalnew, zrangebyscore), seeded the same way, or `xreadgroup`: bench/streams.py's XREADGROUP +
XACK pairs through bench/loadgen (build it first: cargo build --release -p ferrokv-loadgen). `--keep DIR` keeps each callgrind output
there (for callgrind_annotate), named callgrind.<bin name>.<test>.P<depth>.out.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, redis_tool  # noqa: E402
from throughput import CUSTOM  # noqa: E402
from streams import LOADGEN, seed_group  # noqa: E402


class Seeded:
    """What throughput.py's seed functions need of a server: its cli."""

    def __init__(self, port):
        self.port = port

    def cli(self, *args):
        return subprocess.run([redis_tool("redis-cli"), "-p", str(self.port)] + list(args), check=True,
                              capture_output=True, text=True).stdout


ACL_USER, ACL_PASS = "bench", "benchpw"


def count(name, binary, test, pipeline, requests, keep=None, acl_rules=None):
    port = free_port()
    d = tempfile.mkdtemp(prefix="bench-callgrind-")
    # Named by the --bin name, not the file: two runs of one binary (the ACL comparison)
    # would otherwise overwrite each other's output.
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{name}.{test}")
    out = os.path.join(keep or d, f"callgrind.{label}.P{pipeline}.out")
    as_redis = os.path.basename(binary).startswith("redis-server")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary] + ([] if as_redis else ["server"])
        + ["--port", str(port), "--save", "", "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = redis_tool("redis-cli")
    deadline = time.time() + 60
    while subprocess.run([cli, "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() != "PONG":
        if time.time() > deadline or server.poll() is not None:
            raise SystemExit(f"{binary} did not start under valgrind")
        time.sleep(0.2)
    if not as_redis:
        # The spin before sleeping (busy-poll-us) would count instructions that depend on
        # timing; binaries older than the directive answer an error, which changes nothing.
        subprocess.run([cli, "-p", str(port), "CONFIG", "SET", "busy-poll-us", "0"], capture_output=True)
    login = []
    if acl_rules:
        setuser = [cli, "-p", str(port), "ACL", "SETUSER", ACL_USER, "on", ">" + ACL_PASS] + acl_rules.split()
        if subprocess.run(setuser, capture_output=True, text=True).stdout.strip() != "OK":
            raise SystemExit(f"ACL SETUSER {acl_rules} refused")
        login = ["--user", ACL_USER, "-a", ACL_PASS]
    if test == "xreadgroup":
        # bench/streams.py's pairs: a stream of one entry per pair and its group, then
        # XREADGROUP + XACK through bench/loadgen (seeding is counted too, alike for all).
        seed_group(Seeded(port), requests)
        said = subprocess.run([LOADGEN, "--port", str(port), "--mode", "xreadgroup", "--clients", "50",
                               "--pipeline", str(pipeline), "--requests", str(requests)],
                              check=True, capture_output=True, text=True).stdout
        if "errors=0" not in said.split():
            raise SystemExit(f"{name}: {said}")
    else:
        if test in CUSTOM:
            seed, argv, rand_range = CUSTOM[test]
            seed(Seeded(port))
            load = ["-r", str(rand_range)] + argv
        elif " " in test:
            load = ["-r", "100000"] + test.split()
        else:
            load = ["-r", "100000", "-t", test]
        subprocess.run([redis_tool("redis-benchmark"), "-p", str(port), "-c", "50", "-n", str(requests), "-P",
                        str(pipeline), "-q"] + load + login, check=True, capture_output=True)
    subprocess.run([cli, "-p", str(port), "SHUTDOWN", "NOSAVE"], capture_output=True)
    server.wait(timeout=120)
    with open(out) as f:
        text = f.read()
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not m:
        raise SystemExit("no totals in the callgrind output")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="name=path of a ferrokv binary (first: baseline)")
    ap.add_argument("--tests", default="set,get")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--command", help="a command line for redis-benchmark instead of --tests")
    ap.add_argument("--keep", help="a directory to keep the callgrind outputs in")
    ap.add_argument("--acl", help="rules of the ACL user the --acl-for binaries' loads log in as")
    ap.add_argument("--acl-for", default="", help="comma-separated names of --bin entries run as the ACL user")
    args = ap.parse_args()
    tests = [args.command] if args.command else args.tests.split(",")
    bins = [b.split("=", 1) for b in args.bin]
    print(f"{'test':<10}{'-P':>4}" + "".join(f"{name:>16}{'ratio':>7}" for name, _ in bins) + f"{'instr/req':>11}")
    for p in [int(x) for x in args.pipelines.split(",")]:
        requests = args.requests * (4 if p > 1 else 1)
        for t in tests:
            acl_for = set(args.acl_for.split(","))
            counts = [count(name, path, t, p, requests, args.keep, args.acl if name in acl_for else None) for name, path in bins]
            row = f"{t.split()[0]:<10}{p:>4}" + "".join(f"{c:>16}{c / counts[0]:>7.3f}" for c in counts)
            print(row + f"{counts[-1] / requests:>11.0f}")


if __name__ == "__main__":
    main()
