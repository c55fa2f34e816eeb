#!/usr/bin/env python3
"""Failover under faults, side by side: ferrokv stacks (ferrokv servers watched by ferrokv
sentinels) against the Redis stack (redis-server watched by redis-sentinel), same settings:
1 master + 2 replicas, 3 sentinels (quorum 2, down-after 1000 ms), writer threads recording
every OK, N rounds per scenario, stacks alternating.

    python3 bench/failover.py [--rounds 3] [--scenarios kill,pause,partition,linkcut,empty]
                              [--stacks ferrokv-sync,ferrokv,redis] [--master-side-writers 1]

Scenarios (the fault hits the master while the writers run):
  kill       kill -9
  pause      SIGSTOP for --pause-seconds (10), then SIGCONT (its late OKs count)
  partition  the master's network cut for --partition-seconds (20), then healed; the master
             runs alone in a network namespace joined to the root one by a veth pair, the
             replicas, sentinels and writers in the root namespace (needs root)
  linkcut    the master's network cut, kill -9 --linkcut-kill-ms (200) later (needs root)
  empty      kill -9 and an immediate restart without persistence (empty dataset)

Stacks:
  ferrokv-sync  ferrokv servers with `sync-replicas 1` + ferrokv sentinels
  ferrokv       ferrokv, asynchronous (the default configuration)
  redis         redis-server + redis-sentinel
  ferrokv-zero, redis-zero (not in the default set): every SET followed by
                `WAIT <--wait-replicas> <--wait-timeout>`, counted only when WAIT confirms

Writers: one thread per --writer-timeouts entry (default 0.5,0.5,30 s socket timeouts:
quick failure detection, and one patient client like redis-py's default, which stays on a
stalled connection and receives a paused or partitioned master's late OKs), each through
redis-py's Sentinel client, unique keys; --master-side-writers N adds N threads inside the
master's namespace (partition, linkcut), clients cut off along with the master. Before the
writers, --preload keys (20,000) are written on the master and replicated.

After the fault (and the heal, SIGCONT or restart), the round waits until the sentinels
agree on a master and every live server replicates from it (stable for 2 s, at most
--converge-timeout), lets the writers run --settle s more, stops them, and reads every
acknowledged key back. Per round and stack:
  lost     acknowledged writes (writers' and preload) missing or holding another value on
           the final master found through the sentinels
  on-repl  the same on the worst other live server, once it caught up
  preload  of `lost`, preload keys (what an empty master wiping its replicas costs)
  write    fault -> first OK of a write issued after the fault that the final master still
           has (a write a doomed old master acknowledged does not show the group serving)
  switch   fault -> first +switch-master published by any sentinel (none: no failover);
           `FAILOVERS n` when the sentinels switched more than once
and the lost writes broken down by writer thread and the node that acknowledged them.
Prints medians per scenario and stack, and ratios to Redis (lower is better). Round
directories (logs, configs) are kept under --keep-dir when a ferrokv-sync round loses an
acknowledged write (with --keep-losses: any round that loses) or a round does not converge. Requires redis-server, redis-sentinel and
redis-py.
"""

import argparse
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_ferrokv, median, redis_tool  # noqa: E402
from failover_stack import LOCALHOST, Netns, Placement, Stack, redis, wait  # noqa: E402
from failover_writers import Writers, count_lost, preload  # noqa: E402

SCENARIOS = ("kill", "pause", "partition", "linkcut", "empty")
NETNS_SCENARIOS = ("partition", "linkcut")
# stack -> (server family, sync-replicas, WAIT after each write)
STACKS = {
    "ferrokv-sync": ("ferrokv", 1, False),
    "ferrokv": ("ferrokv", 0, False),
    "redis": ("redis", 0, False),
    "ferrokv-zero": ("ferrokv", 0, True),
    "redis-zero": ("redis", 0, True),
}
RATIOS = (("ferrokv-sync", "redis"), ("ferrokv", "redis"), ("ferrokv-zero", "redis-zero"))


