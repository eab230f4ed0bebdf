#!/usr/bin/env bash
# demo.sh - the README's `make demo`: a private RabbitMQ broker on loopback,
# two executors (3 threads each), the demo workflow sent over and over, and
# hyperflow-top watching it all. Ctrl+C (or q in hyperflow-top) stops every
# process it started and removes their data.
#
# Without a terminal it runs headless for DEMO_DURATION (default 60s) and
# writes what hyperflow-top collected as CSV, printing where.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
export PATH=$BIN:$PATH

DEMO_DIR=$(mktemp -d /tmp/hyperflow-demo.XXXXXX)
log() { printf 'demo: %s\n' "$*" >&2; }
pids=()

cleanup() {
  trap '' INT TERM
  log "stopping the demo"
  [[ -n "${feeder:-}" ]] && kill -TERM -- "-$feeder" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$ROOT/scripts/rabbitmq.sh" stop "$DEMO_DIR/broker" >/dev/null 2>&1 || true
  rm -rf "$DEMO_DIR"
  log "done: every process stopped, $DEMO_DIR removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log "starting a private RabbitMQ broker (data in $DEMO_DIR)"
"$ROOT/scripts/rabbitmq.sh" start "$DEMO_DIR/broker" >"$DEMO_DIR/broker.log" 2>&1 || {
  cat "$DEMO_DIR/broker.log" >&2
  exit 1
}
# shellcheck disable=SC1091
. "$DEMO_DIR/broker/env"
export AMQP_URL=$HYPERFLOW_TEST_AMQP_URL

mkdir -p "$DEMO_DIR/shared" "$DEMO_DIR/tmp"
for n in 1 2; do
  STORAGE=nfs THREADS=3 HEARTBEAT_INTERVAL=2s HYPERFLOW_TMPDIR=$DEMO_DIR/tmp \
    hyperflow-amqp-executor >"$DEMO_DIR/executor-$n.log" 2>&1 &
  pids+=($!)
done
log "two executors started (logs: $DEMO_DIR/executor-*.log)"

# The feeder, in a process group of its own so that it stops as a whole.
setsid "$ROOT/examples/demo/feed.sh" "$DEMO_DIR/shared" >"$DEMO_DIR/feeder.log" 2>&1 &
feeder=$!
log "sending the demo workflow (split, 4 parallel steps, join, one failing job) continuously"

if [[ -t 0 && -t 1 ]]; then
  log "opening hyperflow-top (q to quit)"
  hyperflow-top || true
else
  out=${DEMO_CSV:-$ROOT/hyperflow-demo.csv}
  log "no terminal: collecting events headless for ${DEMO_DURATION:-60s}"
  hyperflow-top --csv "$out" --duration "${DEMO_DURATION:-60s}"
  log "wrote $(($(wc -l <"$out") - 1)) jobs to $out"
fi
