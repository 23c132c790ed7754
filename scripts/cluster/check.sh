#!/usr/bin/env bash
# The scripted check of Warden on a real Temporal cluster: builds the server if needed (build.sh), then
# runs test/cluster.test.ts, which brings up its own cluster (PostgreSQL, 4 history shards) in a temp
# directory, runs governed runs with approvals on two worker processes, SIGKILLs one mid-tool-call,
# restarts the Temporal server while runs wait, checks every run completed with each effect once and
# every audit trail intact, and takes the cluster down. Unlike `npm test`, it fails rather than skips
# when the cluster cannot run here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/build.sh" >&2
cd "$here/../.."
cli="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/bin/temporal"
if [ -z "${TEMPORAL_CLI_PATH:-}" ] && [ -x "$cli" ]; then export TEMPORAL_CLI_PATH="$cli"; fi
WARDEN_CLUSTER_TESTS=1 exec npx jest test/cluster.test.ts "$@"
