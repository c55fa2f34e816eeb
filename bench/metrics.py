#!/usr/bin/env python3
"""What the metrics port (`metrics-port`, issue 19) costs the Redis port.

    python3 bench/metrics.py [--rounds 5] [--requests 200000] [--clients-connected 10000]

1. SET -P 16 (-c 50) throughput of ferrokv while /metrics is scraped every second,
   against the same server with metrics off; interleaved rounds on fresh servers,
   medians, ratio (goal >= 0.98). Side by side: Redis scraped the way redis_exporter
   scrapes it (INFO ALL on its port every second) against Redis unscraped.
2. Time to scrape /metrics with 10,000 idle clients connected (the script raises its own
   open-files limit; the connections are opened and closed by the script, bounded),
   against an idle server; and INFO ALL's time on Redis with as many clients, for scale.
3. p50/p99 of GET (-P 1, -c 50; redis-benchmark's own percentiles) with and without a
   scrape every 100 ms.
4. (`--skip` does not list `cost`) The same question without the noise: callgrind counts
   the server's instructions per SET (-P 16) and per scrape, with and without the idle
   clients connected; a scrape a second then costs the Redis port at most
   instructions-per-scrape / (SET/s x instructions-per-SET) of its CPU, where SET/s is
   measured here without valgrind (median of 3). Needs valgrind.

The machine is shared: quote the ratios and look at the spread of the rounds."""

import argparse
import csv
import io
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from common import FERROKV, Server, build_ferrokv, free_port, median, redis_tool
from throughput import cpu_seconds


def http_get(port, path="/metrics"):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"scrape failed: {data[:200]!r}")
    return data


class Scraper:
    """Scrapes every `period` seconds on a thread until stopped (bounded by `limit` s)."""

    def __init__(self, scrape, period, limit=600):
        self.scrape, self.period, self.limit = scrape, period, limit
        self.count, self.stop_flag = 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        started = time.time()
        while not self.stop_flag.is_set() and time.time() - started < self.limit:
            self.scrape()
            self.count += 1
            self.stop_flag.wait(self.period)

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        return self.count


def benchmark(srv, test, pipeline, requests, clients=50):
    """One redis-benchmark run: (ops/s, p50 ms, p99 ms, server CPU µs per request)."""
    cpu0 = cpu_seconds(srv.proc.pid)
    out = subprocess.run(
        [redis_tool("redis-benchmark"), "-p", str(srv.port), "-c", str(clients), "-n", str(requests), "-P",
         str(pipeline), "-r", "100000", "--csv", "-t", test], check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] != "test"]
    header = next(csv.reader(io.StringIO(out)))
    row = dict(zip(header, rows[0]))
    return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]), cpu * 1e6 / requests


def start(kind, metrics):
    if kind == "ferrokv" and metrics:
        mport = free_port()
        return Server("ferrokv", ["--metrics-port", str(mport)]), mport
    return Server(kind), None


