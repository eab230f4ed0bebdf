#!/usr/bin/env bash
# with-servers.sh - run a command with private test servers on loopback.
#
# Usage:
#   scripts/with-servers.sh [--rabbitmq] [--rabbitmq4] [--rabbitmq-cluster] [--s3] [--gridftp] [--redis] -- CMD [ARGS...]
#
# Creates a temporary directory, starts the requested servers in it (each
# one privately, on free 127.0.0.1 ports, never touching system services),
# exports the variables from their env files (e.g. HYPERFLOW_TEST_AMQP_URL)
# plus HYPERFLOW_TEST_REQUIRE_SERVERS=1 (so tests fail instead of skipping
# when a server they need is missing), runs CMD, then stops the servers and
# removes the directory - also on failure, Ctrl-C or SIGTERM. Exits with
# CMD's status (128+N if the script was killed by signal N).
#
# Example:
#   scripts/with-servers.sh --rabbitmq -- go test ./...
#
# Servers:
#   --rabbitmq    RabbitMQ 3.10 (Debian 12's package), rabbitmq.sh:
#                 HYPERFLOW_TEST_AMQP_URL, HYPERFLOW_TEST_RABBITMQCTL
#   --rabbitmq4   RabbitMQ 4.0 (Debian 13's package, run in a cached trixie
#                 root; the first start builds it, a few minutes) with a TLS
#                 listener that requires client certificates, rabbitmq4.sh
#                 (as root): HYPERFLOW_TEST_AMQP4_URL, HYPERFLOW_TEST_AMQPS4_URL,
#                 HYPERFLOW_TEST_TLS_{CA,CERT,KEY,DIR},
#                 HYPERFLOW_TEST_RABBITMQ4CTL. Not part of `make test` yet; by
#                 hand, e.g.:
#                   scripts/with-servers.sh --rabbitmq --rabbitmq4 -- \
#                     go test -count=1 ./...
#   --rabbitmq-cluster  three RabbitMQ 3.10 nodes clustered, rabbitmq-cluster.sh:
#                 HYPERFLOW_TEST_CLUSTER_{URLS,NODES,CTLS,DIRS,SCRIPT}
#   --s3          S3-compatible store (versitygw), s3.sh
#   --gridftp     anonymous GridFTP server, gridftp.sh
#
# Environment:
#   HYPERFLOW_KEEP_SERVERS_DIR=1   keep the temporary directory (logs, data)
#                                  after the run, for debugging
#   RABBITMQ_EXTRA_CONF            passed on to rabbitmq.sh and rabbitmq4.sh
#                                  (lines appended to rabbitmq.conf)
#
# Adding a server X: write start_X DIR (start it with its files under DIR,
# wait until it is ready, write DIR/env with `export NAME=VALUE` lines) and
# stop_X DIR (idempotent; must also work after a failed or partial start),
# add X to ALL_SERVERS and to the option parsing below.

# The server functions and traps are invoked indirectly (start_$s, trap).
# shellcheck disable=SC2317

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
readonly SCRIPT_DIR

# Start order; servers are stopped in reverse order. The stubs come first
# so that a request for a server that does not exist yet fails at once.
readonly ALL_SERVERS=(s3 gridftp redis rabbitmq rabbitmq4 rabbitmq-cluster)

log() { printf 'with-servers: %s\n' "$*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $0 [--rabbitmq] [--rabbitmq4] [--rabbitmq-cluster] [--s3] [--gridftp] [--redis] -- CMD [ARGS...]
Runs CMD with private test servers on loopback (see the comment in $0).
EOF
  exit 2
}

# ------------------------------------------------------------- servers ----
# Each server X has start_X DIR and stop_X DIR.

start_rabbitmq() { "$SCRIPT_DIR/rabbitmq.sh" start "$1"; }
stop_rabbitmq() { "$SCRIPT_DIR/rabbitmq.sh" stop "$1"; }

# Three clustered RabbitMQ nodes (see rabbitmq-cluster.sh).
start_rabbitmq-cluster() { "$SCRIPT_DIR/rabbitmq-cluster.sh" start "$1"; }
stop_rabbitmq-cluster() { "$SCRIPT_DIR/rabbitmq-cluster.sh" stop "$1"; }

