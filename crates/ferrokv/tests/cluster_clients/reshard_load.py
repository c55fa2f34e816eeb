"""A bounded write load through redis-py's RedisCluster while slots are resharded under it.

Usage: reshard_load.py <seed-port> <stop-file> <max-seconds>

Writes `load:<i>` = i and INCRs a few counters until <stop-file> exists (or <max-seconds>
or 200,000 writes pass), re-reading an earlier key every tenth write. RedisCluster follows
MOVED and ASK (and retries TRYAGAIN) itself, so any exception that reaches this script is
a client error. Then reads every key back. Prints "OK <summary>" only if nothing failed.
"""

import os
import sys
import time

from redis.cluster import RedisCluster

MAX_WRITES = 200_000
COUNTERS = 50


def main():
    port, stop_file, max_seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    rc = RedisCluster(host="127.0.0.1", port=port, socket_timeout=5, cluster_error_retry_attempts=10)
    errors = []
    counter_totals = [0] * COUNTERS
    written = 0
    deadline = time.monotonic() + max_seconds
    while written < MAX_WRITES and time.monotonic() < deadline and not os.path.exists(stop_file):
        try:
            rc.set(f"load:{written}", str(written))
            counter = written % COUNTERS
            rc.incr(f"load:counter:{counter}")
            counter_totals[counter] += 1
            if written % 10 == 9:
                earlier = written // 2
                value = rc.get(f"load:{earlier}")
                if value != str(earlier).encode():
                    errors.append(f"GET load:{earlier} returned {value!r} during the load")
        except Exception as e:  # every exception here is one the client did not absorb
            errors.append(f"write {written}: {type(e).__name__}: {e}")
            if len(errors) >= 20:
                break
        written += 1
    missing = 0
    for i in range(written):
        if rc.get(f"load:{i}") != str(i).encode():
            missing += 1
            if len(errors) < 40:
                errors.append(f"load:{i} lost or wrong after the load")
    for counter, total in enumerate(counter_totals):
        value = rc.get(f"load:counter:{counter}")
        if int(value or 0) != total:
            errors.append(f"load:counter:{counter} is {value!r}, expected {total}")
    if errors:
        print(f"FAILED after {written} writes, {missing} keys missing:")
        print("\n".join(errors))
        sys.exit(1)
    print(f"OK {written} writes and {written} keys read back, 0 client errors")


main()
