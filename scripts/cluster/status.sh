#!/usr/bin/env bash
# Says where the cluster up.sh started listens and whether it runs; exits 1 when it does not. Option: --dir DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec node --import tsx scripts/cluster/main.ts status "$@"
