#!/usr/bin/env bash
# rabbitmq-cluster.sh - run a private, throw-away three-node RabbitMQ cluster
# on loopback for tests (the fault tests of broker clusters).
#
# Usage:
#   scripts/rabbitmq-cluster.sh start DIR   start nodes DIR/n1, DIR/n2, DIR/n3
#                                           (each one a rabbitmq.sh broker) and
#                                           join n2, n3 to n1; writes DIR/env
#   scripts/rabbitmq-cluster.sh stop DIR    stop the nodes and the cluster's
#                                           epmd (idempotent)
#
# The nodes are started by rabbitmq.sh (own node names, AMQP and distribution
# ports, data, logs) with one shared Erlang cookie and one shared epmd of the
# cluster's own, on a free loopback port, so that they find each other and
# nothing else; n2 and n3 are joined with `rabbitmqctl join_cluster`.
#
# After "start", `. DIR/env` exports
#   HYPERFLOW_TEST_CLUSTER_URLS   amqp://guest:guest@127.0.0.1:P1/,...P2/,...P3/
#   HYPERFLOW_TEST_CLUSTER_NODES  the node names, comma-separated, in the same order
#   HYPERFLOW_TEST_CLUSTER_CTLS   rabbitmqctl wrappers of each node, comma-separated
#   HYPERFLOW_TEST_CLUSTER_DIRS   each node's rabbitmq.sh DIR (its beam.smp's pid
#                                 is in DIR/rabbitmq.pid: SIGKILL kills that node
#                                 only; `rabbitmq.sh revive DIR` starts it again)
#   HYPERFLOW_TEST_CLUSTER_SCRIPT this cluster's rabbitmq.sh

set -euo pipefail

readonly LOG_NAME="rabbitmq-cluster"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly NODES=(n1 n2 n3)

do_start() {
  mkdir -p "$DIR"
  local t0
  t0="$(now_ms)"
  trap 'do_stop || true' EXIT
  rm -f "$DIR/env"
  local port
  port="$(free_ports 1)"
  (cd "$DIR" && exec setsid env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$DIR" \
    epmd -port "$port" -address 127.0.0.1 </dev/null >>"$DIR/epmd.log" 2>&1) &
  echo "$!" >"$DIR/epmd.pid"
  echo "$port" >"$DIR/epmd.port"
  local i
  for ((i = 0; i < 100; i++)); do
    tcp_open "$port" && break
    sleep 0.05
  done
  tcp_open "$port" || die "the cluster's epmd did not start on 127.0.0.1:$port"

  local cookie
  cookie="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  # The nodes boot side by side (rabbitmq.sh installs the package if needed:
  # the first one alone does that).
  local -a pids=()
  local n
  for n in "${NODES[@]}"; do
    HYPERFLOW_RABBITMQ_COOKIE="$cookie" HYPERFLOW_RABBITMQ_EPMD_PORT="$port" \
      "$SCRIPT_DIR/rabbitmq.sh" start "$DIR/$n" &
    pids+=("$!")
  done
  local failed=0 p
  for p in "${pids[@]}"; do
    wait "$p" || failed=1
  done
  ((failed == 0)) || die "a node did not start"

  local first
  first="$(node_of n1)"
  for n in "${NODES[@]:1}"; do
    "$DIR/$n/rabbitmqctl" stop_app >/dev/null
    "$DIR/$n/rabbitmqctl" join_cluster "$first" >/dev/null
    "$DIR/$n/rabbitmqctl" start_app >/dev/null
  done
  "$DIR/n1/rabbitmqctl" await_online_nodes 3 --timeout 60 >/dev/null ||
    die "the cluster has not three running nodes"

  local urls="" nodes="" ctls="" dirs=""
  for n in "${NODES[@]}"; do
    # shellcheck disable=SC1091
    url="$(. "$DIR/$n/env" && echo "$HYPERFLOW_TEST_AMQP_URL")"
    urls+="${urls:+,}$url"
    nodes+="${nodes:+,}$(node_of "$n")"
    ctls+="${ctls:+,}$DIR/$n/rabbitmqctl"
    dirs+="${dirs:+,}$DIR/$n"
  done
  {
    printf 'export HYPERFLOW_TEST_CLUSTER_URLS=%s\n' "$urls"
    printf 'export HYPERFLOW_TEST_CLUSTER_NODES=%s\n' "$nodes"
    printf 'export HYPERFLOW_TEST_CLUSTER_CTLS=%s\n' "$ctls"
    printf 'export HYPERFLOW_TEST_CLUSTER_DIRS=%s\n' "$dirs"
    printf 'export HYPERFLOW_TEST_CLUSTER_SCRIPT=%s\n' "$SCRIPT_DIR/rabbitmq.sh"
  } >"$DIR/env"
  trap - EXIT
  log "three nodes clustered ($nodes) in $(seconds $(($(now_ms) - t0)))s"
}

# node_of N prints the Erlang node name of node N.
node_of() {
  sed -n 's/^RABBITMQ_NODENAME=//p' "$DIR/$1/node.env"
}

do_stop() {
  local n
  for n in "${NODES[@]}"; do
    [[ -d "$DIR/$n" ]] && "$SCRIPT_DIR/rabbitmq.sh" stop "$DIR/$n" || true
  done
  local epmd port
  epmd="$(read_pid "$DIR/epmd.pid")"
  port="$(cat "$DIR/epmd.port" 2>/dev/null || true)"
  if alive "$epmd" && [[ "$(cmdline "$epmd")" == *"epmd -port $port "* ]]; then
    kill_pids "$epmd"
  fi
  rm -f "$DIR/env" "$DIR/epmd.pid"
}

(($# == 2)) || usage
cmd="$1"
DIR="$2"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
check_dir
case "$cmd" in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac
