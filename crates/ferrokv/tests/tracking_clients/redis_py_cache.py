"""redis-py's client-side cache against a server, driven by tests/tracking.rs.

Usage: redis_py_cache.py <scenario> <port> [replica_port]

- cache: a RESP3 client with CacheConfig() reads keys another client keeps writing; every
  read after the writer's reply must see the value written (never a stale cached one),
  and reads of unchanged keys must come from the cache (the cache is really used).
- flush: FLUSHALL from another client empties the cache (the null invalidation).
- replica: the cached client reads from a replica while writes go to its master; once the
  replica has applied a write (WAIT), the cached read must see it.

Prints "OK <figures>" on success; any failure raises. Loops are bounded in count and time.
"""
import sys
import time

import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

# redis-py refuses to cache against servers older than 7.4 (a product gate: it reads the
# version HELLO reports). Redis 7.0's tracking protocol is the one it speaks (CLIENT
# TRACKING on, RESP3 invalidation pushes), and ferrokv reports 7.0.15 as Redis does, so
# the gate is lowered to 7.0 for both servers.
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"

ROUNDS = 300
DEADLINE_S = 60


def cached_client(port):
    return redis.Redis(port=port, protocol=3, cache_config=CacheConfig(), socket_timeout=10)


def cache_len(r):
    return len(r.get_cache().collection)


def scenario_cache(port):
    reader = cached_client(port)
    writer = redis.Redis(port=port, socket_timeout=10)
    writer.delete(*[f"k{i}" for i in range(10)])
    started = time.monotonic()
    for n in range(ROUNDS):
        if time.monotonic() - started > DEADLINE_S:
            raise SystemExit("too slow")
        key = f"k{n % 10}"
        value = f"v{n}".encode()
        writer.set(key, value)
        got = reader.get(key)
        if got != value:
            raise SystemExit(f"stale read of {key} at round {n}: {got!r} != {value!r}")
        # A second read is served from the cache (no write in between).
        if reader.get(key) != value:
            raise SystemExit(f"second read of {key} differs at round {n}")
    cached = cache_len(reader)
    if cached == 0:
        raise SystemExit("nothing was ever cached")
    # Reads without writes stay cached: the server sees no GET for them.
    before = int(writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
    for _ in range(50):
        reader.get("k1")
    after = int(writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
    if after - before > 1:
        raise SystemExit(f"cached reads reached the server: {after - before} GETs")
    print(f"OK rounds={ROUNDS} cached_entries={cached} server_gets_for_50_cached_reads={after - before}")


def scenario_flush(port):
    reader = cached_client(port)
    writer = redis.Redis(port=port, socket_timeout=10)
    for i in range(5):
        writer.set(f"f{i}", "x")
        reader.get(f"f{i}")
    if cache_len(reader) == 0:
        raise SystemExit("nothing cached before the flush")
    writer.flushall()
    for i in range(5):
        got = reader.get(f"f{i}")
        if got is not None:
            raise SystemExit(f"f{i} still {got!r} after FLUSHALL")
    print("OK flush")


def scenario_replica(port, replica_port):
    master = redis.Redis(port=port, socket_timeout=10)
    reader = cached_client(replica_port)
    started = time.monotonic()
    for n in range(100):
        if time.monotonic() - started > DEADLINE_S:
            raise SystemExit("too slow")
        key = f"r{n % 5}"
        value = f"v{n}".encode()
        master.set(key, value)
        if master.wait(1, 5000) < 1:
            raise SystemExit("the replica did not acknowledge")
        # The replica acknowledged the write: its invalidation was written before the ACK
        # left, but may still be on its way; give the push a bounded moment.
        deadline = time.monotonic() + 5
        while True:
            got = reader.get(key)
            if got == value:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"replica read of {key} stale at round {n}: {got!r}")
            time.sleep(0.001)
    print(f"OK replica rounds=100 cached_entries={cache_len(reader)}")


def main():
    scenario, port = sys.argv[1], int(sys.argv[2])
    if scenario == "cache":
        scenario_cache(port)
    elif scenario == "flush":
        scenario_flush(port)
    elif scenario == "replica":
        scenario_replica(port, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
