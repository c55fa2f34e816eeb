#!/usr/bin/env python3
"""Persistence, side by side: ferrokv and Debian's redis-server on the same machine.

    python3 bench/persistence.py [--rounds 3] [--keys 1000000] [--requests 1000000]
    python3 bench/persistence.py --keys 20000 --requests 20000 --rounds 1   # sanity check

Prints, for each system (medians of the rounds, A/B alternating) and as ratios ferrokv/redis:
  - SET throughput (redis-benchmark -P 16 -c 50) with appendonly no, everysec and always;
  - startup time until PING answers PONG (not -LOADING) for a --keys RDB file, and for an
    AOF of --keys keys in command form (aof-use-rdb-preamble no);
  - BGSAVE of --keys keys while a client overwrites random existing keys: duration, and
    peak memory growth over the pre-BGSAVE level as % of the dataset. Memory is the PSS
    (proportional set size, /proc/PID/smaps_rollup) of the server plus, for Redis, of its
    fork child: pages the child still shares with the parent count once, pages copied on
    write count twice, which is the memory the machine really spends. RSS sums (which count
    shared pages twice) are printed too.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import threading
import time

from common import build_ferrokv, median, redis_tool, resp, Server


def load_keys(srv, keys):
    """keys SETs of key:N -> 16-byte values through redis-cli --pipe, the same bytes for
    both servers (real writes, which reach the AOF, unlike DEBUG POPULATE)."""
    data = b"".join(resp("SET", f"key:{i}", f"value:{i:010d}") for i in range(keys))
    subprocess.run([redis_tool("redis-cli"), "-p", str(srv.port), "--pipe"], input=data, check=True, capture_output=True)


def wait(cond, timeout=600, step=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    raise SystemExit("timed out")


# ---- throughput --------------------------------------------------------------------

MODES = {"no": ["--appendonly", "no"],
         "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
         "always": ["--appendonly", "yes", "--appendfsync", "always"]}


def set_throughput(kind, mode, requests):
    srv = Server(kind, MODES[mode])
    try:
        out = subprocess.run(
            [redis_tool("redis-benchmark"), "-p", str(srv.port), "-c", "50", "-n", str(requests), "-P", "16",
             "-r", "100000", "-t", "set", "--csv"], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells and cells[0].startswith("SET"):
                return float(cells[1])
        raise SystemExit(f"no SET line in redis-benchmark output: {out!r}")
    finally:
        srv.stop()


# ---- startup load time -------------------------------------------------------------

def load_time(kind, fmt, keys):
    extra = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"] if fmt == "aof" else []
    writer = Server(kind, extra)
    data_dir = writer.dir
    try:
        load_keys(writer, keys)
        if fmt == "rdb":
            writer.cli("SAVE")
        else:
            # The writes are in the AOF already; a rewrite makes it one command-form base.
            writer.cli("BGREWRITEAOF")
            wait(lambda: writer.info("persistence").get("aof_rewrite_in_progress") == "0"
                 and writer.info("persistence").get("aof_rewrite_scheduled") == "0")
    finally:
        writer.proc.kill()
        writer.proc.wait()
    reader = Server(kind, extra + ["--dir", data_dir], timeout=600)
    try:
        n = int(reader.cli("DBSIZE").strip())
        if n != keys:
            raise SystemExit(f"{kind} loaded {n} keys from its {fmt}, expected {keys}")
        return reader.startup_seconds
    finally:
        reader.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# ---- BGSAVE under writes -----------------------------------------------------------

def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def proc_kb(pid, field, path="smaps_rollup"):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory(pid):
    """(PSS, RSS) of a process and its children (Redis's fork child), in bytes."""
    pids = [pid] + children(pid)
    pss = sum(proc_kb(p, "Pss") for p in pids)
    rss = sum(proc_kb(p, "VmRSS", "status") for p in pids)
    return pss, rss


class Overwriter(threading.Thread):
    """Overwrites random existing keys in pipelines of 100 until stopped."""

    def __init__(self, port, keys):
        super().__init__(daemon=True)
        self.port, self.keys, self.stop_flag, self.count = port, keys, threading.Event(), 0

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        rnd = random.Random(1)
        deadline = time.time() + 600
        while not self.stop_flag.is_set() and time.time() < deadline:
            batch = b"".join(resp("SET", f"key:{rnd.randrange(self.keys)}", "overwritten-value") for _ in range(100))
            s.sendall(batch)
            got = 0
            while got < 100:
                chunk = s.recv(65536)
                if not chunk:
                    return
                got += chunk.count(b"\r\n")
            self.count += 100
        s.close()


def bgsave_under_writes(kind, keys):
    srv = Server(kind)
    try:
        empty = int(srv.info()["used_memory"])
        load_keys(srv, keys)
        dataset = int(srv.info()["used_memory"]) - empty
        writer = Overwriter(srv.port, keys)
        writer.start()
        time.sleep(0.5)
        base_pss, base_rss = memory(srv.proc.pid)
        peak_pss, peak_rss = base_pss, base_rss
        start, count_before = time.time(), writer.count
        srv.cli("BGSAVE")
        done = False
        while not done and time.time() - start < 600:
            pss, rss = memory(srv.proc.pid)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            done = srv.info("persistence").get("rdb_bgsave_in_progress") == "0"
            time.sleep(0.01)
        duration = time.time() - start
        writes = writer.count - count_before
        writer.stop_flag.set()
        writer.join(timeout=10)
        if srv.info("persistence").get("rdb_last_bgsave_status") != "ok":
            raise SystemExit(f"{kind}: BGSAVE failed")
        return {"duration": duration,
                "pss_growth": 100.0 * (peak_pss - base_pss) / dataset,
                "rss_growth": 100.0 * (peak_rss - base_rss) / dataset,
                "writes": writes / duration}
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--requests", type=int, default=1000000)
    args = ap.parse_args()
    build_ferrokv()
    kinds = ["ferrokv", "redis"]

    def rounds(fn):
        res = {k: [] for k in kinds}
        for r in range(args.rounds):
            for k in (kinds if r % 2 == 0 else kinds[::-1]):
                res[k].append(fn(k))
        return res

    def row(label, unit, res, fmt="{:>12.3f}", better="lower"):
        f, r = median(res["ferrokv"]), median(res["redis"])
        ratio = f / r if r else float("nan")
        print(f"{label:34} {unit:>8} {fmt.format(f)} {fmt.format(r)} {ratio:>7.2f}  ({better} is better)")

    print(f"\nkeys={args.keys} requests={args.requests} rounds={args.rounds} (medians)")
    print(f"{'':34} {'unit':>8} {'ferrokv':>12} {'redis':>12} {'ratio':>7}")
    for mode in MODES:
        row(f"SET -P 16 appendonly {mode}", "ops/s",
            rounds(lambda k, m=mode: set_throughput(k, m, args.requests)), "{:>12.0f}", "higher")
    for fmt in ("rdb", "aof"):
        row(f"startup with a {args.keys}-key {fmt.upper()}", "s", rounds(lambda k, f=fmt: load_time(k, f, args.keys)))
    bg = rounds(lambda k: bgsave_under_writes(k, args.keys))
    pick = lambda field: {k: [r[field] for r in bg[k]] for k in kinds}  # noqa: E731
    row("BGSAVE duration under writes", "s", pick("duration"))
    row("BGSAVE peak PSS growth", "% data", pick("pss_growth"), "{:>12.1f}")
    row("BGSAVE peak RSS-sum growth", "% data", pick("rss_growth"), "{:>12.1f}")
    row("overwrites during BGSAVE", "ops/s", pick("writes"), "{:>12.0f}", "higher")


if __name__ == "__main__":
    main()
