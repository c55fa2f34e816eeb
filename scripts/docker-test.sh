#!/usr/bin/env bash
# End-to-end test of the image: builds it (scripts/docker-build.sh), then
#  - checks that `--help`/`--version` reach the server (also after `redis-server`);
#  - runs the classic walk-through command for command: a master (`-p … :6379`), a replica
#    from a mounted redis.conf (`replicaof`, `replica-read-only yes`, `port 9993`),
#    `docker exec … /bin/sh` then `redis-cli` inside, `set a 123`, `set w yes!`, `keys *` on
#    the replica (piped, and once more typed at a pseudo-terminal as with `docker exec -it`);
#  - brings up the five compose topologies in deploy/ under unique project names (their own
#    private networks), waits for health, writes on the master, reads on every replica,
#    checks -READONLY; for the sentinel topology also checks that no replica times out or
#    resyncs while the link is quiet, kills the master, waits for the promotion, writes
#    through the new master, restarts the old one (it must rejoin as a replica with its data)
#    and cuts a replica off the network (it must resync partially); for the TLS topology
#    (certificates made here with openssl) writes over TLS on the master, reads over TLS on
#    the replica and asks a sentinel over TLS for the master; for the cluster topology (made
#    by `ferrokv-cli --cluster create` in a one-shot service) checks cluster_state:ok on every
#    node, 3 masters with a replica each, a key written through one node and read through
#    another (`ferrokv-cli -c`), and a killed master's replica taking over its slots.
# Everything it created is removed at the end, even on failure.
#
# Without a Docker engine: SKIPPED (exit 0), or a failure when FERROKV_REQUIRE_INTEROP=1.
# Compose v2 (`docker compose`) is used when the docker CLI has it, else `docker-compose`.
# FERROKV_DOCKER_TEST_NO_BUILD=1 reuses the existing image ($FERROKV_IMAGE, ferrokv:latest);
# FERROKV_DOCKER_TEST_PREFIX names the containers, networks and projects (default fkvtest<pid>).
set -euo pipefail
cd "$(dirname "$0")/.."

unavailable() {
  if [ "${FERROKV_REQUIRE_INTEROP:-}" = "1" ]; then
    echo "docker-test: FAILED: $1 (required: FERROKV_REQUIRE_INTEROP=1)" >&2
    exit 1
  fi
  echo "docker-test: SKIPPED: $1"
  exit 0
}
command -v docker >/dev/null 2>&1 || unavailable "no docker client installed"
docker info >/dev/null 2>&1 || unavailable "no Docker engine reachable"
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  unavailable "neither docker compose (v2) nor docker-compose is installed"
fi

export FERROKV_IMAGE="${FERROKV_IMAGE:-ferrokv:latest}"
PREFIX="${FERROKV_DOCKER_TEST_PREFIX:-fkvtest$$}"
PW="change-me-ferrokv" # deploy/3-sentinel/password.txt
STARTED=$(date +%s)
PROJECT=""
FILE=""
PROJECTS=()
CONTAINERS=() # started with docker run
NETWORKS=()
WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/ferrokv-docker-test.XXXXXX")"

log() { echo "docker-test [$(($(date +%s) - STARTED))s]: $*"; }

teardown() {
  local status=$?
  set +e
  if [ "$status" != 0 ] && [ -n "$PROJECT" ]; then
    echo "docker-test: FAILED in project $PROJECT; last logs:" >&2
    "${COMPOSE[@]}" -p "$PROJECT" -f "$FILE" logs --no-color --tail 40 >&2
  fi
  for c in "${CONTAINERS[@]}"; do
    if [ "$status" != 0 ] && docker inspect "$c" >/dev/null 2>&1; then
      echo "docker-test: last logs of $c:" >&2
      docker logs --tail 40 "$c" >&2
    fi
    docker rm -f -v "$c" >/dev/null 2>&1
  done
  for n in "${NETWORKS[@]}"; do docker network rm "$n" >/dev/null 2>&1; done
  for entry in "${PROJECTS[@]}"; do
    "${COMPOSE[@]}" -p "${entry%%:*}" -f "${entry#*:}" down -v --remove-orphans >/dev/null 2>&1
  done
  rm -rf "$WORKDIR"
  exit "$status"
}
trap teardown EXIT

