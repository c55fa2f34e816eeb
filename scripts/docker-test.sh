#!/usr/bin/env bash
# End-to-end test of the image and the three compose topologies in deploy/: builds the
# image (scripts/docker-build.sh), then for each topology brings it up under a unique
# project name (its own private network), waits for health, writes on the master, reads on
# every replica, checks -READONLY; for the sentinel topology also kills the master, waits
# for the promotion, writes through the new master, restarts the old one (it must rejoin
# as a replica with its data) and cuts a replica off the network (it must resync
# partially). Everything it created is removed at the end, even on failure.
#
# Without a Docker engine: SKIPPED (exit 0), or a failure when FERROKV_REQUIRE_INTEROP=1.
# FERROKV_DOCKER_TEST_NO_BUILD=1 reuses the existing ferrokv:latest image.
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
command -v docker-compose >/dev/null 2>&1 || unavailable "docker-compose is not installed"

export FERROKV_IMAGE="${FERROKV_IMAGE:-ferrokv:latest}"
PREFIX="fkvtest$$"
PW="change-me-ferrokv" # deploy/3-sentinel/password.txt
STARTED=$(date +%s)
PROJECT=""
FILE=""
PROJECTS=()

log() { echo "docker-test [$(($(date +%s) - STARTED))s]: $*"; }

teardown() {
  local status=$?
  set +e
  if [ "$status" != 0 ] && [ -n "$PROJECT" ]; then
    echo "docker-test: FAILED in project $PROJECT; last logs:" >&2
    docker-compose -p "$PROJECT" -f "$FILE" logs --no-color --tail 40 >&2
  fi
  for entry in "${PROJECTS[@]}"; do
    docker-compose -p "${entry%%:*}" -f "${entry#*:}" down -v --remove-orphans >/dev/null 2>&1
  done
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

compose() { docker-compose -p "$PROJECT" -f "$FILE" "$@"; }

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

name() { echo "${PROJECT}_$1"; } # compose v1 names containers <project>_<service>_<n>

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

# --- Topology 1: config files ------------------------------------------------------------
up t1 1-conf-files
M=$(name master_1) R=$(name replica_1) S=$(name sentinel_1)
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
M=$(name master_1)
[ "$(cli "$M" set t2:greeting hello)" = OK ] || fail "write on the master"
for i in 1 2 3; do
  wait_for 30 "replica $i to have the key" equals hello cli "$(name replica_$i)" get t2:greeting
done
check_readonly "$(name replica_2)"
wait_for 30 "the master to count 3 replicas" equals 3 field "$M" replication connected_slaves
log "topology 2 ok: 3 replicas from REDIS_* variables, -READONLY"
compose down -v >/dev/null 2>&1

# --- Topology 3: sentinels, failover, rejoin, partial resync -----------------------------
up t3 3-sentinel
M=$(name master_1) R1=$(name replica_1) R2=$(name replica_2) S1=$(name sentinel_1)
A=(-a "$PW")
wait_for 60 "the sentinels to see 2 replicas and each other" \
  contains "slaves=2,sentinels=3" cli "$S1" -p 26379 info sentinel
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
NET="${PROJECT}_ferrokv"
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
PROJECT=""
log "all topologies passed"
echo "docker-test: 3 passed, 0 failed"
