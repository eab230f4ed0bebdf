#!/usr/bin/env bash
# demo.sh - the README's `make demo`: a private RabbitMQ broker on loopback,
# two executors (3 threads each), the demo workflow sent over and over (with
# now and then a stalled transfer, and once a crashed executor), and
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
  [[ -f "$DEMO_DIR/executor-3.pid" ]] && pids+=("$(cat "$DEMO_DIR/executor-3.pid")")
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    # wait works for our own children only; poll the replacement executor.
    wait "$p" 2>/dev/null || while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  done
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
# start_executor N starts executor N in the background and prints its pid.
start_executor() {
  STORAGE=nfs THREADS=3 HEARTBEAT_INTERVAL=2s HYPERFLOW_TMPDIR=$DEMO_DIR/tmp \
    EVENTS_STREAM=hyperflow.events.history \
    hyperflow-amqp-executor >"$DEMO_DIR/executor-$1.log" 2>&1 &
  echo $!
}
for n in 1 2; do
  pids+=("$(start_executor "$n")")
done
log "two executors started (logs: $DEMO_DIR/executor-*.log)"
# They keep every event in the stream hyperflow.events.history
# (EVENTS_STREAM), which hyperflow-top --history reads: wait until one
# declared it.
for _ in $(seq 300); do
  grep -qs "executor ready" "$DEMO_DIR"/executor-*.log && break
  sleep 0.1
done

# Once, after DEMO_CRASH_AFTER seconds (default 75; 0 for never), executor
# 2 is killed with SIGKILL, as a crashed node would be: the monitor marks it
# LOST, its jobs come back from the broker and run again elsewhere (marked
# redelivered), and a third executor takes its place.
if ((${DEMO_CRASH_AFTER:-75} > 0)); then
  (
    sleep "${DEMO_CRASH_AFTER:-75}"
    kill -KILL "${pids[1]}" 2>/dev/null || exit 0
    sleep 20
    start_executor 3 >"$DEMO_DIR/executor-3.pid"
  ) &
  pids+=($!)
fi

# The feeder, in a process group of its own so that it stops as a whole.
setsid "$ROOT/examples/demo/feed.sh" "$DEMO_DIR/shared" >"$DEMO_DIR/feeder.log" 2>&1 &
feeder=$!
log "sending the demo workflow (split, 4 parallel steps, join, one failing job) continuously"

if [[ -t 0 && -t 1 ]]; then
  log "opening hyperflow-top (q to quit)"
  hyperflow-top --history || true
else
  out=${DEMO_CSV:-$ROOT/hyperflow-demo.csv}
  log "no terminal: collecting events headless for ${DEMO_DURATION:-60s}"
  hyperflow-top --history --csv "$out" --duration "${DEMO_DURATION:-60s}"
  log "wrote $(($(wc -l <"$out") - 1)) jobs to $out"
fi