fail() {
  echo "docker-test: FAILED: $*" >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every half second.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.5
  done
}

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$FILE" "$@"; }

up() {
  PROJECT="${PREFIX}$1"
  FILE="deploy/$2/docker-compose.yml"
  shift 2
  PROJECTS+=("$PROJECT:$FILE")
  log "$FILE: up as project $PROJECT"
  # `up` itself waits for the services others depend on to be healthy.
  local out
  out=$(compose up -d "$@" 2>&1) || fail "docker-compose up: $out"
  wait_for 90 "every container of $PROJECT healthy" all_healthy
}

containers() { docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT"; }

all_healthy() {
  local c
  for c in $(containers); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ] || return 1
  done
}

# cli CONTAINER ARGS...: ferrokv-cli inside the container, \r stripped.
cli() {
  local c=$1
  shift
  docker exec "$c" ferrokv-cli --no-auth-warning "$@" | tr -d '\r'
}

field() { # field CONTAINER SECTION NAME CLI-ARGS...
  local c=$1 section=$2 name=$3
  shift 3
  cli "$c" "$@" info "$section" | sed -n "s/^$name://p"
}

equals() { # equals WANT COMMAND...: the command prints exactly WANT
  [ "$("${@:2}")" = "$1" ]
}

contains() { # contains NEEDLE COMMAND...
  "${@:2}" | grep -- "$1" >/dev/null
}

ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

# name SERVICE [N]: the container of a compose service (v1 names it <project>_<service>_<n>,
# v2 <project>-<service>-<n>: found by compose's labels instead).
name() {
  local id
  id=$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.container-number=${2:-1}")
  [ -n "$id" ] || fail "no container $1 #${2:-1} in project $PROJECT"
  docker inspect -f '{{.Name}}' "$id" | sed 's,^/,,'
}

# http_get CONTAINER PORT PATH: an HTTP GET of a container's port published on loopback
# (the metrics ports; python3 is there wherever the tests run, curl may not be).
http_get() {
  local addr
  addr=$(docker port "$1" "$2/tcp" | sed -n 1p)
  [ -n "$addr" ] || return 1
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("http://" + sys.argv[1] + sys.argv[2], timeout=5).read().decode())' "$addr" "$3"
}

network_of_project() { # network_of_project NAME: the compose network's ID
  docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.network=$1"
}

# tty_session CONTAINER [EXPECT TYPE]...: `docker exec -it CONTAINER /bin/sh` on a pseudo-
# terminal (script(1)), typing each TYPE line (Enter included) once EXPECT appeared in the
# output since the previous step, as a person would. The output is left in TTY_OUT.
TTY_OUT=""
tty_session() {
  local container=$1 seen="" chunk pid out_fd in_fd deadline
  shift
  coproc TTY { exec script -qfec "docker exec -it $container /bin/sh" /dev/null; }
  pid=$TTY_PID
  exec {out_fd}<&"${TTY[0]}" {in_fd}>&"${TTY[1]}"
  TTY_OUT=""
  while [ $# -ge 2 ]; do
    deadline=$(($(date +%s) + 15))
    until [[ "$seen" == *"$1"* ]]; do
      [ "$(date +%s)" -lt "$deadline" ] || {
        kill "$pid" 2>/dev/null
        fail "terminal session in $container: no '$1' after 15 s; it showed: $(printf '%s' "$TTY_OUT" | tr -d '\033' | tail -c 600)"
      }
      chunk=""
      IFS= read -r -t 0.2 -N 4096 chunk <&"$out_fd" || true
      seen+="$chunk"
      TTY_OUT+="$chunk"
    done
    seen="${seen#*"$1"}"
    if [ -n "$2" ]; then printf '%s\r' "$2" >&"$in_fd"; fi
    shift 2
  done
  # `exit` ends the shell, docker exec, then script(1): read what is left until it closes.
  deadline=$(($(date +%s) + 15))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
    chunk=""
    IFS= read -r -t 0.2 -N 4096 chunk <&"$out_fd" || true
    TTY_OUT+="$chunk"
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    fail "terminal session in $container did not end after exit"
  fi
  exec {out_fd}<&- {in_fd}>&-
}

check_readonly() { # check_readonly CONTAINER CLI-ARGS...
  local out
  out=$(cli "$@" set must-fail 1)
  case "$out" in
    *"READONLY You can't write against a read only replica."*) ;;
    *) fail "a write on replica $1 answered '$out' instead of -READONLY" ;;
  esac
}

