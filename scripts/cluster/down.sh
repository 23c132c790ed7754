#!/usr/bin/env bash
# Stops the cluster up.sh started (the server, then PostgreSQL); --purge also removes its data.
# Options: --dir DIR, --purge. See docs/cluster.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec node --import tsx scripts/cluster/main.ts down "$@"
