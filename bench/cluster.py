#!/usr/bin/env python3
"""A 3-master ferrokv cluster against a 3-master redis-server cluster on the same machine
(issue 17's measurement): each made by `redis-cli --cluster create`, then
`redis-benchmark --cluster` SET and GET at -P 16 (-c 50, random keys over all slots), A/B
rounds alternating which cluster goes first; with --failover, also the time from kill -9
of a master (node-timeout 2000 ms, one replica per master) to its replica answering as a
master; with --reshard, the time `redis-cli --cluster reshard` takes to move every slot
(and --keys keys, default 1,000,000) of one master of a 3-master cluster to another;
with --steps N, the latency of each command of redis-cli's per-slot sequence
(clusterManagerMoveSlot: SETSLOT IMPORTING on the target, MIGRATING on the source,
GETKEYSINSLOT and MIGRATE of --keys-per-slot keys 10 at a time, SETSLOT NODE on the
target, the source and the third master) over N slots, to see where a reshard's time goes.
Prints medians and ratios (ferrokv / redis).

    python3 bench/cluster.py [--rounds 3] [--requests 200000] [--failover | --failover-only]
                             [--reshard [--keys 1000000]] [--steps 200 [--keys-per-slot 20]]
"""

import argparse
import re
import socket
import subprocess
import time

from common import FERROKV, Server, build_ferrokv, free_port, median, read_line, redis_tool, resp

NODE_TIMEOUT_MS = 2000


def start_cluster(kind, masters, replicas):
    nodes = []
    for _ in range(masters * (1 + replicas)):
        extra = ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        nodes.append(Server(kind, extra))
    addrs = [f"127.0.0.1:{n.port}" for n in nodes]
    subprocess.run([redis_tool("redis-cli"), "--cluster", "create"] + addrs +
                   ["--cluster-replicas", str(replicas), "--cluster-yes"],
                   check=True, capture_output=True, text=True, timeout=120)
    deadline = time.time() + 30
    while time.time() < deadline:
        if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes):
            return nodes
        time.sleep(0.1)
    raise SystemExit(f"{kind} cluster did not reach cluster_state:ok")


def bench(port, test, requests):
    out = subprocess.run([redis_tool("redis-benchmark"), "--cluster", "-p", str(port), "-t", test, "-P", "16",
                          "-c", "50", "-n", str(requests), "-r", "1000000", "-q"],
                         check=True, capture_output=True, text=True, timeout=600).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    if not found:
        raise SystemExit(f"no result from redis-benchmark:\n{out}")
    return float(found[-1])


def failover_seconds(kind):
    nodes = start_cluster(kind, 3, 1)
    try:
        master = next(n for n in nodes if "myself,master" in n.cli("CLUSTER", "NODES"))
        my_id = master.cli("CLUSTER", "MYID").strip()
        replica = next(n for n in nodes if any("myself,slave" in line and my_id in line
                                              for line in n.cli("CLUSTER", "NODES").splitlines()))
        # A replica that never synced does not fail over (its data is "too old").
        deadline = time.time() + 30
        while "master_link_status:up" not in replica.cli("INFO", "replication"):
            if time.time() > deadline:
                raise SystemExit(f"{kind}: the replica did not sync")
            time.sleep(0.05)
        time.sleep(1)
        killed = time.time()
        master.proc.kill()
        master.proc.wait()
        deadline = killed + 30
        while time.time() < deadline:
            if "myself,master" in replica.cli("CLUSTER", "NODES"):
                return time.time() - killed
            time.sleep(0.02)
        raise SystemExit(f"{kind}: no promotion within 30 s")
    finally:
        for n in nodes:
            n.stop()


def _crc16_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


CRC16_TABLE = _crc16_table()