def info_all(port):
    """INFO ALL over a fresh connection, as redis_exporter asks (no redis-cli process)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$3\r\nALL\r\n")
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, rest = data.split(b"\r\n", 1)
        want = int(head[1:]) + 2
        while len(rest) < want:
            b = s.recv(65536)
            if not b:
                break
            rest += b
    return rest


def scrape_fn(kind, srv, mport):
    if kind == "ferrokv":
        return lambda: http_get(mport)
    # As redis_exporter: INFO ALL on the Redis port.
    return lambda: info_all(srv.port)


def throughput(rounds, requests, kind, scrape_period, test, pipeline):
    """{'off': [...], 'scraped': [...]} of benchmark() tuples, interleaved rounds."""
    results = {"off": [], "scraped": []}
    for r in range(rounds):
        for case in (("off", "scraped") if r % 2 == 0 else ("scraped", "off")):
            srv, mport = start(kind, case == "scraped")
            try:
                scraper = Scraper(scrape_fn(kind, srv, mport), scrape_period) if case == "scraped" else None
                results[case].append(benchmark(srv, test, pipeline, requests))
                if scraper:
                    scraper.stop()
            finally:
                srv.stop()
    return results


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def scrape_times(scrape, n=15):
    times = []
    for _ in range(n):
        time.sleep(0.06)  # past the 50 ms snapshot cache: every scrape takes a snapshot
        t = time.perf_counter()
        scrape()
        times.append((time.perf_counter() - t) * 1000)
    return median(times), max(times)


def with_clients(srv, count, deadline_s=120):
    """Opens `count` idle connections (bounded in time); returns them."""
    socks = []
    started = time.time()
    for _ in range(count):
        if time.time() - started > deadline_s:
            break
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        socks.append(s)
    # Wait (bounded) until the server counts them.
    while time.time() - started < deadline_s:
        if int(srv.info("clients")["connected_clients"]) >= len(socks):
            break
        time.sleep(0.1)
    return socks


def callgrind_run(work, clients=0):
    """Total instructions of one ferrokv run (startup to SHUTDOWN) under callgrind with a
    metrics port, `clients` idle connections open and `work(port, mport)` done meanwhile."""
    port, mport = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="bench-metrics-callgrind-")
    out = os.path.join(d, "callgrind.out")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", FERROKV, "server", "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", d, "--metrics-port", str(mport), "--maxclients",
         str(clients + 100)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = redis_tool("redis-cli")
    deadline = time.time() + 60
    while subprocess.run([cli, "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() != "PONG":
        if time.time() > deadline or server.poll() is not None:
            raise SystemExit("ferrokv did not start under valgrind")
        time.sleep(0.2)
    socks = []
    try:
        for _ in range(clients):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        work(port, mport)
    finally:
        for s in socks:
            s.close()
        subprocess.run([cli, "-p", str(port), "SHUTDOWN", "NOSAVE"], capture_output=True)
        server.wait(timeout=300)
    with open(out) as f:
        m = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
    shutil.rmtree(d, ignore_errors=True)
    if not m:
        raise SystemExit("no totals in the callgrind output")
    return int(m.group(1))


def scrape_cost(requests, scrapes, clients):
    """(instructions per SET -P 16, per scrape idle, per scrape with `clients` connected)."""
    def load(port):
        subprocess.run([redis_tool("redis-benchmark"), "-p", str(port), "-c", "50", "-n", str(requests), "-P",
                        "16", "-r", "100000", "-q", "-t", "set"], check=True, capture_output=True)

    def pause_then(scrape):
        def work(port, mport):
            for _ in range(scrapes):
                time.sleep(0.06)  # past the 50 ms snapshot cache: every scrape takes a snapshot
                if scrape:
                    http_get(mport)
        return work

    # Scrapes are counted without the load: its random keys move a run by ~0.5 %, more than
    # 50 scrapes cost.
    base = callgrind_run(pause_then(False))
    scraped = callgrind_run(pause_then(True))
    with_load = callgrind_run(lambda p, m: (load(p), pause_then(False)(p, m)))
    crowd = callgrind_run(pause_then(False), clients)
    crowd_scraped = callgrind_run(pause_then(True), clients)
    return (with_load - base) / requests, (scraped - base) / scrapes, (crowd_scraped - crowd) / scrapes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients-connected", type=int, default=10000)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: throughput,clients,p99,cost")
    ap.add_argument("--scrapes", type=int, default=50, help="scrapes counted by the cost part")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    build_ferrokv()

    if "throughput" not in skip:
        print(f"SET -P 16 -c 50, {args.requests * 8} requests, scrape every 1 s, median of {args.rounds} rounds")
        print(f"{'server':<9}{'off ops/s':>12}{'scraped':>12}{'ratio':>7}{'cpu/req ratio':>15}  rounds off / scraped")
        for kind in ("ferrokv", "redis"):
            res = throughput(args.rounds, args.requests * 8, kind, 1.0, "set", 16)
            off, on = median([x[0] for x in res["off"]]), median([x[0] for x in res["scraped"]])
            coff, con = median([x[3] for x in res["off"]]), median([x[3] for x in res["scraped"]])
            spread = " ".join(f"{x[0]:.0f}" for x in res["off"]) + " / " + " ".join(f"{x[0]:.0f}" for x in res["scraped"])
            print(f"{kind:<9}{off:>12.0f}{on:>12.0f}{on / off:>7.3f}{con / coff:>15.3f}  {spread}", flush=True)

    if "clients" not in skip:
        n = args.clients_connected
        got = raise_nofile(n + 256)
        if got < n + 64:
            print(f"open-files limit {got}: connecting {got - 128} clients instead of {n}")
            n = got - 128
        print(f"\nscrape time (ms, median / max of 15) with {n} idle clients connected")
        mport = free_port()
        fk = Server("ferrokv", ["--metrics-port", str(mport), "--maxclients", str(n + 100)])
        rs = Server("redis", ["--maxclients", str(n + 100)])
        try:
            for name, srv, scrape in (("ferrokv /metrics", fk, lambda: http_get(mport)),
                                      ("redis INFO ALL", rs, lambda: info_all(rs.port))):
                idle = scrape_times(scrape)
                socks = with_clients(srv, n)
                loaded = scrape_times(scrape)
                connected = srv.info("clients")["connected_clients"]
                for s in socks:
                    s.close()
                print(f"{name:<18} idle {idle[0]:7.2f} / {idle[1]:7.2f}   with {connected} clients "
                      f"{loaded[0]:7.2f} / {loaded[1]:7.2f}", flush=True)
        finally:
            fk.stop()
            rs.stop()

    if "p99" not in skip:
        print(f"\nGET -P 1 -c 50, {args.requests} requests, scrape every 100 ms, median of {args.rounds} rounds")
        print(f"{'case':<22}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        res = throughput(args.rounds, args.requests, "ferrokv", 0.1, "get", 1)
        for case in ("off", "scraped"):
            rows = res[case]
            ops, p50, p99 = (median([x[i] for x in rows]) for i in range(3))
            label = "ferrokv metrics off" if case == "off" else "ferrokv scraped 100ms"
            print(f"{label:<22}{ops:>10.0f}{p50:>9.3f}{p99:>9.3f}   p99 rounds: "
                  + " ".join(f"{x[2]:.3f}" for x in rows), flush=True)


    if "cost" not in skip:
        n = min(args.clients_connected, raise_nofile(args.clients_connected + 256) - 128)
        per_set, per_scrape, per_crowded_scrape = scrape_cost(args.requests, args.scrapes, n)
        rates = []
        for _ in range(3):
            srv, _ = start("ferrokv", False)
            try:
                rates.append(benchmark(srv, "set", 16, args.requests * 8)[0])
            finally:
                srv.stop()
        rate = median(rates)
        print(f"\ncallgrind: {per_set:.0f} instructions per SET -P 16; per scrape {per_scrape:.0f} idle, "
              f"{per_crowded_scrape:.0f} with {n} clients connected")
        for label, cost in (("idle", per_scrape), (f"{n} clients", per_crowded_scrape)):
            share = cost / (rate * per_set)
            print(f"a scrape a second at {rate:.0f} SET/s ({label}): {share * 100:.3f} % of the server's CPU, "
                  f"SET throughput ratio >= {1 / (1 + share):.4f}")


if __name__ == "__main__":
    main()
