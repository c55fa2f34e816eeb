#!/usr/bin/env python3
"""Unchanged redis-py client code that runs Lua on the server, driven by tests/scripting_clients.rs.

Usage: redis_py_scripts.py SCENARIO PORT

Scenarios: lock, register_script, rate_limiter, queue. Each checks its own results with
assertions, prints "OK <summary>" and exits 0; any failure is a traceback and exit 1.
Every loop is bounded in count and time; worker processes are joined with a timeout.
"""
import multiprocessing
import sys
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

DEADLINE_SECONDS = 60


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def join_all(processes):
    deadline = time.monotonic() + DEADLINE_SECONDS
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    stuck = [p for p in processes if p.is_alive()]
    for p in stuck:
        p.terminate()
    assert not stuck, "%d worker processes did not finish in time" % len(stuck)
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    assert not failed, "worker processes failed: %r" % failed


# --- redis-py Lock -----------------------------------------------------------------------

def lock_worker(port, acquisitions):
    """Increments a counter with a non-atomic read/sleep/write under the lock."""
    r = client(port)
    for _ in range(acquisitions):
        lock = r.lock("lock:counter", timeout=10, blocking_timeout=30)
        assert lock.acquire(), "blocking acquire gave up"
        try:
            value = int(r.get("counter") or 0)
            time.sleep(0.002)  # widens the race a broken lock would lose updates to
            r.set("counter", value + 1)
            r.incr("acquisitions")
        finally:
            lock.release()


def scenario_lock(port):
    r = client(port)
    r.delete("lock:a", "lock:counter", "counter", "acquisitions")

    # Acquire, extend, reacquire, release.
    lock = r.lock("lock:a", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()
    assert 0 < r.pttl("lock:a") <= 5000
    assert lock.extend(10)  # adds to the remaining time
    assert 10000 < r.pttl("lock:a") <= 15000, r.pttl("lock:a")
    assert lock.extend(2, replace_ttl=True)
    assert 0 < r.pttl("lock:a") <= 2000, r.pttl("lock:a")
    assert lock.reacquire()
    assert 2000 < r.pttl("lock:a") <= 5000, r.pttl("lock:a")

    # Someone else cannot take it, nor release or extend it.
    other = r.lock("lock:a", timeout=5)
    assert not other.acquire(blocking=False)
    started = time.monotonic()
    assert not other.acquire(blocking=True, blocking_timeout=0.3)
    waited = time.monotonic() - started
    assert 0.15 <= waited < 3, waited  # redis-py retries every 0.1 s until the next try would be late
    try:
        other.release()
        raise AssertionError("released a lock it does not hold")
    except LockError:
        pass
    try:
        other.extend(1)
        raise AssertionError("extended a lock it does not hold")
    except LockError:
        pass
    lock.release()
    assert not r.exists("lock:a")

    # A blocking acquire waits for the holder's lock to expire, then gets it.
    holder = r.lock("lock:a", timeout=0.3)
    assert holder.acquire(blocking=False)
    waiter = r.lock("lock:a", timeout=5)
    started = time.monotonic()
    assert waiter.acquire(blocking=True, blocking_timeout=5)
    assert time.monotonic() - started < 4
    # The first holder lost its lock to expiry: releasing or extending it raises.
    # (extend first: a failed release forgets the token locally)
    try:
        holder.extend(1)
        raise AssertionError("extended a lock lost to expiry")
    except LockNotOwnedError:
        pass
    try:
        holder.release()
        raise AssertionError("released a lock lost to expiry")
    except LockNotOwnedError:
        pass
    waiter.release()

    # A lock that expired with nobody taking it: release raises too.
    lapsed = r.lock("lock:a", timeout=0.05)
    assert lapsed.acquire(blocking=False)
    time.sleep(0.2)
    try:
        lapsed.release()
        raise AssertionError("released an expired lock")
    except LockNotOwnedError:
        pass

    # Contention between processes.
    workers, each = 4, 25
    processes = [multiprocessing.Process(target=lock_worker, args=(port, each)) for _ in range(workers)]
    for p in processes:
        p.start()
    join_all(processes)
    acquisitions = int(r.get("acquisitions"))
    counter = int(r.get("counter"))
    assert acquisitions == workers * each, acquisitions
    assert counter == acquisitions, "lost updates: counter %d after %d acquisitions" % (counter, acquisitions)
    assert not r.exists("lock:counter")
    print("OK lock acquisitions=%d counter=%d" % (acquisitions, counter))


# --- register_script ---------------------------------------------------------------------

def scenario_register_script(port):
    r = client(port)
    r.delete("c")
    incrby = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incrby(keys=["c"], args=[5]) == 5
    assert r.script_exists(incrby.sha) == [True]
    r.script_flush()
    assert r.script_exists(incrby.sha) == [False]
    # EVALSHA answers NOSCRIPT; redis-py loads the script and runs it again.
    assert incrby(keys=["c"], args=[2]) == 7
    assert r.script_exists(incrby.sha) == [True]
    # In a pipeline redis-py loads missing scripts before sending.
    r.script_flush()
    pipe = r.pipeline()
    incrby(keys=["c"], args=[1], client=pipe)
    incrby(keys=["c"], args=[10], client=pipe)
    assert pipe.execute() == [8, 18]
    # Errors from the script reach the caller as redis-py exceptions.
    failing = r.register_script("return redis.call('INCR', KEYS[1])")
    r.set("text", "abc")
    try:
        failing(keys=["text"])
        raise AssertionError("no error")
    except redis.ResponseError as e:
        assert "not an integer" in str(e), str(e)
    stats = r.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] >= 3, stats["cmdstat_evalsha"]
    print("OK register_script sha=%s" % incrby.sha)


