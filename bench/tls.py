#!/usr/bin/env python3
"""TLS throughput, side by side: redis-benchmark --tls against ferrokv's and Debian's
redis-server's tls-port (both built with TLS: ferrokv on rustls, Redis on OpenSSL),
alternating A/B rounds, medians, ratio ferrokv/redis; also each server's CPU time per
request (user + system, from /proc), steadier than ops/s on a shared machine, the times
per request it went to sleep (voluntary context switches: an epoll_wait that blocked) and
redis-benchmark's own CPU time per request (at -P 1 the single-threaded client, not the
server, is what runs out of CPU first on two cores), and the lowest and highest ratio of
the rounds.

    python3 bench/tls.py [--rounds 5] [--requests 100000] [--tests set,get]
                         [--pipelines 1,16] [--clients 50] [--connect-requests 5000]

Runs SET and GET at each pipeline depth (-P 16 runs 8x the requests), then the new-connection
rate: PING_INLINE with -k 0 (redis-benchmark opens a new connection, with a full TLS
handshake, for every request). Certificates (an EC P-256 CA and server certificate) are
made with the openssl command in a temporary directory; clients are not asked for one
(tls-auth-clients no) so the figures are the server's handshake and record cost.

Then a full sync over TLS (--sync-keys, 1 M; 0 skips it): a master filled by DEBUG
POPULATE and a fresh replica of the same kind (ferrokv → ferrokv, redis-server →
redis-server) with tls-replication yes, timed from REPLICAOF to the replica's link up with
every key; --sync-rounds (3) interleaved rounds, medians, ratio ferrokv/redis (lower is
faster). Both diskless, no delay (repl-diskless-sync-delay 0)."""

import argparse
import csv
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, build_ferrokv, free_port, median, redis_tool  # noqa: E402
from throughput import cpu_seconds  # noqa: E402


def make_certs(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=bench CA", "-out", "ca.crt")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key")
    openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-sha256", "-extfile", "ext.cnf", "-out", "server.crt")
    return {name: os.path.join(d, name) for name in ["ca.crt", "server.crt", "server.key"]}


def sleeps(pid):
    """How many times the process has blocked so far (voluntary context switches)."""
    with open(f"/proc/{pid}/status") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))