# RabbitMQ 4.0 with TLS, in a trixie root (see rabbitmq4.sh).
start_rabbitmq4() { "$SCRIPT_DIR/rabbitmq4.sh" start "$1"; }
stop_rabbitmq4() { "$SCRIPT_DIR/rabbitmq4.sh" stop "$1"; }

# S3-compatible object store (versitygw).
start_s3() { "$SCRIPT_DIR/s3.sh" start "$1"; }
stop_s3() { "$SCRIPT_DIR/s3.sh" stop "$1"; }

# Anonymous GridFTP server (globus-gridftp-server), see gridftp.sh.
start_gridftp() { "$SCRIPT_DIR/gridftp.sh" start "$1"; }
stop_gridftp() { "$SCRIPT_DIR/gridftp.sh" stop "$1"; }

# Redis (Debian's redis-server), for the worker-pool mode, see redis.sh.
start_redis() { "$SCRIPT_DIR/redis.sh" start "$1"; }
stop_redis() { "$SCRIPT_DIR/redis.sh" stop "$1"; }

# ------------------------------------------------------------ arguments ---

declare -A want=()
while (($#)); do
  case "$1" in
  --rabbitmq) want[rabbitmq]=1 ;;
  --rabbitmq4) want[rabbitmq4]=1 ;;
  --rabbitmq-cluster) want[rabbitmq-cluster]=1 ;;
  --s3) want[s3]=1 ;;
  --gridftp) want[gridftp]=1 ;;
  --redis) want[redis]=1 ;;
  --)
    shift
    break
    ;;
  -h | --help) usage ;;
  *)
    log "unknown option: $1"
    usage
    ;;
  esac
  shift
done
(($#)) || usage

# --------------------------------------------------------------- cleanup --

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hyperflow-servers.XXXXXX")"
started=()   # servers whose start_X was called (maybe partially started)
cmd_pid=""   # pid of CMD while it runs
cleaned=0

# cleanup stops every server that was (being) started, in reverse order, and
# removes WORK. Runs once, from the EXIT trap; never changes the exit status.
cleanup() {
  ((cleaned)) && return 0
  cleaned=1
  trap "" INT TERM # Ctrl-C during the cleanup must not leave servers behind
  set +e
  local i s
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    s="${started[i]}"
    "stop_$s" "$WORK/$s" || log "warning: stopping $s failed"
  done
  if [[ "${HYPERFLOW_KEEP_SERVERS_DIR:-}" == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}

# on_signal SIG CODE forwards SIG to CMD (if running), waits for it, and
# exits with CODE; the EXIT trap then stops the servers.
on_signal() {
  trap '' INT TERM # a second Ctrl-C must not interrupt the cleanup
  set +e
  if [[ -n "$cmd_pid" ]]; then
    kill -s "$1" "$cmd_pid" 2>/dev/null
    wait "$cmd_pid" 2>/dev/null
  fi
  log "interrupted by SIG$1"
  exit "$2"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# ------------------------------------------------------------------ main --

for s in "${ALL_SERVERS[@]}"; do
  [[ -n "${want[$s]:-}" ]] || continue
  started+=("$s")
  mkdir -p "$WORK/$s"
  "start_$s" "$WORK/$s" || {
    log "error: could not start $s"
    exit 1
  }
  if [[ -f "$WORK/$s/env" ]]; then
    # shellcheck source=/dev/null
    . "$WORK/$s/env"
  fi
done

export HYPERFLOW_TEST_REQUIRE_SERVERS=1

# CMD runs as a background job so that a TERM/INT sent to this script is
# handled at once (bash defers traps while a foreground child runs). A
# background job would get /dev/null as stdin and ignore SIGINT/SIGQUIT;
# the explicit <&0 and the trap reset undo both, so interactive commands
# (make demo) still get the terminal and Ctrl-C.
(
  trap - INT QUIT TERM
  exec "$@"
) <&0 &
cmd_pid=$!

status=0
wait "$cmd_pid" || status=$?
cmd_pid=""
exit "$status"