def watch_switch(stack):
    """(time, message) of every +switch-master any sentinel publishes (the leader's comes
    first; the others learn it from hellos up to 2 s later)."""
    seen = []
    ready = []

    def listen(sentinel):
        try:
            # No socket timeout: a quiet channel is not an error.
            pubsub = redis.Redis(host=LOCALHOST, port=sentinel.port, decode_responses=True).pubsub()
            pubsub.subscribe("+switch-master")
            for msg in pubsub.listen():
                if msg["type"] == "subscribe":
                    ready.append(sentinel)
                elif msg["type"] == "message":
                    seen.append((time.monotonic(), msg["data"]))
        except (redis.exceptions.RedisError, OSError, ValueError):
            return  # the sentinel was stopped
    for s in stack.sentinels:
        threading.Thread(target=listen, args=(s,), daemon=True).start()
    wait(lambda: len(ready) == len(stack.sentinels), 10, "+switch-master subscriptions")
    return seen


def inject(scenario, stack, netns, args):
    """Applies the fault and ends it (heal, SIGCONT, restart); returns when it hit."""
    master = stack.master
    if scenario == "kill":
        master.kill()
        return time.monotonic()
    if scenario == "pause":
        master.signal(signal.SIGSTOP)
        at = time.monotonic()
        time.sleep(args.pause_seconds)
        master.signal(signal.SIGCONT)
        return at
    if scenario == "partition":
        netns.cut()
        at = time.monotonic()
        time.sleep(args.partition_seconds)
        netns.heal()
        return at
    if scenario == "linkcut":
        netns.cut()
        at = time.monotonic()
        time.sleep(args.linkcut_kill_ms / 1000)
        master.kill()
        netns.heal()
        return at
    if scenario == "empty":
        at = time.monotonic()
        master.restart_empty()
        return at
    raise ValueError(scenario)


def wait_converged(stack, timeout, stable=2.0):
    """The master the group settled on (stable for `stable` s), or None after `timeout`."""
    deadline = time.monotonic() + timeout
    since, last = None, None
    while time.monotonic() < deadline:
        try:
            m = stack.converged()
        except (redis.exceptions.RedisError, OSError):
            m = None
        if m is not None and m is last:
            if time.monotonic() - since >= stable:
                return m
        else:
            since, last = time.monotonic(), m
        time.sleep(0.2)
    return None


