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

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

if [[ -z "${HYPERFLOW_TEST_AMQP_URL:-}" ]]; then
  echo "bench.sh: HYPERFLOW_TEST_AMQP_URL is not set; run: scripts/with-servers.sh --rabbitmq --s3 -- $0" >&2
  exit 2
fi

make -s --no-print-directory build
tmp="$(mktemp -d "${TMPDIR:-/tmp}/hyperflow-bench-bin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/bench-run" ./bench/run
go build -o "$tmp/baseline" ./bench/baseline

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
exit "$status"
