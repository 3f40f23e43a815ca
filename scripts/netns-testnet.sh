#!/usr/bin/env bash
# Runs a validator testnet across Linux network namespaces on one machine, so each
# validator is a separate host with its own interface and address: one namespace per
# validator (hyb-v<i>, eth0 = 10.213.0.<10+i>/24), all joined by a bridge that lives in
# its own namespace (hyb-hub), so the root namespace's network is never touched.
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2.
#
#   netns-testnet.sh up <n> <dir> [tcp|rdma]   topology + `hybster testnet` + start validators
#   netns-testnet.sh down [<dir>]               stop validators started by `up`, remove namespaces
#   netns-testnet.sh net-up <n>                 topology only (the test harness starts processes)
#   netns-testnet.sh net-down                   remove every namespace this script creates
#   netns-testnet.sh partition <i> | heal <i>   cut / restore validator i's link to the bridge
#   netns-testnet.sh shape <i> <tc args...>     tc qdisc on both ends of validator i's link
#   netns-testnet.sh unshape <i>                remove it again
#   netns-testnet.sh status                     namespaces, addresses, links
#   netns-testnet.sh check                      exit 0 when this machine can run it (root, netns, veth)
#
# Environment: HYBSTER_CLI (default <repo>/dist/node/cli.js), NODE (default node).
set -euo pipefail

PREFIX=hyb
HUB="${PREFIX}-hub"
BRIDGE="${PREFIX}-br0"
SUBNET_PREFIX=10.213.0
HOST_OFFSET=10
API_PORT=7000
P2P_PORT=8000
TRANSPORT_PORT=9000

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLI="${HYBSTER_CLI:-$here/../dist/node/cli.js}"
NODE="${NODE:-node}"

die() { echo "netns-testnet: $*" >&2; exit 1; }
say() { echo "netns-testnet: $*" >&2; }

ns_of() { echo "${PREFIX}-v$1"; }
addr_of() { echo "$SUBNET_PREFIX.$((HOST_OFFSET + $1))"; }
hub_if() { echo "${PREFIX}-v$1-h"; }

check() {
  [ "$(id -u)" = 0 ] || die "needs root (ip netns add)"
  command -v ip >/dev/null || die "needs iproute2 (ip)"
  local probe="${PREFIX}-probe-$$"
  ip netns add "$probe" 2>/dev/null || die "cannot create network namespaces here"
  if ! ip link add "${PREFIX}-pa$$" type veth peer name "${PREFIX}-pb$$" 2>/dev/null; then
    ip netns del "$probe"
    die "cannot create veth pairs here"
  fi
  ip link del "${PREFIX}-pa$$"
  ip netns del "$probe"
}

existing_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-(hub|v[0-9]+)$" || true
}

net_down() {
  local ns
  for ns in $(existing_namespaces); do
    # Deleting a namespace deletes the veth ends inside it, and with them their peers.
    ip netns del "$ns" 2>/dev/null || true
  done
  # A hub-side veth end can outlive a failed setup in the root namespace.
  local l
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${PREFIX}-" || true); do
    ip link del "$l" 2>/dev/null || true
  done
}

net_up() {
  local n="$1" i ns hif
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "validator count must be 1..200"
  [ -z "$(existing_namespaces)" ] || die "namespaces ${PREFIX}-* exist already; run '$0 net-down' first"
  trap 'net_down' ERR
  ip netns add "$HUB"
  ip -n "$HUB" link set lo up
  ip -n "$HUB" link add "$BRIDGE" type bridge
  ip -n "$HUB" link set "$BRIDGE" up
  for ((i = 0; i < n; i++)); do
    ns="$(ns_of "$i")"
    hif="$(hub_if "$i")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Created inside the validator's namespace (name eth0), peer moved to the hub.
    ip -n "$ns" link add eth0 type veth peer name "$hif" netns "$HUB"
    ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$HUB" link set "$hif" master "$BRIDGE"
    ip -n "$HUB" link set "$hif" up
  done
  trap - ERR
  say "namespaces up: $HUB + $(for ((i = 0; i < n; i++)); do printf '%s(%s) ' "$(ns_of "$i")" "$(addr_of "$i")"; done)"
}