def one_round(scenario, name, args, netns, label):
    family, sync, zero = STACKS[name]
    if scenario in NETNS_SCENARIOS:
        master_at = Placement(netns.inner_addr, netns.prefix())
        others_at = Placement(netns.root_addr)
    else:
        master_at = others_at = Placement()
    stack = Stack(family, sync, master_at, others_at, args)
    keep = None
    writers = None
    try:
        preloaded = preload(stack.master, args.preload)
        if not stack.wait_caught_up(stack.master, 20):
            raise SystemExit(f"{label}: replicas did not catch up with the preload")
        switches = watch_switch(stack)
        writers = Writers(stack, zero, args, netns if scenario in NETNS_SCENARIOS else None)
        wait(lambda: writers.acked_count() > 0, 10, "a first acknowledged write")
        time.sleep(args.load_seconds)
        fault_at = inject(scenario, stack, netns, args)
        final = wait_converged(stack, args.converge_timeout)
        converged = final is not None
        time.sleep(args.settle)
        snapshot, stuck = writers.stop(max(args.writer_timeouts) + 2)
        if final is None:
            final = stack.agreed_master() or stack.master
        stack.wait_caught_up(final, 15)
        lost_w, lost_p, first, by_node = count_lost(final, snapshot, preloaded, fault_at)
        on_repl = 0
        for n in stack.servers:
            if n is not final and n.alive():
                try:
                    w, p, _, _ = count_lost(n, snapshot, preloaded, fault_at)
                    on_repl = max(on_repl, w + p)
                except (redis.exceptions.RedisError, OSError):
                    on_repl = None  # unreadable (e.g. still loading): not a count
                    break
        after = [t - fault_at for t, _ in switches if t >= fault_at]
        # Every sentinel publishes each switch: distinct messages are distinct failovers.
        switched = sorted({(round(t - fault_at, 2), data) for t, data in switches if t >= fault_at})
        failovers = len({data for _, data in switched})
        res = {
            "lost": lost_w + lost_p,
            "preload": lost_p,
            "on_repl": on_repl,
            "write": first,
            "switch": min(after) if after else None,
            "failovers": failovers,
            "switched": switched,
            "acked": sum(len(a) for _, a in snapshot) + preloaded,
            "errors": writers.errors(),
            "stuck": stuck,
            "by_node": by_node,
            "old_master": f"{stack.master.host}:{stack.master.port}",
            "converged": converged,
            "final": f"{final.host}:{final.port}" + (" (old master)" if final is stack.master else ""),
        }
        if not converged or failovers > 1 or ((sync or args.keep_losses) and (res["lost"] or on_repl)):
            keep = os.path.join(args.keep_dir, label.replace(" ", "-"))
            res["kept"] = keep
        return res
    except BaseException:
        keep = os.path.join(args.keep_dir, label.replace(" ", "-"))
        print(f"{label}: failed, logs kept in {keep}", file=sys.stderr)
        raise
    finally:
        if writers is not None:
            writers.stop(0)  # a failed round's writers must not outlive it
        stack.stop(keep)


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def print_round(label, res):
    errs = ",".join(f"{k}={v}" for k, v in sorted(res["errors"].items())) or "none"
    line = (f"{label:34s} lost {res['lost']}/{res['acked']} (preload {res['preload']}, on-repl {res['on_repl']})"
            f"  write {fmt(res['write'])}s  switch {fmt(res['switch'])}s  final {res['final']}  errors {errs}")
    if res["failovers"] > 1:
        line += f"  FAILOVERS {res['failovers']}: " + "; ".join(f"{t}s {d}" for t, d in res["switched"])
    if res["by_node"]:
        line += f"\n    lost writes by writer@acknowledging node (old master {res['old_master']}): " + ", ".join(
            f"{k}={v}" for k, v in sorted(res["by_node"].items()))
    if res["stuck"]:
        line += f"  stuck-writers {res['stuck']}"
    if not res["converged"]:
        line += "  NOT CONVERGED"
    if res.get("kept"):
        line += f"  kept {res['kept']}"
    print(line, flush=True)


def summarize(scenario, results, stacks):
    """Rows of medians, one per stack; times as medians of the rounds that have one."""
    rows = []
    for s in stacks:
        xs = results[s]
        writes = [x["write"] for x in xs if x["write"] is not None]
        switches = [x["switch"] for x in xs if x["switch"] is not None]
        on_repl = [x["on_repl"] for x in xs if x["on_repl"] is not None]
        rows.append({
            "scenario": scenario, "stack": s, "rounds": len(xs),
            "lost": median([x["lost"] for x in xs]), "lost_max": max(x["lost"] for x in xs),
            "preload": median([x["preload"] for x in xs]),
            "on_repl_max": max(on_repl) if on_repl else None,
            "write": median(writes) if writes else None, "writes": len(writes),
            "switch": median(switches) if switches else None, "switches": len(switches),
            "acked": median([x["acked"] for x in xs]),
            "unconverged": sum(1 for x in xs if not x["converged"]),
        })
    return rows