if [ "${FERROKV_DOCKER_TEST_NO_BUILD:-}" = "1" ]; then
  docker image inspect "$FERROKV_IMAGE" >/dev/null || fail "no image $FERROKV_IMAGE to reuse"
else
  log "building $FERROKV_IMAGE"
  ./scripts/docker-build.sh "$FERROKV_IMAGE"
fi

# --- The image: small, and --help/--version reach the server ------------------------------
SIZE=$(docker image inspect -f '{{.Size}}' "$FERROKV_IMAGE")
# One static binary (~11 MB with cluster mode, MIGRATE and TLS) and busybox (~2 MB); the
# README states the size.
[ "$SIZE" -lt $((16 * 1024 * 1024)) ] || fail "the image grew to $SIZE bytes (README: about 13 MB)"
expect_run() { # expect_run PREFIX ARGS...: docker run prints PREFIX first and exits 0
  local want=$1 out
  shift
  out=$(docker run --rm "$FERROKV_IMAGE" "$@" 2>&1) || fail "docker run $FERROKV_IMAGE $* failed: $out"
  case "$out" in "$want"*) ;; *) fail "docker run $FERROKV_IMAGE $* printed: $out" ;; esac
}
expect_run "Redis server v=" --version
expect_run "Usage:" --help
expect_run "Redis server v=" redis-server --version
expect_run "Usage:" ferrokv-server --help
log "image ok: $SIZE bytes; --help and --version answered by the server"

# --- The classic walk-through, command for command --------------------------------------
# As in the README (and the blog posts Redis users follow): the published port is ephemeral
# here (the walk-through's 5000:6379) so that runs cannot collide.
WT_NET="${PREFIX}-walkthrough"
WT_MASTER="${PREFIX}-my-redis-master"
WT_REPLICA="${PREFIX}-my-redis-replica"
NETWORKS+=("$WT_NET")
CONTAINERS+=("$WT_MASTER" "$WT_REPLICA")
log "walk-through: $WT_MASTER and $WT_REPLICA"
docker network create "$WT_NET" >/dev/null
docker run --name "$WT_MASTER" --network "$WT_NET" -p 127.0.0.1::6379 -d "$FERROKV_IMAGE" >/dev/null
printf 'replicaof %s 6379\nreplica-read-only yes\nport 9993\n' "$WT_MASTER" >"$WORKDIR/redis.conf"
chmod 0644 "$WORKDIR/redis.conf"
docker run --name "$WT_REPLICA" --network "$WT_NET" -p 127.0.0.1::9993 \
  -v "$WORKDIR/redis.conf:/usr/local/etc/redis/redis.conf:ro" -d "$FERROKV_IMAGE" /usr/local/etc/redis/redis.conf >/dev/null
# in_shell CONTAINER SHELL-COMMAND < INPUT: `docker exec -i CONTAINER /bin/sh`, then the
# command typed in it, reading the rest of the input (what would be typed next).
in_shell() { docker exec -i "$1" /bin/sh -c "$2" | tr -d '\r'; }
wait_for 30 "redis-cli in $WT_MASTER's shell" equals PONG in_shell "$WT_MASTER" "redis-cli ping" </dev/null
OUT=$(printf 'set a 123\nset w yes!\n' | in_shell "$WT_MASTER" redis-cli)
[ "$OUT" = "$(printf 'OK\nOK')" ] || fail "redis-cli in $WT_MASTER's /bin/sh answered: $OUT"
replica_keys() { printf 'keys *\n' | in_shell "$WT_REPLICA" "redis-cli -p 9993" | sort | paste -s -d ' ' -; }
# The first sync waits repl-diskless-sync-delay (5 s) for more replicas, as Redis does.
wait_for 30 "keys * on the replica to list a and w" equals "a w" replica_keys
OUT=$(printf 'get w\nset b 1\n' | in_shell "$WT_REPLICA" "redis-cli -p 9993")
[ "$OUT" = "$(printf 'yes!\nREADONLY You can'"'"'t write against a read only replica.')" ] ||
  fail "get w / set b on the replica answered: $OUT"
# The tools an operator reaches for in the container's shell.
OUT=$(in_shell "$WT_MASTER" 'set -e; ls /data; cat /etc/hostname; ps; df /data; command -v vi' </dev/null) ||
  fail "the shell tools failed: $OUT"
contains "docker-entrypoint" echo "$OUT" || fail "ps in the container does not show the server: $OUT"
# From the host, through the published port (Debian's redis-cli, when installed).
HOST_CLI="${FERROKV_REDIS_CLI:-/usr/bin/redis-cli}"
if [ -x "$HOST_CLI" ]; then
  HOST_PORT=$(docker port "$WT_MASTER" 6379/tcp | sed -n 1p)
  OUT=$("$HOST_CLI" -h 127.0.0.1 -p "${HOST_PORT##*:}" get a)
  [ "$OUT" = 123 ] || fail "get a through the published port $HOST_PORT answered: $OUT"
fi
# Typed at a terminal, as `docker exec -it` gives one (script(1) is the terminal here).
if command -v script >/dev/null 2>&1; then
  tty_session "$WT_MASTER" '$ ' 'redis-cli' '6379> ' 'set a 123' $'OK\r' '' '6379> ' 'set w yes!' $'OK\r' '' \
    '6379> ' 'quit' '$ ' 'exit'
  tty_session "$WT_REPLICA" '$ ' 'redis-cli -p 9993' '9993> ' 'keys *' '2) "' '' '9993> ' 'quit' '$ ' 'exit'
  case "$TTY_OUT" in *'"a"'*'"w"'* | *'"w"'*'"a"'*) ;; *) fail "keys * typed in the replica's terminal showed: $TTY_OUT" ;; esac
elif [ "${FERROKV_REQUIRE_INTEROP:-}" = "1" ]; then
  fail "script(1) is required for the terminal session (apt-get install bsdutils)"
fi
# A replica's log lines say S, as Redis's do, and nothing claims a load that did not happen.
docker logs "$WT_REPLICA" 2>&1 | grep "^1:S .* MASTER <-> REPLICA sync: Finished with success" >/dev/null ||
  fail "the replica's log lines do not say S"
if docker logs "$WT_MASTER" 2>&1 | grep "DB loaded" >/dev/null; then fail "the master logged a DB load without a file"; fi
docker rm -f -v "$WT_MASTER" "$WT_REPLICA" >/dev/null
docker network rm "$WT_NET" >/dev/null
log "walk-through ok: /bin/sh and redis-cli inside, set a 123, set w yes!, keys * on the replica, -READONLY"

# --- Topology 1: config files ------------------------------------------------------------
up t1 1-conf-files
M=$(name master)
R=$(name replica)
S=$(name sentinel)
[ "$(cli "$M" set t1:greeting hello)" = OK ] || fail "write on the master"
wait_for 30 "the replica on port 9993 to have the key" equals hello cli "$R" -p 9993 get t1:greeting
check_readonly "$R" -p 9993
wait_for 30 "the replica's link to be up" equals up field "$R" replication master_link_status -p 9993
sentinel_master() { cli "$S" -p 26379 sentinel get-master-addr-by-name mymaster | sed -n 1p; }
wait_for 30 "the sentinel to know the master" equals "$(ip_of "$M")" sentinel_master
docker logs "$S" 2>&1 | grep "running from a copy in /data/sentinel.conf" >/dev/null ||
  fail "the read-only sentinel.conf was not copied to /data"