partition() { ip -n "$HUB" link set "$(hub_if "$1")" down; }
heal() { ip -n "$HUB" link set "$(hub_if "$1")" up; }

shape() {
  local i="$1"
  shift
  # Both directions: the validator's egress (eth0) and its ingress (the hub side's egress).
  ip netns exec "$(ns_of "$i")" tc qdisc replace dev eth0 root "$@"
  ip netns exec "$HUB" tc qdisc replace dev "$(hub_if "$i")" root "$@"
}

unshape() {
  local i="$1"
  ip netns exec "$(ns_of "$i")" tc qdisc del dev eth0 root 2>/dev/null || true
  ip netns exec "$HUB" tc qdisc del dev "$(hub_if "$i")" root 2>/dev/null || true
}

# Rewrites a generated testnet so validator i is reached at addr_of(i): genesis endpoints,
# and each config's listen addresses. Every validator gets the same genesis file.
retarget() {
  local dir="$1" n="$2" hosts="" i
  for ((i = 0; i < n; i++)); do hosts="$hosts${hosts:+,}$(addr_of "$i")"; done
  "$NODE" "$(dirname "$CLI")/ops/retarget-cli.js" --dir "$dir" --hosts "$hosts" \
    --transport-port "$TRANSPORT_PORT" --p2p-port "$P2P_PORT" --api-port "$API_PORT"
}

up() {
  local n="$1" dir="$2" transport="${3:-tcp}" i ns
  [ -f "$CLI" ] || die "validator CLI not built at $CLI (npm run build)"
  net_up "$n"
  mkdir -p "$dir"
  if [ ! -f "$dir/validator0/config.json" ]; then
    "$NODE" "$CLI" testnet --validators "$n" --out "$dir" --transport "$transport" >"$dir/testnet.log" 2>&1 ||
      { cat "$dir/testnet.log" >&2; net_down; die "hybster testnet failed"; }
    retarget "$dir" "$n"
  fi
  : >"$dir/netns-pids"
  for ((i = 0; i < n; i++)); do
    ns="$(ns_of "$i")"
    # `ip netns exec` execs the command, so $! is the validator's own pid.
    HYBSTER_API_HOST=0.0.0.0 ip netns exec "$ns" "$NODE" "$CLI" start --home "$dir/validator$i" \
      >"$dir/validator$i.log" 2>&1 &
    echo "$!" >>"$dir/netns-pids"
  done
  say "validators started; logs in $dir/validator<i>.log"
  say "try: ip netns exec $(ns_of 0) curl -s http://$(addr_of 0):$API_PORT/v1/status"
}

down() {
  local dir="${1:-}" pid
  if [ -n "$dir" ] && [ -f "$dir/netns-pids" ]; then
    while read -r pid; do
      kill -TERM "$pid" 2>/dev/null || true
    done <"$dir/netns-pids"
    sleep 1
    while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done <"$dir/netns-pids"
    rm -f "$dir/netns-pids"
  fi
  net_down
  say "namespaces removed"
}

status() {
  local ns
  for ns in $(existing_namespaces); do
    echo "== $ns"
    ip -n "$ns" -br addr
  done
}

cmd="${1:-}"
shift || true
case "$cmd" in
  check) check ;;
  net-up) net_up "${1:?validator count}" ;;
  net-down) net_down ;;
  up) check && up "${1:?validator count}" "${2:?directory}" "${3:-tcp}" ;;
  down) down "${1:-}" ;;
  partition) partition "${1:?validator index}" ;;
  heal) heal "${1:?validator index}" ;;
  shape) shape "$@" ;;
  unshape) unshape "${1:?validator index}" ;;
  status) status ;;
  *) sed -n '2,20p' "$0" >&2; exit 64 ;;
esac