def print_table(rows):
    print("\n| scenario | stack | lost (median) | lost (max) | of which preload | worst other node (max) "
          "| fault to first write s | fault to +switch-master s | acked | ratio write | ratio switch |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by = {(r["scenario"], r["stack"]): r for r in rows}
    for r in rows:
        ratio_w = ratio_s = "-"
        for a, b in RATIOS:
            other = by.get((r["scenario"], b))
            if r["stack"] == a and other:
                if r["write"] is not None and other["write"]:
                    ratio_w = f"{r['write'] / other['write']:.2f}"
                if r["switch"] is not None and other["switch"]:
                    ratio_s = f"{r['switch'] / other['switch']:.2f}"
        n = r["rounds"]
        write = fmt(r["write"]) + ("" if r["writes"] == n else f" ({r['writes']}/{n})")
        switch = fmt(r["switch"]) + ("" if r["switches"] == n else f" ({r['switches']}/{n})")
        stack = r["stack"] + (f" ({r['unconverged']} not converged)" if r["unconverged"] else "")
        print(f"| {r['scenario']} | {stack} | {r['lost']:.0f} | {r['lost_max']} | {r['preload']:.0f} "
              f"| {'-' if r['on_repl_max'] is None else r['on_repl_max']} | {write} | {switch} "
              f"| {r['acked']:.0f} | {ratio_w} | {ratio_s} |")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default="kill", help=f"comma-separated, from {', '.join(SCENARIOS)}")
    ap.add_argument("--stacks", default="ferrokv-sync,ferrokv,redis", help=f"comma-separated, from {', '.join(STACKS)}")
    ap.add_argument("--down-after", type=int, default=1000)
    ap.add_argument("--failover-timeout", type=int, default=6000)
    ap.add_argument("--load-seconds", type=float, default=1.0, help="writes before the fault")
    ap.add_argument("--pause-seconds", type=float, default=10.0)
    ap.add_argument("--partition-seconds", type=float, default=20.0)
    ap.add_argument("--linkcut-kill-ms", type=int, default=200)
    ap.add_argument("--preload", type=int, default=20000)
    ap.add_argument("--writer-timeouts", default="0.5,0.5,30", help="one writer thread per socket timeout (s)")
    ap.add_argument("--master-side-writers", type=int, default=0,
                    help="writer threads in the master's namespace (partition, linkcut)")
    ap.add_argument("--writer-limit", type=float, default=240, help="seconds a writer runs at most")
    ap.add_argument("--converge-timeout", type=float, default=60)
    ap.add_argument("--settle", type=float, default=1.0, help="writes after convergence")
    ap.add_argument("--keep-dir", default="/tmp/ferrokv-failover-bench")
    ap.add_argument("--keep-losses", action="store_true", help="keep the directories of every round that lost")
    ap.add_argument("--wait-replicas", type=int, default=1, help="-zero stacks: WAIT numreplicas")
    ap.add_argument("--wait-timeout", type=int, default=1000, help="-zero stacks: WAIT timeout (ms)")
    args = ap.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.stacks = [s for s in args.stacks.split(",") if s]
    args.writer_timeouts = [float(t) for t in args.writer_timeouts.split(",") if t]
    for s in args.scenarios:
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s}: choose from {', '.join(SCENARIOS)}")
    for s in args.stacks:
        if s not in STACKS:
            raise SystemExit(f"unknown stack {s}: choose from {', '.join(STACKS)}")
    if not args.writer_timeouts:
        raise SystemExit("--writer-timeouts: at least one writer")
    return args


def main():
    args = parse_args()
    if any(STACKS[s][0] == "redis" for s in args.stacks):
        for tool in ("redis-server", "redis-sentinel"):
            redis_tool(tool)  # exits with a message if missing, or if it is ferrokv
    build_ferrokv()
    netns = Netns() if any(s in NETNS_SCENARIOS for s in args.scenarios) else None
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M")
    try:
        for scenario in args.scenarios:
            results = {s: [] for s in args.stacks}
            for r in range(args.rounds):
                order = args.stacks if r % 2 == 0 else list(reversed(args.stacks))
                for name in order:
                    label = f"{scenario} round {r + 1} {name}"
                    res = one_round(scenario, name, args, netns, label)
                    results[name].append(res)
                    print_round(label, res)
            rows += summarize(scenario, results, args.stacks)
    finally:
        if netns is not None:
            netns.delete()
    print(f"\nstarted {started}, {args.rounds} rounds, down-after {args.down_after} ms, writers "
          f"{','.join(map(str, args.writer_timeouts))} s timeouts, {args.master_side_writers} master-side, "
          f"preload {args.preload}")
    print_table(rows)


if __name__ == "__main__":
    main()