def children_cpu():
    """CPU seconds used by the finished child processes (redis-benchmark) so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# `taskset -c CPUS` for redis-benchmark when --pin is given (empty: unpinned).
CLIENT_PREFIX = []


def run_benchmark(tls_port, ca, requests, pipeline, clients, argv):
    out = subprocess.run(
        CLIENT_PREFIX + [redis_tool("redis-benchmark"), "-p", str(tls_port), "--tls", "--cacert", ca, "-c", str(clients), "-n",
         str(requests), "-P", str(pipeline), "-r", "100000", "--csv"] + argv,
        check=True, capture_output=True, text=True, timeout=600).stdout
    for row in csv.reader(io.StringIO(out)):
        if row and row[0] != "test":
            return float(row[1])
    raise SystemExit(f"no result from redis-benchmark: {out}")


def wait_until(cond, timeout=600, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    raise SystemExit("timed out waiting for the full sync")


def synced(replica, keys):
    info = replica.info("replication")
    return info.get("master_link_status") == "up" and int(replica.cli("DBSIZE").strip() or 0) >= keys


def full_sync_seconds(kind, certs, keys):
    """Seconds from REPLICAOF to a replica of `kind` holding every key, over TLS."""
    files = ["--tls-cert-file", certs["server.crt"], "--tls-key-file", certs["server.key"], "--tls-ca-cert-file",
             certs["ca.crt"], "--tls-auth-clients", "no"]
    master_tls = free_port()
    master = Server(kind, ["--tls-port", str(master_tls), "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay",
                           "0"] + files)
    replica = Server(kind, ["--tls-replication", "yes"] + files)
    try:
        master.cli("DEBUG", "POPULATE", str(keys))
        start = time.time()
        replica.cli("REPLICAOF", "127.0.0.1", str(master_tls))
        wait_until(lambda: synced(replica, keys))
        return time.time() - start
    finally:
        replica.stop()
        master.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--tests", default="set,get")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--connect-requests", type=int, default=5000, help="0: skip the new-connection rate")
    ap.add_argument("--sync-keys", type=int, default=1_000_000, help="0: skip the full sync over TLS")
    ap.add_argument("--sync-rounds", type=int, default=3)
    ap.add_argument("--sync-only", action="store_true", help="only the full sync")
    ap.add_argument("--pin", metavar="CLIENT_CPUS:SERVER_CPUS",
                    help="pin redis-benchmark and the servers with taskset, e.g. 0:1 (as bench/throughput.py)")
    args = ap.parse_args()
    server_cpus = None
    if args.pin:
        client_cpus, server_cpus = args.pin.split(":")
        CLIENT_PREFIX[:] = ["taskset", "-c", client_cpus]
    build_ferrokv()
    d = tempfile.mkdtemp(prefix="bench-tls-")
    certs = make_certs(d)
    servers = {}
    if args.sync_only:
        args.rounds = 0
    try:
        for kind in [] if args.sync_only else ["ferrokv", "redis"]:
            tls_port = free_port()
            extra = ["--tls-port", str(tls_port), "--tls-cert-file", certs["server.crt"], "--tls-key-file",
                     certs["server.key"], "--tls-ca-cert-file", certs["ca.crt"], "--tls-auth-clients", "no"]
            servers[kind] = (Server(kind, extra, cpus=server_cpus), tls_port)
        cases = []
        for p in [int(x) for x in args.pipelines.split(",")]:
            for t in args.tests.split(","):
                cases.append((t.upper(), p, args.requests * (8 if p > 1 else 1), ["-t", t]))
        if args.connect_requests:
            cases.append(("CONNECT (-k 0)", 1, args.connect_requests, ["-t", "ping_inline", "-k", "0"]))
        results = {}
        for r in range(args.rounds):
            # Each case runs on both servers back to back, who goes first alternating, so a
            # burst of load elsewhere on the machine hits both sides of a ratio alike.
            order = ["ferrokv", "redis"] if r % 2 == 0 else ["redis", "ferrokv"]
            for name in order:
                servers[name][0].cli("FLUSHALL")
            for label, p, n, argv in cases:
                clients = min(args.clients, 8) if "-k" in argv else args.clients
                for name in order:
                    pid = servers[name][0].proc.pid
                    before, slept, client_before = cpu_seconds(pid), sleeps(pid), children_cpu()
                    ops = run_benchmark(servers[name][1], certs["ca.crt"], n, p, clients, argv)
                    cpu_us = (cpu_seconds(pid) - before) * 1e6 / n
                    client_us = (children_cpu() - client_before) * 1e6 / n
                    results.setdefault((label, p, name), []).append((ops, cpu_us, (sleeps(pid) - slept) / n,
                                                                     client_us))
            time.sleep(0.1)
    finally:
        for srv, _ in servers.values():
            srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    if args.rounds:
        pinned = f", pinned {args.pin}" if args.pin else ""
        print(f"\nTLS, median of {args.rounds} rounds, -c {args.clients} (-c 8 for CONNECT), ops/s{pinned}")
        print(f"{'test':16} {'-P':>3} {'ferrokv':>12} {'redis':>12} {'ratio':>7} {'(rounds)':>11}   "
              f"CPU us/req ferrokv redis ratio   sleeps/req ferrokv redis   client CPU us/req ferrokv redis")
        for label, p, _, _ in cases:
            ours, theirs = results[(label, p, "ferrokv")], results[(label, p, "redis")]
            med = lambda rows, i: median([row[i] for row in rows])  # noqa: E731
            a, b = med(ours, 0), med(theirs, 0)
            ca, cb = med(ours, 1), med(theirs, 1)
            rounds = [x[0] / y[0] for x, y in zip(ours, theirs)]
            spread = f"{min(rounds):.2f}-{max(rounds):.2f}"
            print(f"{label:16} {p:>3} {a:>12.0f} {b:>12.0f} {a / b:>7.2f} {spread:>11}   {ca:>17.2f} {cb:>5.2f} "
                  f"{ca / cb:>5.2f}   {med(ours, 2):>18.3f} {med(theirs, 2):>5.3f}   "
                  f"{med(ours, 3):>25.2f} {med(theirs, 3):>5.2f}")
    if args.sync_keys:
        times = {"ferrokv": [], "redis": []}
        d = tempfile.mkdtemp(prefix="bench-tls-sync-")
        try:
            certs = make_certs(d)
            for r in range(args.sync_rounds):
                # Interleaved, who goes first alternating, as above.
                for kind in (["ferrokv", "redis"] if r % 2 == 0 else ["redis", "ferrokv"]):
                    times[kind].append(full_sync_seconds(kind, certs, args.sync_keys))
                print(f"sync round {r + 1}: ferrokv {times['ferrokv'][-1]:.2f}s, redis {times['redis'][-1]:.2f}s",
                      flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        a, b = median(times["ferrokv"]), median(times["redis"])
        print(f"\nFull sync of {args.sync_keys} keys over TLS (diskless), median of {args.sync_rounds} rounds")
        print(f"{'ferrokv (s)':>12} {'redis (s)':>12} {'ratio':>7}")
        print(f"{a:>12.2f} {b:>12.2f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
