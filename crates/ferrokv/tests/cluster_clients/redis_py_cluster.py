"""redis-py's RedisCluster against a ferrokv cluster: discovers the nodes from one seed,
writes and reads keys across every master, a pipeline, and a transaction-free multi-key
command within one slot. Prints "OK <summary>" on success."""

import sys

from redis.cluster import RedisCluster


def main():
    port = int(sys.argv[1])
    rc = RedisCluster(host="127.0.0.1", port=port, socket_timeout=5)
    masters = {n.name for n in rc.get_primaries()}
    assert len(masters) >= 3, masters
    for i in range(300):
        rc.set(f"py:{i}", str(i))
    for i in range(300):
        assert rc.get(f"py:{i}") == str(i).encode(), i
    pipe = rc.pipeline()
    for i in range(100):
        pipe.incr(f"py:counter:{i}")
    assert pipe.execute() == [1] * 100
    rc.mset({"{py}a": "1", "{py}b": "2"})
    assert rc.mget("{py}a", "{py}b") == [b"1", b"2"]
    print(f"OK {len(masters)} masters, 300 keys, 100 pipelined INCRs")


main()
