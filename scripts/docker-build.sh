#!/usr/bin/env bash
# Builds the static ferrokv binary and the image ferrokv:latest (FROM scratch: no registry,
# no base image needed). Usage: scripts/docker-build.sh [image-tag]
#
# The binary is linked statically: for x86_64-unknown-linux-musl (with musl-gcc) when that
# Rust target is installed, otherwise for x86_64-unknown-linux-gnu with a static glibc
# (crt-static). Either runs alone in an empty image; hostnames resolve through the
# container's /etc/hosts and DNS server. FERROKV_DOCKER_TARGET=<triple> forces a target.
#
# The image also gets a static busybox (Debian's busybox-static, /bin/busybox; another one
# with FERROKV_BUSYBOX=<path>) linked as /bin/sh and the few tools an operator reaches for
# inside a Redis container, so `docker exec -it <name> /bin/sh` works as with the official
# image. BUSYBOX_APPLETS lists them; each is a symbolic link, the binary is ~2 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${1:-${FERROKV_IMAGE:-ferrokv:latest}}"
TARGET="${FERROKV_DOCKER_TARGET:-}"
if [ -z "$TARGET" ]; then
  if rustup target list --installed 2>/dev/null | grep -x x86_64-unknown-linux-musl >/dev/null; then
    TARGET=x86_64-unknown-linux-musl
  else
    TARGET=x86_64-unknown-linux-gnu
  fi
fi

command -v docker >/dev/null 2>&1 || { echo "docker-build: no docker client installed" >&2; exit 1; }

BUSYBOX="${FERROKV_BUSYBOX:-/bin/busybox}"
# A shell and what an operator uses to look around: files, processes, disk, an editor, and
# name/port checks towards a master. Nothing that administers the host (mount, reboot…).
BUSYBOX_APPLETS="sh ash ls cat cp mv rm mkdir rmdir ln chmod touch find du df stat head tail less more
  grep egrep fgrep sed awk cut sort uniq wc tr tee xargs diff vi echo printf test [ true false sleep env id
  whoami pwd date basename dirname readlink realpath ps top kill pidof free uptime nproc watch timeout
  tar gzip gunzip zcat md5sum sha256sum hostname nc nslookup netstat clear reset stty"
[ -x "$BUSYBOX" ] || {
  echo "docker-build: no busybox at $BUSYBOX (apt-get install busybox-static, or set FERROKV_BUSYBOX)" >&2
  exit 1
}
# `ldd` says "not a dynamic executable" (and fails) for a static binary: it must not list libraries.
if ldd "$BUSYBOX" 2>&1 | grep '=>' >/dev/null; then
  echo "docker-build: $BUSYBOX is dynamically linked (the 'busybox' package); install busybox-static" >&2
  exit 1
fi
BUSYBOX_HAS="$("$BUSYBOX" --list)"
for applet in $BUSYBOX_APPLETS; do
  grep -x -F -- "$applet" <<<"$BUSYBOX_HAS" >/dev/null || { echo "docker-build: $BUSYBOX has no '$applet'" >&2; exit 1; }
done

echo "docker-build: building ferrokv (release) for $TARGET, statically linked"
case "$TARGET" in
  *-musl)
    # mimalloc and the engine's C file are compiled by the cc crate: use musl's wrapper.
    command -v musl-gcc >/dev/null 2>&1 || { echo "docker-build: musl-gcc missing (apt-get install musl-tools)" >&2; exit 1; }
    export CC_x86_64_unknown_linux_musl=musl-gcc
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
  *-gnu)
    # With --target, RUSTFLAGS reach only the target's code, not build scripts.
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
esac
cargo build --release --locked --target "$TARGET" -p ferrokv

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/$TARGET/release/ferrokv"
if ldd "$BIN" 2>&1 | grep '=>' >/dev/null; then
  echo "docker-build: $BIN is dynamically linked; it would not run in an empty image" >&2
  ldd "$BIN" >&2
  exit 1
fi

CTX="$(mktemp -d "${TMPDIR:-/tmp}/ferrokv-docker-ctx.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/rootfs/usr/local/bin" "$CTX/rootfs/usr/local/etc/ferrokv" "$CTX/rootfs/tmp" "$CTX/rootfs/etc" \
  "$CTX/rootfs/bin" "$CTX/rootfs/usr/bin" "$CTX/user/data" "$CTX/user/etc/ferrokv"
# Debug info stays out of the image (the release profile keeps some for profiling).
strip -o "$CTX/rootfs/usr/local/bin/ferrokv" "$BIN"
for link in ferrokv-server ferrokv-sentinel ferrokv-cli redis-server redis-sentinel redis-cli; do
  ln -s ferrokv "$CTX/rootfs/usr/local/bin/$link"
done
cp "$BUSYBOX" "$CTX/rootfs/bin/busybox"
chmod 0755 "$CTX/rootfs/bin/busybox"
for applet in $BUSYBOX_APPLETS; do
  ln -s busybox "$CTX/rootfs/bin/$applet"
done
# For scripts that start with #!/usr/bin/env sh.
ln -s ../../bin/busybox "$CTX/rootfs/usr/bin/env"
cp docker/rootfs/etc/passwd docker/rootfs/etc/group "$CTX/rootfs/etc/"
chmod 0644 "$CTX/rootfs/etc/passwd" "$CTX/rootfs/etc/group"
chmod 1777 "$CTX/rootfs/tmp"
chmod 0775 "$CTX/user/data" "$CTX/user/etc/ferrokv"
cp docker/Dockerfile "$CTX/Dockerfile"

echo "docker-build: building image $IMAGE"
OLD_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# The classic builder: it needs no BuildKit component and no registry for FROM scratch.
# Its deprecation notice is shown only if the build fails.
if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1; then
  cat "$CTX/build.log" >&2
  exit 1
fi
# The image this tag named before, now untagged, is this script's leftover: remove it.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ] &&
  [ "$(docker image inspect -f '{{len .RepoTags}}' "$OLD_ID" 2>/dev/null)" = 0 ]; then
  docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
docker image inspect "$IMAGE" --format 'docker-build: {{index .RepoTags 0}} {{.Id}} {{.Size}} bytes'
