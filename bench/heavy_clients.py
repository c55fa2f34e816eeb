#!/usr/bin/env python3
"""Memory under misbehaving clients, ferrokv vs redis-server, alternating rounds.

subscriber: a client subscribes with a 4 KB receive window and never reads while another
  publishes 10 KB messages (default `client-output-buffer-limit pubsub 32mb 8mb 60`).
  Reports how many messages went out before the server dropped the subscriber and the
  server's peak RSS growth meanwhile.
frozen-replica: master + replica of the same kind, `client-output-buffer-limit replica
  32mb 0 0`, `repl-backlog-size 1mb`; the replica is SIGSTOPped while the master takes
  30 KB SETs until it drops the replica. Reports the master's peak replication-buffer
  memory (INFO mem_total_replication_buffers) and peak RSS growth beyond the dataset's
  own growth (used_memory_dataset), then the time the replica needs to resync after SIGCONT.

Ratios are ferrokv / redis (lower is better for memory and time).
"""

import argparse
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_ferrokv, median, resp, Server  # noqa: E402


class Conn:
    def __init__(self, port, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.line()


def subscriber_round(kind, max_messages):
    srv = Server(kind)
    try:
        sub = Conn(srv.port, rcvbuf=4096)
        sub.s.sendall(resp("SUBSCRIBE", "news"))
        while b"news" not in sub.buf:
            sub.buf += sub.s.recv(4096)
        pub = Conn(srv.port)
        payload = b"x" * 10_000
        base = srv.rss()
        peak = base
        sent = 0
        for i in range(max_messages):
            n = int(pub.call("PUBLISH", "news", payload)[1:])
            sent = i
            if n == 0:
                break
            if i % 100 == 0:
                peak = max(peak, srv.rss())
        peak = max(peak, srv.rss())
        sub.s.close()
        return {"messages": sent, "rss_growth_mb": (peak - base) / 2**20}
    finally:
        srv.stop()


def frozen_replica_round(kind, max_writes):
    limits = ["--client-output-buffer-limit", "replica 32mb 0 0", "--repl-backlog-size", "1mb",
              "--repl-diskless-sync-delay", "0"]
    master = Server(kind, limits)
    replica = Server(kind, ["--replicaof", "127.0.0.1", str(master.port)])
    try:
        deadline = time.time() + 30
        while replica.info("replication").get("master_link_status") != "up":
            if time.time() > deadline:
                raise SystemExit(f"{kind}: replica never synced")
            time.sleep(0.05)
        c = Conn(master.port)
        base_rss = master.rss()
        base_dataset = int(master.info("memory")["used_memory_dataset"])
        os.kill(replica.proc.pid, signal.SIGSTOP)
        value = b"v" * 30_000
        peak_growth = 0
        peak_buffers = 0
        for i in range(max_writes):
            c.call("SET", f"k{i}", value)
            if i % 20 == 0:
                mem = master.info("memory")
                dataset_growth = int(mem["used_memory_dataset"]) - base_dataset
                peak_growth = max(peak_growth, master.rss() - base_rss - dataset_growth)
                peak_buffers = max(peak_buffers, int(mem["mem_total_replication_buffers"]))
                if master.info("replication").get("connected_slaves") == "0":
                    break
        os.kill(replica.proc.pid, signal.SIGCONT)
        started = time.time()
        offset = master.info("replication")["master_repl_offset"]
        while True:
            r = replica.info("replication")
            if r.get("master_link_status") == "up" and r.get("slave_repl_offset") == offset:
                break
            if time.time() - started > 120:
                raise SystemExit(f"{kind}: replica did not resync")
            time.sleep(0.05)
        return {"buffers_mb": peak_buffers / 2**20, "rss_over_dataset_mb": peak_growth / 2**20,
                "resync_s": time.time() - started}
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
        replica.stop()
        master.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=20_000, help="bound on published messages per round")
    ap.add_argument("--writes", type=int, default=10_000, help="bound on SETs per frozen-replica round")
    args = ap.parse_args()
    build_ferrokv()
    results = {("subscriber", k): [] for k in ("ferrokv", "redis")}
    results.update({("frozen-replica", k): [] for k in ("ferrokv", "redis")})
    for r in range(args.rounds):
        order = ("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")
        for kind in order:
            results[("subscriber", kind)].append(subscriber_round(kind, args.messages))
            results[("frozen-replica", kind)].append(frozen_replica_round(kind, args.writes))
    for scenario in ("subscriber", "frozen-replica"):
        metrics = results[(scenario, "ferrokv")][0].keys()
        print(f"\n{scenario} ({args.rounds} rounds, medians)")
        print(f"{'metric':<22}{'ferrokv':>10}{'redis':>10}{'ratio':>8}")
        for m in metrics:
            f = median([x[m] for x in results[(scenario, "ferrokv")]])
            rd = median([x[m] for x in results[(scenario, "redis")]])
            ratio = f / rd if rd else float("nan")
            print(f"{m:<22}{f:>10.2f}{rd:>10.2f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
