#!/usr/bin/env bash
# hyperflow-engine.sh - install the real HyperFlow engine and Node job
# listener, pinned, for the worker-pool end-to-end test.
#
# Usage:
#   scripts/hyperflow-engine.sh install   install if missing; print the
#                                         node_modules directory holding
#                                         @hyperflow/hyperflow and
#                                         @hyperflow/job-executor
#
# Installs Node.js and npm from Debian when `node` is missing (needs root or
# password-less sudo), then `npm install`s the pinned packages from the npm
# registry into
#   ${HYPERFLOW_CACHE:-$HOME/.cache/hyperflow}/npm/<versions>/node_modules
# (a private directory renamed into place, so concurrent installs never see
# a half-written tree). Nothing is installed globally. A later call prints
# the cached directory at once.
#
# Optional environment:
#   HYPERFLOW_CACHE   cache directory (default ~/.cache/hyperflow)

set -euo pipefail

readonly LOG_NAME="hyperflow-engine"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly ENGINE="@hyperflow/hyperflow@1.7.0"
readonly LISTENER="@hyperflow/job-executor@1.4.2"
readonly CACHE_DIR="${HYPERFLOW_CACHE:-$HOME/.cache/hyperflow}/npm"

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  log "node or npm not found; installing the Debian packages nodejs and npm"
  apt_install nodejs npm
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "nodejs installed but node or npm is missing"
  fi
}

do_install() {
  local dest="$CACHE_DIR/hyperflow-1.7.0_job-executor-1.4.2"
  if [[ -f "$dest/node_modules/@hyperflow/hyperflow/bin/hflow" &&
    -f "$dest/node_modules/@hyperflow/job-executor/hflow-job-listener.js" ]]; then
    echo "$dest/node_modules"
    return 0
  fi
  ensure_node
  mkdir -p "$CACHE_DIR"
  local tmp t0
  tmp="$(mktemp -d "$CACHE_DIR/.install.XXXXXX")"
  t0="$(now_ms)"
  log "installing $ENGINE and $LISTENER into $dest"
  # The engine declares node ~12 but runs on current Node: ignore the
  # engine field. No audit, no funding notices, no scripts of our own.
  if ! (cd "$tmp" && echo '{"private": true}' >package.json &&
    npm install --no-audit --no-fund --engine-strict=false --loglevel=error \
      "$ENGINE" "$LISTENER" </dev/null >&2); then
    rm -rf "$tmp"
    die "npm install $ENGINE $LISTENER failed"
  fi
  rm -rf "$dest.old"
  [[ -d "$dest" ]] && mv "$dest" "$dest.old"
  mv "$tmp" "$dest"
  rm -rf "$dest.old"
  log "installed in $(seconds $(($(now_ms) - t0)))s"
  echo "$dest/node_modules"
}

case "${1:-}" in
install) do_install ;;
*)
  echo "usage: $0 install" >&2
  exit 2
  ;;
esac
