#!/usr/bin/env bash
# bench.sh - run every benchmark of the project (bench/run) and print one
# table; the figures also go to bench/results/ as JSON (docs/benchmarks.md).
#
# Usage (what `make bench` does):
#   scripts/with-servers.sh --rabbitmq --s3 -- scripts/bench.sh [FLAGS...]
#
# Needs the private broker of with-servers.sh (HYPERFLOW_TEST_AMQP_URL);
# with --s3 (HYPERFLOW_TEST_S3_*) the staging benchmark runs too, without it
# its rows say "skipped (no S3 server)". Builds the commands (make build)
# and the bench programs first. FLAGS go to bench/run, e.g. --reps 3,
# --skip staging,monitor, --cloud-size 256MiB; see go run ./bench/run -h.
# The staging-many comparison uses s5cmd, installed on first use into
# ${HYPERFLOW_CACHE:-~/.cache/hyperflow}/bin (HYPERFLOW_S5CMD to give one).

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

if [[ -z "${HYPERFLOW_TEST_AMQP_URL:-}" ]]; then
  echo "bench.sh: HYPERFLOW_TEST_AMQP_URL is not set; run: scripts/with-servers.sh --rabbitmq --s3 -- $0" >&2
  exit 2
fi

# ensure_s5cmd prints the path of s5cmd (the staging-many comparison),
# installing the pinned version into the cache first when it is not there:
# `go install`, or, when the module proxy refuses the module's version list
# (which go install reads for deprecations), the same version built from a
# throw-away module that requires it. Nothing is printed when both fail.
readonly S5CMD_VERSION="v2.3.0"
ensure_s5cmd() {
  local cache="${HYPERFLOW_CACHE:-$HOME/.cache/hyperflow}/bin"
  local bin="$cache/s5cmd-$S5CMD_VERSION"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$cache"
    local tmp
    tmp="$(mktemp -d "$cache/.install.XXXXXX")"
    echo "bench.sh: installing s5cmd $S5CMD_VERSION into $cache (go install)" >&2
    if ! GOBIN="$tmp" go install "github.com/peak/s5cmd/v2@$S5CMD_VERSION" >"$tmp/log" 2>&1; then
      if ! (cd "$tmp" &&
        printf 'module s5cmdbuild\n\ngo 1.24\n\nrequire github.com/peak/s5cmd/v2 %s\n' "$S5CMD_VERSION" >go.mod &&
        printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/peak/s5cmd/v2"\n' >tools.go &&
        go mod tidy && GOFLAGS=-mod=mod go build -ldflags "-X github.com/peak/s5cmd/v2/version.Version=$S5CMD_VERSION" -o "$tmp/s5cmd" github.com/peak/s5cmd/v2) >>"$tmp/log" 2>&1; then
        echo "bench.sh: s5cmd could not be installed; its comparison is skipped:" >&2
        tail -5 "$tmp/log" >&2
        rm -rf "$tmp"
        return 0
      fi
    fi
    mv "$tmp/s5cmd" "$bin"
    rm -rf "$tmp"
  fi
  echo "$bin"
}

make -s --no-print-directory build
if [[ -z "${HYPERFLOW_S5CMD:-}" ]]; then
  HYPERFLOW_S5CMD="$(ensure_s5cmd)"
  export HYPERFLOW_S5CMD
fi
tmp="$(mktemp -d "${TMPDIR:-/tmp}/hyperflow-bench-bin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/bench-run" ./bench/run
go build -o "$tmp/baseline" ./bench/baseline
go build -o "$tmp/history" ./bench/history

# In the background so that a TERM or INT for this script is passed on at
# once (bench/run then stops the executors it started and exits).
"$tmp/bench-run" --amqp-url "$HYPERFLOW_TEST_AMQP_URL" --bin bin --baseline "$tmp/baseline" \
  --results bench/results "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
status=0
while :; do
  wait "$pid" && status=0 || status=$?
  kill -0 "$pid" 2>/dev/null || break # still running: wait was cut short by a signal
done

# hyperflow-top --history catching up on a stream of HISTORY_EVENTS
# (100000) events, against a plain stream consumer (bench/history);
# BENCH_HISTORY=0 skips it.
if [[ "${BENCH_HISTORY:-1}" != 0 ]]; then
  out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-history.txt"
  echo "== monitor reading history from a stream (bench/history) -> $out"
  "$tmp/history" -amqp-url "$HYPERFLOW_TEST_AMQP_URL" -events "${HISTORY_EVENTS:-100000}" | tee "$out" || status=1
fi
exit "$status"