def crc16(data):
    """CRC16-XMODEM, the slot hash of Redis Cluster (keys here have no hash tags), a byte
    at a time from a table: 1,000,000 keys of the source's slots take ~3,000,000 hashes."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC16_TABLE[(crc >> 8) ^ byte]
    return crc


def reshard_seconds(kind, keys):
    nodes = start_cluster(kind, 3, 0)  # redis-cli creates no cluster under 3 masters
    try:
        source = next(n for n in nodes if "0-5460" in n.cli("CLUSTER", "NODES").split("myself")[1].splitlines()[0])
        target = next(n for n in nodes if n is not source)
        # Every key in the source's slots (0-5460), loaded through redis-cli --pipe.
        payload, loaded, i = [], 0, 0
        while loaded < keys:
            key = f"k:{i}".encode()
            i += 1
            if crc16(key) % 16384 < 5461:
                payload.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$8\r\nxxxxxxxx\r\n" % (len(key), key))
                loaded += 1
        subprocess.run([redis_tool("redis-cli"), "-p", str(source.port), "--pipe"], input=b"".join(payload),
                       check=True, capture_output=True, timeout=600)
        dbsize = int(source.cli("DBSIZE").strip())
        if dbsize != keys:
            raise SystemExit(f"{kind}: loaded {dbsize} keys, not {keys}")
        source_id, target_id = source.cli("CLUSTER", "MYID").strip(), target.cli("CLUSTER", "MYID").strip()
        started = time.time()
        subprocess.run([redis_tool("redis-cli"), "--cluster", "reshard", f"127.0.0.1:{source.port}",
                        "--cluster-from", source_id, "--cluster-to", target_id, "--cluster-slots", "5461",
                        "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, timeout=1800)
        elapsed = time.time() - started
        moved = int(target.cli("DBSIZE").strip())
        if moved != keys:
            raise SystemExit(f"{kind}: {moved} keys on the target after resharding, not {keys}")
        return elapsed
    finally:
        for n in nodes:
            n.stop()


def read_reply(sock, buf):
    """One RESP2 reply (nested arrays included), bounded in time by the socket's timeout."""
    head = read_line(sock, buf)
    kind, rest = head[:1], head[1:]
    if kind == b"-":
        raise SystemExit(f"error reply: {head!r}")
    if kind == b"*":
        return [read_reply(sock, buf) for _ in range(max(int(rest), 0))]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        while len(buf[0]) < n + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("server closed the connection")
            buf[0] += chunk
        data, buf[0] = buf[0][:n], buf[0][n + 2:]
        return data
    return rest


STEPS = ("setslot importing", "setslot migrating", "getkeysinslot", "migrate", "setslot node target",
         "setslot node source", "setslot node other")


