#!/usr/bin/env python3
"""redis-py's Sentinel support against ferrokv sentinels, driven by tests/sentinel.rs.

Usage: redis_py_failover.py MASTER_NAME SENTINEL_PORT...

Finds the master through the sentinels, writes, prints "READY <port>", then (while the
test kills the master) keeps writing until a write succeeds on a different master found
through the sentinels. Prints "FAILED_OVER <port> <seconds>" and exits 0, or exits 1
after 60 s.
"""
import sys
import time

import redis
from redis.sentinel import Sentinel


def main():
    name = sys.argv[1]
    sentinel = Sentinel([("127.0.0.1", int(p)) for p in sys.argv[2:]], socket_timeout=0.5)
    host, port = sentinel.discover_master(name)
    master = sentinel.master_for(name, socket_timeout=0.5)
    master.set("before", "1")
    print("READY %d" % port, flush=True)
    started = time.monotonic()
    while time.monotonic() - started < 60:
        try:
            new_host, new_port = sentinel.discover_master(name)
            master.set("after", "1")
            if new_port != port:
                # The write went to the new master: the client followed the failover.
                print("FAILED_OVER %d %.2f" % (new_port, time.monotonic() - started), flush=True)
                return 0
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ReadOnlyError, redis.sentinel.MasterNotFoundError):
            pass
        time.sleep(0.05)
    print("TIMEOUT", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
