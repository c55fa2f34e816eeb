#!/usr/bin/env bash
# Makes the certificates deploy/3-sentinel-tls mounts at /certs: a CA (ca.crt) and one
# certificate it signed, with its key, that every server and sentinel presents both as a
# server and as a client (redis.crt, redis.key). For trying the topology out only: the key
# is left readable by the container's user (uid 1001), and the CA's key is thrown away.
#   deploy/3-sentinel-tls/gen-certs.sh [DIR]    (default: deploy/3-sentinel-tls/certs)
set -euo pipefail
DIR="${1:-$(dirname "$0")/certs}"
mkdir -p "$DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 -subj "/CN=ferrokv test CA" \
  -keyout "$TMP/ca.key" -out "$DIR/ca.crt" 2>/dev/null
openssl req -new -nodes -newkey rsa:2048 -subj "/CN=ferrokv" -keyout "$DIR/redis.key" -out "$TMP/redis.csr" 2>/dev/null
# Servers and sentinels reach each other by IP address and service name; ferrokv (like Redis
# and hiredis) checks the chain, not the name, but the names are there for other clients.
printf 'subjectAltName=DNS:master,DNS:replica,DNS:sentinel,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/redis.csr" -CA "$DIR/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial -days 30 -sha256 \
  -extfile "$TMP/ext" -out "$DIR/redis.crt" 2>/dev/null
chmod 0644 "$DIR/ca.crt" "$DIR/redis.crt" "$DIR/redis.key"
echo "certificates in $DIR"