wait_for 30 "the sentinel to find the replica" contains "$(ip_of "$R"):9993" cli "$S" -p 26379 sentinel replicas mymaster
log "topology 1 ok: replicated from mounted config files, -READONLY, sentinel state in /data"
compose down -v >/dev/null 2>&1

# --- Topology 2: environment variables, scaled -------------------------------------------
up t2 2-env-replicas --scale replica=3
M=$(name master)
[ "$(cli "$M" set t2:greeting hello)" = OK ] || fail "write on the master"
for i in 1 2 3; do
  wait_for 30 "replica $i to have the key" equals hello cli "$(name replica "$i")" get t2:greeting
done
check_readonly "$(name replica 2)"
wait_for 30 "the master to count 3 replicas" equals 3 field "$M" replication connected_slaves
log "topology 2 ok: 3 replicas from REDIS_* variables, -READONLY"
compose down -v >/dev/null 2>&1

# --- Topology 3: sentinels, failover, rejoin, partial resync -----------------------------
up t3 3-sentinel
M=$(name master)
R1=$(name replica 1)
R2=$(name replica 2)
S1=$(name sentinel 1)
A=(-a "$PW")
# A quiet link must stay up: no replica may time out (MASTER timeout) or need a second full
# sync while nothing is written. Not a minute: 10 s shows it. A master pings a replica as
# soon as it attaches, then every repl-ping-replica-period; a replica drops a link silent
# for repl-timeout (5 s here), checked once a second. So a ping period that is not below
# the timeout (the default 10 s, which this topology used to keep), or no pings at all,
# drops every link within 5 + 1 s of its coming up; twice the timeout leaves room for a
# loaded machine. A second full sync on a quiet link only follows such a drop. Nothing is
# written in the window; the wait for the sentinels runs inside it.
for r in "$R1" "$R2"; do
  wait_for 30 "$r's link to be up" equals up field "$r" replication master_link_status "${A[@]}"
done
QUIET_FROM=$(date +%s)
QUIET_SECONDS=10
wait_for 60 "the sentinels to see 2 replicas and each other" \
  contains "slaves=2,sentinels=3" cli "$S1" -p 26379 info sentinel
# The metrics ports (deploy/3-sentinel publishes them on loopback) agree with INFO.
M_IP=$(ip_of "$M")
wait_for 20 "the master's /metrics to count 2 replicas" contains '^redis_connected_slaves 2$' http_get "$M" 9121 /metrics
wait_for 20 "a replica's /metrics to show its master link up" contains '^redis_master_link_up{.*} 1$' http_get "$R1" 9121 /metrics
wait_for 20 "the sentinel's /metrics to list the master with 2 replicas" \
  contains "^redis_sentinel_master_slaves{master_name=\"mymaster\",master_address=\"$M_IP:6379\"} 2$" http_get "$S1" 9355 /metrics
contains "$M_IP" http_get "$S1" 9355 /api/topology || fail "the sentinel's /api/topology does not name the master $M_IP"
equals ok http_get "$M" 9121 /health || fail "the master's /health is not ok"
log "metrics ports: the master, a replica and a sentinel report the topology INFO reports"
LEFT=$((QUIET_FROM + QUIET_SECONDS - $(date +%s)))
if [ "$LEFT" -gt 0 ]; then sleep "$LEFT"; else LEFT=0; fi
log_count() { docker logs "$1" 2>&1 | awk -v p="$2" 'index($0, p) { n++ } END { print n + 0 }'; }
for r in "$R1" "$R2"; do
  [ "$(log_count "$r" "MASTER timeout")" = 0 ] || fail "$r timed out its master on a quiet link"
  [ "$(log_count "$r" "Full resync from master")" = 1 ] || fail "$r needed more than one full sync on a quiet link"
  [ "$(log_count "$r" "Connection with master lost")" = 0 ] || fail "$r lost its master on a quiet link"
