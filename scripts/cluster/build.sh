#!/usr/bin/env bash
# Builds the Temporal server (`temporal-server`) and its SQL schema tool (`temporal-sql-tool`, which
# carries the schema files of the module's schema/ directory) from the Go module go.temporal.io/server
# into $WARDEN_CACHE_DIR/bin (default ~/.cache/warden/bin), and the Temporal Web UI
# (`temporal-ui-server`, github.com/temporalio/ui-server/v2, the version the CLI v1.5.1 embeds) unless
# WARDEN_CLUSTER_UI=0; a failed UI build only warns. Does nothing when those versions are there already. The default version is the server line the
# Temporal CLI v1.5.1 embeds (1.29); TEMPORAL_SERVER_VERSION picks another.
#
# The first build takes several minutes (it compiles the whole server); it runs under `nice`.
set -euo pipefail

VERSION="${TEMPORAL_SERVER_VERSION:-v1.29.1}"
CACHE_DIR="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}"
BIN_DIR="$CACHE_DIR/bin"
MODULE=go.temporal.io/server

log() { echo "[cluster build] $*" >&2; }
die() {
  echo "[cluster build] error: $*" >&2
  exit 1
}

installed_version() { cat "$BIN_DIR/temporal-server.version" 2>/dev/null || true; }

# The Temporal Web UI (optional: up.sh starts it when it is there). A failed build only warns.
build_ui() {
  local ui_version="${TEMPORAL_UI_VERSION:-v2.42.1}"
  if [ -x "$BIN_DIR/temporal-ui-server" ] && [ "$(cat "$BIN_DIR/temporal-ui-server.version" 2>/dev/null)" = "$ui_version" ]; then return 0; fi
  command -v go >/dev/null || return 0
  local ui_work
  ui_work="$(mktemp -d "${TMPDIR:-/tmp}/warden-ui-build.XXXXXX")"
  log "go install github.com/temporalio/ui-server/v2/cmd/server@$ui_version (the Web UI; a minute or two the first time, under nice)"
  if GOBIN="$ui_work" nice -n 10 go install "github.com/temporalio/ui-server/v2/cmd/server@$ui_version" >"$ui_work.log" 2>&1 && [ -x "$ui_work/server" ]; then
    mv -f "$ui_work/server" "$BIN_DIR/temporal-ui-server"
    echo "$ui_version" >"$BIN_DIR/temporal-ui-server.version"
    log "built $BIN_DIR/temporal-ui-server ($ui_version)"
  else
    log "warning: go build of the Temporal Web UI (github.com/temporalio/ui-server/v2@$ui_version) failed; the cluster runs without it: $(tail -n 5 "$ui_work.log")"
  fi
  rm -rf "$ui_work" "$ui_work.log"
}

if [ -x "$BIN_DIR/temporal-server" ] && [ -x "$BIN_DIR/temporal-sql-tool" ] && [ "$(installed_version)" = "$VERSION" ]; then
  log "temporal-server and temporal-sql-tool $VERSION already in $BIN_DIR"
  [ "${WARDEN_CLUSTER_UI:-1}" = "0" ] || build_ui
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH: the Temporal server is built from its Go module ($MODULE@$VERSION)"
mkdir -p "$BIN_DIR"
work="$(mktemp -d "${TMPDIR:-/tmp}/warden-server-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

log "downloading $MODULE@$VERSION"
# `go mod download -json` names the module's source directory and go.mod in the module cache.
info="$(go mod download -json "$MODULE@$VERSION" 2>&1)" || die "go mod download $MODULE@$VERSION failed: $info"
src="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -n "$src" ] && [ -f "$src/go.mod" ] || die "go mod download $MODULE@$VERSION gave no source directory: $info"

mkdir -p "$work/bin"
if grep -Eq '^[[:space:]]*replace[[:space:]]' "$src/go.mod"; then
  # `go install pkg@version` refuses a module whose go.mod has replace directives: build a copy of its source.
  log "$MODULE@$VERSION has replace directives; building from a copy of its source (several minutes, under nice)"
  cp -R "$src" "$work/src" && chmod -R u+w "$work/src"
  (cd "$work/src" && nice -n 10 go build -o "$work/bin/server" ./cmd/server && nice -n 10 go build -o "$work/bin/sql" ./cmd/tools/sql) \
    >"$work/build.log" 2>&1 || die "go build of $MODULE@$VERSION failed: $(tail -n 30 "$work/build.log")"
else
  log "go install $MODULE/cmd/server and cmd/tools/sql @$VERSION (several minutes the first time, under nice)"
  GOBIN="$work/bin" nice -n 10 go install "$MODULE/cmd/server@$VERSION" "$MODULE/cmd/tools/sql@$VERSION" \
    >"$work/build.log" 2>&1 || die "go build of $MODULE@$VERSION failed: $(tail -n 30 "$work/build.log")"
fi
[ -x "$work/bin/server" ] && [ -x "$work/bin/sql" ] || die "the build of $MODULE@$VERSION finished without the server and sql tool binaries"

mv -f "$work/bin/server" "$BIN_DIR/temporal-server"
mv -f "$work/bin/sql" "$BIN_DIR/temporal-sql-tool"
echo "$VERSION" >"$BIN_DIR/temporal-server.version"
log "built $BIN_DIR/temporal-server and $BIN_DIR/temporal-sql-tool ($VERSION)"
[ "${WARDEN_CLUSTER_UI:-1}" = "0" ] || build_ui