def step_latencies(kind, slots, keys_per_slot):
    """Milliseconds per step of redis-cli's per-slot sequence, one list per step."""
    nodes = start_cluster(kind, 3, 0)
    try:
        source = next(n for n in nodes if "0-5460" in n.cli("CLUSTER", "NODES").split("myself")[1].splitlines()[0])
        target, other = [n for n in nodes if n is not source]
        ids = {n.port: n.cli("CLUSTER", "MYID").strip() for n in nodes}
        conns = {}
        for n in nodes:
            sock = socket.create_connection(("127.0.0.1", n.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(60)
            conns[n.port] = (sock, [b""])

        def call(node, *args):
            sock, buf = conns[node.port]
            sock.sendall(resp(*args))
            return read_reply(sock, buf)

        # keys_per_slot keys in each of the first slots: a hash tag per slot.
        tags, i = {}, 0
        while len(tags) < slots:
            slot = crc16(b"%d" % i) % 16384
            if slot < slots and slot not in tags:
                tags[slot] = b"%d" % i
            i += 1
        for slot, tag in tags.items():
            for k in range(keys_per_slot):
                call(source, "SET", b"{%s}:%d" % (tag, k), "xxxxxxxx")
        times = {step: [] for step in STEPS}
        for slot in range(slots):
            t = [time.perf_counter()]
            call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
            t.append(time.perf_counter())
            call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
            t.append(time.perf_counter())
            keys = call(source, "CLUSTER", "GETKEYSINSLOT", slot, keys_per_slot)
            t.append(time.perf_counter())
            for first in range(0, len(keys), 10):
                call(source, "MIGRATE", "127.0.0.1", target.port, "", 0, 60000, "KEYS", *keys[first:first + 10])
            t.append(time.perf_counter())
            for node in (target, source, other):
                call(node, "CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
                t.append(time.perf_counter())
            for step, (a, b) in zip(STEPS, zip(t, t[1:])):
                times[step].append((b - a) * 1000)
        moved = int(target.cli("DBSIZE").strip())
        if moved != slots * keys_per_slot:
            raise SystemExit(f"{kind}: {moved} keys moved, not {slots * keys_per_slot}")
        return times
    finally:
        for n in nodes:
            n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--failover", action="store_true")
    ap.add_argument("--failover-only", action="store_true", help="skip SET/GET")
    ap.add_argument("--reshard", action="store_true", help="only the resharding time")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--steps", type=int, default=0, help="time each step of the per-slot sequence over N slots")
    ap.add_argument("--keys-per-slot", type=int, default=20)
    args = ap.parse_args()
    build_ferrokv()
    print(f"ferrokv: {FERROKV}")
    if args.steps:
        times = {kind: step_latencies(kind, args.steps, args.keys_per_slot) for kind in ("ferrokv", "redis")}
        print(f"per-slot steps over {args.steps} slots, {args.keys_per_slot} keys each (median ms):")
        print(f"{'step':<22}{'ferrokv':>10}{'redis':>10}{'ratio':>8}")
        for step in STEPS + ("whole slot",):
            if step == "whole slot":
                f = median([sum(v) for v in zip(*times["ferrokv"].values())])
                r = median([sum(v) for v in zip(*times["redis"].values())])
            else:
                f, r = median(times["ferrokv"][step]), median(times["redis"][step])
            print(f"{step:<22}{f:>10.3f}{r:>10.3f}{f / r:>8.2f}")
        return
    if args.reshard:
        # Interleaved rounds, alternating which server goes first (the machine's load drifts).
        times = {"ferrokv": [], "redis": []}
        for r in range(args.rounds):
            for kind in (("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")):
                times[kind].append(reshard_seconds(kind, args.keys))
            print(f"round {r + 1}: ferrokv {times['ferrokv'][-1]:.2f} s, redis {times['redis'][-1]:.2f} s", flush=True)
        f, r = median(times["ferrokv"]), median(times["redis"])
        print(f"reshard of 5461 slots, {args.keys} keys: ferrokv {f:.2f} s, redis {r:.2f} s, ratio {f / r:.2f}")
        return
    if not args.failover_only:
        throughput(args)
    if args.failover or args.failover_only:
        times = {kind: [failover_seconds(kind) for _ in range(args.rounds)] for kind in ("ferrokv", "redis")}
        f, r = median(times["ferrokv"]), median(times["redis"])
        print(f"failover after kill -9 (node-timeout {NODE_TIMEOUT_MS} ms): ferrokv {f:.2f} s, "
              f"redis {r:.2f} s, ratio {f / r:.2f}")


def throughput(args):
    results = {(kind, test): [] for kind in ("ferrokv", "redis") for test in ("set", "get")}
    clusters = {kind: start_cluster(kind, 3, 0) for kind in ("ferrokv", "redis")}
    try:
        for r in range(args.rounds):
            order = ("ferrokv", "redis") if r % 2 == 0 else ("redis", "ferrokv")
            for test in ("set", "get"):
                for kind in order:
                    results[(kind, test)].append(bench(clusters[kind][0].port, test, args.requests))
    finally:
        for nodes in clusters.values():
            for n in nodes:
                n.stop()
    print(f"{'test':<10}{'ferrokv ops/s':>16}{'redis ops/s':>16}{'ratio':>8}")
    for test in ("set", "get"):
        f, r = median(results[("ferrokv", test)]), median(results[("redis", test)])
        print(f"{test + ' -P16':<10}{f:>16,.0f}{r:>16,.0f}{f / r:>8.2f}")


if __name__ == "__main__":
    main()