done
[ "$(log_count "$M" "is not greater than repl-ping-replica-period")" = 0 ] || fail "$M warns about its repl-timeout"
log "quiet link: no timeout, one full sync per replica in ${QUIET_SECONDS}s (${LEFT}s of it added to the sentinels' discovery)"
[ "$(cli "$M" "${A[@]}" set t3:before 1)" = OK ] || fail "write on the master"
for r in "$R1" "$R2"; do
  wait_for 30 "$r to have the key" equals 1 cli "$r" "${A[@]}" get t3:before
done
check_readonly "$R1" "${A[@]}"
OLD_IP=$(ip_of "$M")
log "killing the master $M ($OLD_IP)"
docker kill "$M" >/dev/null
master_addr() { cli "$S1" -p 26379 sentinel get-master-addr-by-name mymaster | sed -n 1p; }
moved() { local a; a=$(master_addr) && [ -n "$a" ] && [ "$a" != "$OLD_IP" ]; }
wait_for 60 "the sentinels to promote a replica" moved
NEW_IP=$(master_addr)
NEW=""
for r in "$R1" "$R2"; do [ "$(ip_of "$r")" = "$NEW_IP" ] && NEW=$r; done
[ -n "$NEW" ] || fail "the new master $NEW_IP is none of the replicas"
OTHER=$([ "$NEW" = "$R1" ] && echo "$R2" || echo "$R1")
wait_for 30 "$NEW to be a master" equals master field "$NEW" replication role "${A[@]}"
log "promoted $NEW ($NEW_IP)"
wait_for 30 "the sentinel's /metrics to show the new master" \
  contains "^redis_sentinel_master_status{master_name=\"mymaster\",master_address=\"$NEW_IP:6379\",master_status=\"ok\"} 1$" \
  http_get "$S1" 9355 /metrics
wait_for 30 "a write through the new master" equals OK cli "$NEW" "${A[@]}" set t3:after 2
wait_for 30 "the other replica to follow the new master" equals "$NEW_IP" field "$OTHER" replication master_host "${A[@]}"
log "restarting the old master"
docker start "$M" >/dev/null
wait_for 60 "the old master to rejoin as a replica" equals slave field "$M" replication role "${A[@]}"
wait_for 60 "the old master's link to be up" equals up field "$M" replication master_link_status "${A[@]}"
wait_for 30 "the old master to have the data written after the failover" equals 2 cli "$M" "${A[@]}" get t3:after
[ "$(cli "$M" "${A[@]}" get t3:before)" = 1 ] || fail "the old master lost the data written before the failover"
log "the old master rejoined as a replica of $NEW_IP with its data"

# Partial resync: cut a replica off long enough for both sides to time out (repl-timeout 5).
in_sync() {
  [ "$(field "$OTHER" replication master_link_status "${A[@]}")" = up ] &&
    [ "$(field "$OTHER" replication slave_repl_offset "${A[@]}")" = "$(field "$NEW" replication master_repl_offset "${A[@]}")" ]
}
wait_for 30 "$OTHER in sync" in_sync
FULL=$(field "$NEW" stats sync_full "${A[@]}")
PARTIAL=$(field "$NEW" stats sync_partial_ok "${A[@]}")
NET=$(network_of_project ferrokv)
[ -n "$NET" ] || fail "no network ferrokv in project $PROJECT"
log "disconnecting $OTHER from $NET (sync_full=$FULL sync_partial_ok=$PARTIAL)"
docker network disconnect "$NET" "$OTHER"
for i in $(seq 1 16); do
  [ "$(cli "$NEW" "${A[@]}" set "t3:cut:$i" "$i")" = OK ] || fail "write during the cut"
  sleep 0.5
