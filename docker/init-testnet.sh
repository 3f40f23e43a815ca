#!/bin/sh
# One-shot init service: generates the testnet's genesis, keys and configs into the
# shared volume, once. Validator i is reached at host "validator<i>" (the compose service
# name) on the standard ports. Re-running is a no-op while validator0/config.json exists,
# so restarting the stack never replaces keys or the chain.
#
# Environment: VALIDATORS (default 3; must be 2f+1 and match the validator services),
#              TESTNET_DIR (default /testnet), CHAIN_ID (optional),
#              HYBSTER_DIST (compiled app, default /app/dist).
set -eu

log() { printf '%s init: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

N="${VALIDATORS:-3}"
DIR="${TESTNET_DIR:-/testnet}"
DIST="${HYBSTER_DIST:-/app/dist}"
CLI="$DIST/node/cli.js"

if [ -f "$DIR/validator0/config.json" ]; then
  log "testnet already initialised in $DIR; leaving it as it is"
  exit 0
fi

HOSTS=""
i=0
while [ "$i" -lt "$N" ]; do
  HOSTS="${HOSTS:+$HOSTS,}validator$i"
  i=$((i + 1))
done

log "generating a $N-validator testnet in $DIR for hosts $HOSTS"
node "$CLI" testnet --validators "$N" --out "$DIR" --transport rdma ${CHAIN_ID:+--chain-id "$CHAIN_ID"}
node "$DIST/node/ops/retarget-cli.js" --dir "$DIR" --hosts "$HOSTS" \
  --transport-port 9000 --p2p-port 8000 --api-port 7000 --api-host 0.0.0.0
# The validators run as root in their containers; keys stay readable by root only.
chmod -R go-rwx "$DIR"
log "done"
