#!/bin/sh
# Starts one validator in a container. Prefers real RDMA over soft-RoCE: when the host
# has the rdma_rxe kernel module loaded and the container is privileged, it creates rxe0
# on the container's interface and uses libfabric's verbs;ofi_rxm provider. Otherwise it
# says why in the log and uses tcp;ofi_rxm (the same RDMA code path over TCP sockets).
#
# Environment:
#   HYBSTER_HOME             validator home (config.json, genesis.json, keys/, data/), required
#   HYBSTER_RXE_NETDEV       interface to put rxe0 on (default: the default-route interface)
#   HYBSTER_FORCE_TCP=1      skip soft-RoCE even when available
#   HYBSTER_TRANSPORT_LISTEN replica listen address (default: <interface address>:9000)
#   HYBSTER_DIST             compiled app (default /app/dist)
#   HYBSTER_ENTRYPOINT_DRY_RUN=1  print the decision and the command instead of running it
# Every other HYBSTER_* variable is a node setting (see docs/node.md).
set -eu

log() { printf '%s entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

HOME_DIR="${HYBSTER_HOME:-}"
if [ -z "$HOME_DIR" ] || [ ! -f "$HOME_DIR/config.json" ]; then
  log "HYBSTER_HOME='$HOME_DIR' is not a validator home (no config.json); did the init service run?"
  exit 64
fi

NETDEV="${HYBSTER_RXE_NETDEV:-$(ip -o route show default 2>/dev/null | awk '{print $5; exit}')}"
NETDEV="${NETDEV:-eth0}"
ADDR="$(ip -4 -o addr show dev "$NETDEV" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"

# A privileged container has every capability; CAP_NET_ADMIN (bit 12) is what
# `rdma link add` needs and CAP_SYS_ADMIN (bit 21) is missing from ordinary containers.
is_privileged() {
  capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  [ -n "$capeff" ] || return 1
  caps=$((0x$capeff))
  [ $(((caps >> 12) & 1)) -eq 1 ] && [ $(((caps >> 21) & 1)) -eq 1 ]
}

REASON=""
soft_roce_ready() {
  if [ "${HYBSTER_FORCE_TCP:-0}" = "1" ]; then REASON="HYBSTER_FORCE_TCP=1"; return 1; fi
  if [ ! -d /sys/module/rdma_rxe ]; then
    REASON="the host kernel has no rdma_rxe module loaded (on the host: sudo modprobe rdma_rxe)"
    return 1
  fi
  if ! is_privileged; then REASON="the container is not privileged (compose: privileged: true)"; return 1; fi
  if rdma link show rxe0 >/dev/null 2>&1; then
    log "soft-RoCE device rxe0 already exists"
    return 0
  fi
  if out=$(rdma link add rxe0 type rxe netdev "$NETDEV" 2>&1); then
    log "created soft-RoCE device rxe0 on $NETDEV ($ADDR)"
    return 0
  fi
  REASON="'rdma link add rxe0 type rxe netdev $NETDEV' failed: $out"
  return 1
}

if soft_roce_ready; then
  PROVIDER="verbs;ofi_rxm"
  log "transport: rdma over soft-RoCE, libfabric provider $PROVIDER"
else
  PROVIDER="tcp;ofi_rxm"
  log "soft-RoCE unavailable: $REASON"
  log "transport: falling back to libfabric provider $PROVIDER (same RDMA code path over TCP)"
fi

export HYBSTER_TRANSPORT_KIND="${HYBSTER_TRANSPORT_KIND:-rdma}"
export HYBSTER_TRANSPORT_PROVIDER="$PROVIDER"
if [ -z "${HYBSTER_TRANSPORT_LISTEN:-}" ] && [ -n "$ADDR" ]; then
  export HYBSTER_TRANSPORT_LISTEN="$ADDR:9000"
fi

CLI="${HYBSTER_DIST:-/app/dist}/node/cli.js"
if [ "${HYBSTER_ENTRYPOINT_DRY_RUN:-0}" = "1" ]; then
  echo "HYBSTER_TRANSPORT_KIND=$HYBSTER_TRANSPORT_KIND"
  echo "HYBSTER_TRANSPORT_PROVIDER=$HYBSTER_TRANSPORT_PROVIDER"
  echo "HYBSTER_TRANSPORT_LISTEN=${HYBSTER_TRANSPORT_LISTEN:-}"
  echo "exec node $CLI start --home $HOME_DIR $*"
  exit 0
fi
exec node "$CLI" start --home "$HOME_DIR" "$@"