done
docker network connect --alias replica "$NET" "$OTHER"
wait_for 60 "$OTHER to catch up after the cut" equals 16 cli "$OTHER" "${A[@]}" get t3:cut:16
wait_for 30 "$OTHER in sync" in_sync
FULL2=$(field "$NEW" stats sync_full "${A[@]}")
PARTIAL2=$(field "$NEW" stats sync_partial_ok "${A[@]}")
[ "$FULL2" = "$FULL" ] || fail "the reconnected replica needed a full resync (sync_full $FULL -> $FULL2)"
[ "$PARTIAL2" -gt "$PARTIAL" ] || fail "no partial resync counted (sync_partial_ok $PARTIAL -> $PARTIAL2)"
log "topology 3 ok: failover to $NEW, old master rejoined, partial resync after the cut (sync_partial_ok $PARTIAL -> $PARTIAL2, sync_full $FULL)"
compose down -v >/dev/null 2>&1

# --- Topology 4: TLS everywhere ------------------------------------------------------------
# Certificates made now (openssl), never committed; every client presents one.
command -v openssl >/dev/null 2>&1 || fail "openssl is needed to make the TLS topology's certificates"
export FERROKV_TLS_DIR="$WORKDIR/certs"
deploy/3-sentinel-tls/gen-certs.sh "$FERROKV_TLS_DIR" >/dev/null
up t4 3-sentinel-tls
M=$(name master)
R1=$(name replica)
S1=$(name sentinel 1)
TLS=(--tls --cacert /certs/ca.crt --cert /certs/redis.crt --key /certs/redis.key)
[ "$(cli "$M" "${TLS[@]}" "${A[@]}" set t4:greeting "over tls")" = OK ] || fail "write over TLS on the master"
wait_for 30 "the replica to have the key over TLS" equals "over tls" cli "$R1" "${TLS[@]}" "${A[@]}" get t4:greeting
wait_for 30 "the replica's TLS link to be up" equals up field "$R1" replication master_link_status "${TLS[@]}" "${A[@]}"
# Plain TCP is refused everywhere: no RESP answer on the TLS-only ports.
plain_ping() { docker exec "$1" timeout 5 ferrokv-cli --no-auth-warning -p "$2" "${A[@]}" ping 2>&1 || true; }
case "$(plain_ping "$M" 6379)" in *PONG*) fail "the master answered a plaintext PING" ;; esac
case "$(plain_ping "$S1" 26379)" in *PONG*) fail "a sentinel answered a plaintext PING" ;; esac
tls_master() { cli "$S1" "${TLS[@]}" -p 26379 sentinel get-master-addr-by-name mymaster | sed -n 1p; }
wait_for 30 "a sentinel over TLS to name the master" equals "$(ip_of "$M")" tls_master
wait_for 60 "the sentinels to see the replica and each other over TLS" \
  contains "slaves=1,sentinels=3" cli "$S1" "${TLS[@]}" -p 26379 info sentinel
log "topology 4 ok: written over TLS on the master, read over TLS on the replica, sentinels over TLS"
compose down -v >/dev/null 2>&1

