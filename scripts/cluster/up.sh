#!/usr/bin/env bash
# Brings up a Temporal cluster on this machine: the server built from its Go module (build.sh, cached
# in ~/.cache/warden/bin), a private PostgreSQL for persistence and visibility, 4 history shards,
# Warden's dynamic config and search attributes, everything on 127.0.0.1. Re-running it is safe.
# Prints `export TEMPORAL_ADDRESS=… TEMPORAL_NAMESPACE=… WARDEN_STORE=…` on stdout:
#   eval "$(scripts/cluster/up.sh)"
# Options: --dir DIR (default $WARDEN_CLUSTER_DIR or /tmp/warden-cluster-<uid>), --shards N,
# --namespace NS, --no-fsync, --log-level LEVEL. See docs/cluster.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/build.sh" >&2
cd "$here/../.."
exec node --import tsx scripts/cluster/main.ts up "$@"