# --- sliding-window rate limiter -----------------------------------------------------------

RATE_LIMITER = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    return 1
end
return 0
"""


def model_allowed(times, window, limit):
    kept, allowed = [], 0
    for now in times:
        kept = [t for t in kept if t > now - window]
        if len(kept) < limit:
            kept.append(now)
            allowed += 1
    return allowed


def limiter_worker(port, worker, requests, now):
    r = client(port)
    limiter = r.register_script(RATE_LIMITER)
    allowed = sum(limiter(keys=["rl:shared"], args=[now, 60000, 7, "%d-%d" % (worker, i)]) for i in range(requests))
    r.incrby("rl:allowed", allowed)


def scenario_rate_limiter(port):
    r = client(port)
    r.delete("rl:seq", "rl:shared", "rl:allowed")
    limiter = r.register_script(RATE_LIMITER)
    # One caller, times passed in (so the expected count is exact): bursts and gaps.
    times = []
    for burst in range(20):
        times += [burst * 350 + i * 3 for i in range(8)]
    window, limit = 1000, 5
    results = [limiter(keys=["rl:seq"], args=[t, window, limit, "req-%d" % n]) for n, t in enumerate(times)]
    expected = model_allowed(times, window, limit)
    assert sum(results) == expected, (sum(results), expected)
    assert 0 < expected < len(times)
    # Several processes at the same instant against one limit: exactly `limit` get through.
    now = int(time.time() * 1000)
    processes = [multiprocessing.Process(target=limiter_worker, args=(port, w, 40, now)) for w in range(4)]
    for p in processes:
        p.start()
    join_all(processes)
    shared = int(r.get("rl:allowed"))
    assert shared == 7, shared
    assert r.zcard("rl:shared") == 7
    print("OK rate_limiter allowed=%d/%d shared=%d/160" % (sum(results), len(times), shared))


# --- reliable queue ------------------------------------------------------------------------

# Pop a job and park it in this worker's processing list in one step (as LMOVE would).
TAKE = """
local job = redis.call('RPOP', KEYS[1])
if job then redis.call('LPUSH', KEYS[2], job) end
return job
"""
# Acknowledge: the job leaves the processing list and counts as done.
ACK = """
local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
if removed == 1 then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
return removed
"""
# Give a dead worker's unacknowledged jobs back to the queue.
REQUEUE = """
local moved = 0
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do moved = moved + 1 end
return moved
"""
JOBS = 400


def queue_worker(port, name, crash_after):
    r = client(port)
    take, ack = r.register_script(TAKE), r.register_script(ACK)
    processing = "q:processing:" + name
    taken = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        job = take(keys=["q:jobs", processing])
        if job is None:
            return
        taken += 1
        if crash_after is not None and taken > crash_after:
            return  # dies holding an unacknowledged job
        r.incr("q:work")  # the "work"
        assert ack(keys=[processing, "q:done"], args=[job]) == 1
    raise AssertionError("worker %s ran out of time" % name)


def run_workers(port, names, crash):
    processes = [multiprocessing.Process(target=queue_worker, args=(port, n, crash.get(n))) for n in names]
    for p in processes:
        p.start()
    join_all(processes)


def scenario_queue(port):
    r = client(port)
    r.delete("q:jobs", "q:done", "q:work", *r.keys("q:processing:*"))
    r.lpush("q:jobs", *["job-%d" % i for i in range(JOBS)])
    run_workers(port, ["w%d" % i for i in range(4)] + ["crasher"], {"crasher": 3})
    requeue = r.register_script(REQUEUE)
    moved = requeue(keys=["q:processing:crasher", "q:jobs"])
    assert moved <= 1, moved  # it died holding at most the job it took last
    run_workers(port, ["v%d" % i for i in range(3)], {})
    done = r.hgetall("q:done")
    assert len(done) == JOBS, "lost jobs: %d of %d done" % (len(done), JOBS)
    twice = {k: v for k, v in done.items() if v != b"1"}
    assert not twice, "jobs processed more than once: %r" % twice
    assert int(r.get("q:work")) == JOBS
    assert r.llen("q:jobs") == 0
    leftover = [k for k in r.keys("q:processing:*") if r.llen(k)]
    assert not leftover, leftover
    print("OK queue jobs=%d requeued=%d" % (JOBS, moved))


SCENARIOS = {
    "lock": scenario_lock,
    "register_script": scenario_register_script,
    "rate_limiter": scenario_rate_limiter,
    "queue": scenario_queue,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](int(sys.argv[2]))
