#!/usr/bin/env bash
# A profile-guided release build of ferrokv: build an instrumented binary, serve a training
# load with it (redis-benchmark: strings, lists, sets, hashes, sorted sets, EVALSHA, FCALL,
# EVAL at -P 1 and -P 16), then build again with the recorded profile. The compiler then lays
# out hot code together and cold code apart, which is what the server needs at -P 1, where the
# kernel's TCP path runs between any two requests and evicts the server's code from the
# instruction cache (bench/README.md has the figures).
#
# Usage: scripts/pgo-build.sh        → prints the path of the optimized binary
# Needs: rustup's llvm-tools component (`rustup component add llvm-tools`), python3, and
# Debian's redis-benchmark and redis-cli (FERROKV_REDIS_BENCHMARK / FERROKV_REDIS_CLI).
# The build goes to target/pgo (CARGO_TARGET_DIR overrides); it takes two release builds.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "pgo-build: $*" >&2; exit 1; }
HOST="$(rustc -vV | sed -n 's/^host: //p')"
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata"
[ -x "$PROFDATA" ] || fail "llvm-profdata not found; install it with: rustup component add llvm-tools"
BENCH="${FERROKV_REDIS_BENCHMARK:-/usr/bin/redis-benchmark}"
CLI="${FERROKV_REDIS_CLI:-/usr/bin/redis-cli}"
[ -x "$BENCH" ] && [ -x "$CLI" ] || fail "redis-benchmark and redis-cli are needed (apt-get install redis-tools)"
command -v python3 >/dev/null || fail "python3 is needed (to find a free port)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/pgo}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --target keeps RUSTFLAGS off build scripts, so only the server records a profile.
echo "pgo-build: instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$WORK/raw" cargo build --release -p ferrokv --target "$HOST" >&2
BIN="$CARGO_TARGET_DIR/$HOST/release/ferrokv"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN" server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  [ "$("$CLI" -p "$PORT" PING 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$("$CLI" -p "$PORT" PING 2>/dev/null)" = PONG ] || fail "the instrumented server did not start: $(cat "$WORK/server.log")"

echo "pgo-build: training load" >&2
INCR_SCRIPT="return redis.call('INCR', KEYS[1])"
SHA="$("$CLI" -p "$PORT" SCRIPT LOAD "$INCR_SCRIPT")"
"$CLI" -p "$PORT" FUNCTION LOAD "#!lua name=pgo
redis.register_function('incr1', function(keys, args) return redis.call('INCR', keys[1]) end)" >/dev/null
run() { "$BENCH" -p "$PORT" -c 50 -r 100000 -q "$@" >/dev/null; }
for pipeline in 1 16; do
  # Scripts first, on an empty keyspace: the string tests' SETs would make INCR fail.
  "$CLI" -p "$PORT" FLUSHALL >/dev/null
  run -n 30000 -P "$pipeline" EVALSHA "$SHA" 1 "key:__rand_int__"
  run -n 30000 -P "$pipeline" FCALL incr1 1 "key:__rand_int__"
  run -n 10000 -P "$pipeline" EVAL "return '__rand_int__'" 0
  run -n 50000 -P "$pipeline" -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset
done
"$CLI" -p "$PORT" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$SERVER_PID" || true
SERVER_PID=""
ls "$WORK"/raw/*.profraw >/dev/null 2>&1 || fail "the training run wrote no profile"
"$PROFDATA" merge -o "$WORK/ferrokv.profdata" "$WORK"/raw/*.profraw

echo "pgo-build: optimized build" >&2
RUSTFLAGS="-Cprofile-use=$WORK/ferrokv.profdata" cargo build --release -p ferrokv --target "$HOST" >&2
echo "$BIN"