# --- Topology 5: a cluster made by ferrokv-cli --cluster create ----------------------------
PROJECT="${PREFIX}t5"
FILE="deploy/4-cluster/docker-compose.yml"
PROJECTS+=("$PROJECT:$FILE")
log "$FILE: up as project $PROJECT"
# `up` starts the one-shot create service once the six nodes are healthy.
OUT=$(compose up -d 2>&1) || fail "docker-compose up: $OUT"
CREATE=$(name create)
create_exited() { [ "$(docker inspect -f '{{.State.Status}}' "$CREATE")" = exited ]; }
wait_for 120 "the create service to finish" create_exited
CREATE_LOG=$(docker logs "$CREATE" 2>&1)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$CREATE")" = 0 ] || fail "ferrokv-cli --cluster create failed: $CREATE_LOG"
case "$CREATE_LOG" in *"[OK] All 16384 slots covered."*) ;; *) fail "create did not check the cluster: $CREATE_LOG" ;; esac
NODES=()
for i in 1 2 3 4 5 6; do NODES+=("$(name "node$i")"); done
cluster_state() { cli "$1" cluster info | sed -n 's/^cluster_state://p'; }
for c in "${NODES[@]}"; do wait_for 30 "cluster_state:ok on $c" equals ok cluster_state "$c"; done
# Masters with slots, and replicas (each of a different master), as the first node sees them.
roles() {
  cli "${NODES[0]}" cluster nodes |
    awk '$3 ~ /master/ && NF > 8 { m++ } $3 ~ /slave/ { s++; of[$4] = 1 } END { print m + 0, s + 0, length(of) }'
}
wait_for 30 "3 masters and 3 replicas of 3 different masters" equals "3 3 3" roles
# -c follows the MOVED redirections to the slot's master, as the README shows.
[ "$(cli "${NODES[1]}" -c set t5:greeting hello)" = OK ] || fail "a write through ${NODES[1]}"
[ "$(cli "${NODES[5]}" -c get t5:greeting)" = hello ] || fail "a read through ${NODES[5]}"
CHECK=$(cli "${NODES[2]}" --cluster check node1:6379) || fail "ferrokv-cli --cluster check inside the network: $CHECK"
case "$CHECK" in *"[OK] All nodes agree about slots configuration."*"[OK] All 16384 slots covered."*) ;;
  *) fail "ferrokv-cli --cluster check inside the network: $CHECK" ;; esac
# Failover: a master with a key of its own dies; its replica takes over with the key.
role_of() { cli "$1" role | sed -n 1p; }
VICTIM=""
for c in "${NODES[@]}"; do
  if [ "$(role_of "$c")" = master ]; then VICTIM=$c && break; fi
done
[ -n "$VICTIM" ] || fail "no master among ${NODES[*]}"
VICTIM_ID=$(cli "$VICTIM" cluster myid)
RANGE=$(cli "$VICTIM" cluster nodes | awk '$3 ~ /myself/ { print $9 }')
KEY=""
for i in $(seq 1 200); do
  SLOT=$(cli "$VICTIM" cluster keyslot "t5:key:$i")
  if [ "$SLOT" -ge "${RANGE%-*}" ] && [ "$SLOT" -le "${RANGE#*-}" ]; then KEY="t5:key:$i" && break; fi
done
[ -n "$KEY" ] || fail "no key found in $VICTIM's slots $RANGE"
[ "$(cli "$VICTIM" set "$KEY" before-failover)" = OK ] || fail "a write on $VICTIM"
[ "$(cli "$VICTIM" wait 1 5000)" = 1 ] || fail "$VICTIM's replica did not acknowledge the write"
HEIR_IP=$(cli "$VICTIM" cluster nodes | awk -v m="$VICTIM_ID" '$4 == m { sub(/:.*/, "", $2); print $2; exit }')
HEIR=""
for c in "${NODES[@]}"; do [ "$(ip_of "$c")" = "$HEIR_IP" ] && HEIR=$c; done
[ -n "$HEIR" ] || fail "no container has the replica's address $HEIR_IP"
log "killing master $VICTIM (slots $RANGE); its replica is $HEIR"
docker kill "$VICTIM" >/dev/null
wait_for 60 "$HEIR to be promoted" equals master role_of "$HEIR"
wait_for 30 "cluster_state:ok on $HEIR" equals ok cluster_state "$HEIR"
[ "$(cli "$HEIR" get "$KEY")" = before-failover ] || fail "the promoted $HEIR lost $KEY"
[ "$(cli "$HEIR" -c get t5:greeting)" = hello ] || fail "t5:greeting after the failover"
log "topology 5 ok: ferrokv-cli --cluster create made 3 masters + 3 replicas, MOVED followed, $HEIR took over from $VICTIM"
compose down -v >/dev/null 2>&1
PROJECT=""
log "all topologies passed"
echo "docker-test: 5 passed, 0 failed"
