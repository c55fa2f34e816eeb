#!/usr/bin/env python3
"""One worker process of tests/stream_workers.rs: serves the consumer group `workers` of the
stream `jobs` with redis-py (XREADGROUP BLOCK, process, XACK) until the key `stop` exists.

Processing an entry adds its `n` field to the set `processed` and counts it in `processings`.
A worker given crash_after > 0 serves that many batches normally; with the next one it
processes the first entry but acknowledges nothing, prints `HOLDING <ids>` and waits to be
killed by the test, as a worker dies mid-message.

usage: redis_py_worker.py PORT CONSUMER CRASH_AFTER
"""
import sys
import time

import redis

STREAM, GROUP = "jobs", "workers"
# Bounds the worker's life if the test never says stop (or dies without killing it).
LIFETIME_SECONDS = 90


def process(r, fields):
    r.sadd("processed", fields[b"n"])
    r.incr("processings")


def main():
    port, consumer, crash_after = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    deadline = time.monotonic() + LIFETIME_SECONDS
    batches = 0
    while time.monotonic() < deadline:
        if r.exists("stop"):
            return 0
        reply = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=5, block=100)
        if not reply:
            continue
        entries = reply[0][1]
        batches += 1
        if crash_after and batches > crash_after:
            process(r, entries[0][1])
            print("HOLDING " + " ".join(entry_id.decode() for entry_id, _ in entries), flush=True)
            time.sleep(LIFETIME_SECONDS)
            return 3
        for entry_id, fields in entries:
            process(r, fields)
            r.xack(STREAM, GROUP, entry_id)
    return 2


if __name__ == "__main__":
    sys.exit(main())
