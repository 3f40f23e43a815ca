#!/usr/bin/env bash
# Stops a namespace testnet and removes every hyb-* namespace, whatever state it is in.
# Safe to run any number of times (tests run it before and after themselves).
#   netns-testnet-teardown.sh [<dir>]
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/netns-testnet.sh" down "${1:-}"
