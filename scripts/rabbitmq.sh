#!/usr/bin/env bash
# rabbitmq.sh - run a private, throw-away RabbitMQ broker on loopback for tests.
#
# Usage:
#   scripts/rabbitmq.sh start DIR   start a broker whose config, data and logs
#                                   live under DIR; writes DIR/env
#   scripts/rabbitmq.sh stop DIR    stop that broker (idempotent)
#   scripts/rabbitmq.sh ctl DIR ARGS...  run rabbitmqctl ARGS against it
#
# After "start", `. DIR/env` exports
#   HYPERFLOW_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/
#   HYPERFLOW_TEST_RABBITMQCTL=DIR/rabbitmqctl  (a wrapper of "ctl DIR", for
#                                  tests that close connections or change
#                                  settings of the running broker)
#
# The broker never touches the system RabbitMQ service (if the Debian package
# started one, it is left alone): it has its own node name, config, data dir,
# log dir, Erlang cookie (via a private HOME), its own epmd on its own port,
# and its own AMQP and distribution ports. All of them are free ports on
# loopback, picked at start. Every RabbitMQ/Erlang command is run under
# `env -i` with only the private environment, so settings in the caller's
# environment or in /etc/rabbitmq cannot leak in.
#
# Optional environment:
#   RABBITMQ_EXTRA_CONF            lines appended to rabbitmq.conf
#                                  (e.g. "consumer_timeout = 5000")
#   HYPERFLOW_RABBITMQ_TIMEOUT     seconds to wait for the broker (default 90)
#   HYPERFLOW_RABBITMQ_BIN         directory holding the unwrapped RabbitMQ
#                                  scripts (default /usr/lib/rabbitmq/bin)
#   HYPERFLOW_RABBITMQ_COOKIE      the Erlang cookie (default: a random one);
#                                  the nodes of a cluster share one
#   HYPERFLOW_RABBITMQ_EPMD_PORT   port of an epmd already running on
#                                  127.0.0.1 (the cluster's, see
#                                  rabbitmq-cluster.sh): no epmd of its own
#
#   scripts/rabbitmq.sh revive DIR   start again, with its data, a node of DIR
#                                    that was killed (the cluster tests)
#
# If RabbitMQ is not installed, "start" installs the Debian package
# (needs root or password-less sudo).
#
# Files under DIR: rabbitmq.conf, enabled_plugins, rabbitmq-env.conf (empty,
# shadows /etc/rabbitmq/rabbitmq-env.conf), advanced.config (absent),
# home/.erlang.cookie, mnesia/, log/, node.env (the private environment),
# *.pid, env.

set -euo pipefail

readonly LOG_NAME="rabbitmq"
# log, die, usage and the helpers shared with the other server scripts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The Debian package puts wrappers in /usr/sbin that `su` to the rabbitmq
# user and use /var/lib/rabbitmq; we must call the real scripts directly.
readonly RMQ_BIN="${HYPERFLOW_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
readonly START_TIMEOUT="${HYPERFLOW_RABBITMQ_TIMEOUT:-90}"
# Marker argument added to the server command line (it is passed through to
# erl, which ignores unknown flags) so the processes of one DIR can be found.
readonly MARKER_FLAG="-hyperflow_testenv_dir"

# ---------------------------------------------------------------- helpers --

# marked_pids prints the pids of processes whose command line carries this
# DIR's marker (the rabbitmq-server shell wrapper and beam.smp).
marked_pids() {
  pids_where marked
}

# marked PID succeeds if the command line of PID carries this DIR's marker.
marked() {
  [[ "$(cmdline "$1")" == *"$MARKER_FLAG $DIR "* ]]
}

# ensure_installed installs the Debian rabbitmq-server package if missing.
ensure_installed() {
  [[ -x "$RMQ_BIN/rabbitmq-server" ]] && command -v epmd >/dev/null && return 0
  log "RabbitMQ not found in $RMQ_BIN; installing the Debian package"
  # The package's postinst may start the system broker on 5672; that is
  # left alone - our broker uses its own ports and node.
  apt_install rabbitmq-server
  [[ -x "$RMQ_BIN/rabbitmq-server" ]] ||
    die "rabbitmq-server installed but $RMQ_BIN/rabbitmq-server is missing"
}

# load_node_env fills PRIV_ENV, NODE and EPMD_PORT from DIR/node.env.
load_node_env() {
  mapfile -t PRIV_ENV <"$DIR/node.env"
  local kv
  NODE=""
  for kv in "${PRIV_ENV[@]}"; do
    [[ "$kv" == RABBITMQ_NODENAME=* ]] && NODE="${kv#*=}"
    [[ "$kv" == ERL_EPMD_PORT=* ]] && EPMD_PORT="${kv#*=}"
  done
  [[ -n "$NODE" ]] || die "$DIR/node.env has no RABBITMQ_NODENAME"
}

# priv CMD... runs CMD in DIR with only the private environment.
priv() {
  (cd "$DIR" && exec env -i "${PRIV_ENV[@]}" "$@" </dev/null)
}

# ctl ARGS... runs rabbitmqctl against our node.
ctl() {
  priv "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"
}

# show_logs prints the tail of the broker's logs (for failures).
show_logs() {
  local f
  for f in "$DIR/log/startup.log" "$DIR/log/$NODE.log" "$DIR/log/epmd.log"; do
    [[ -s "$f" ]] || continue
    # (epmd logs a harmless line for each of our readiness probes)
    grep -qv "got partial packet only" "$f" || continue
    echo "----- tail of $f -----" >&2
    grep -v "got partial packet only" "$f" | tail -n 40 >&2
  done
}

# ------------------------------------------------------------------ start --

# A failed or interrupted start must not leave processes behind: once the
# start begins launching things, an EXIT trap runs start_cleanup until the
# broker is ready.
start_done=0

# start_cleanup stops whatever an unfinished start has launched (once).
start_cleanup() {
  ((start_done)) && return 0
  start_done=1
  trap '' INT TERM
  do_stop || true
}

do_start() {
  ensure_installed
  mkdir -p "$DIR"

  # Refuse to start twice on one DIR; otherwise begin from clean state.
  if [[ -n "$(marked_pids)" ]]; then
    die "a broker for $DIR is already running; run: $0 stop $DIR"
  fi
  trap start_cleanup EXIT
  # Ctrl-C, kill: start_cleanup, then die by the signal (see abort_start).
  abort_start_on_signals start_cleanup
  rm -rf "${DIR:?}/mnesia" "${DIR:?}/log" "${DIR:?}/home" "${DIR:?}/env" "${DIR:?}"/*.pid
  mkdir -p "$DIR/mnesia" "$DIR/log" "$DIR/home"

  local t0
  t0="$(now_ms)"

  local -a ports
  mapfile -t ports < <(free_ports 3)
  ((${#ports[@]} == 3)) || die "could not get free ports"
  local amqp_port="${ports[0]}" dist_port="${ports[1]}" epmd_port="${ports[2]}"
  local shared_epmd="${HYPERFLOW_RABBITMQ_EPMD_PORT:-}"
  [[ -z "$shared_epmd" ]] || epmd_port="$shared_epmd"
  NODE="hftest-$amqp_port@localhost"

  # Private Erlang cookie (Erlang reads $HOME/.erlang.cookie; must be 0400).
  if [[ -n "${HYPERFLOW_RABBITMQ_COOKIE:-}" ]]; then
    (umask 077 && printf '%s' "$HYPERFLOW_RABBITMQ_COOKIE" >"$DIR/home/.erlang.cookie")
  else
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$DIR/home/.erlang.cookie")
  fi
  chmod 400 "$DIR/home/.erlang.cookie"

  # No plugins at all (no management UI, no extra listeners).
  echo '[].' >"$DIR/enabled_plugins"
  # Empty env file, so /etc/rabbitmq/rabbitmq-env.conf is not read.
  : >"$DIR/rabbitmq-env.conf"

  {
    echo "# Generated by scripts/rabbitmq.sh for a private test broker."
    echo "listeners.tcp.1 = 127.0.0.1:$amqp_port"
    echo "loopback_users.guest = true"
    echo "log.file.level = info"
    echo "log.console = false"
    if [[ -n "${RABBITMQ_EXTRA_CONF:-}" ]]; then
      echo "# RABBITMQ_EXTRA_CONF"
      printf '%s\n' "$RABBITMQ_EXTRA_CONF"
    fi
  } >"$DIR/rabbitmq.conf"

  # The private environment for every RabbitMQ/Erlang command of this DIR.
  # ERL_AFLAGS applies to every erl started (server, CLI, helpers) and binds
  # their distribution listeners to 127.0.0.1 only.
  PRIV_ENV=(
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "HOME=$DIR/home"
    "LANG=C.UTF-8"
    "LC_ALL=C.UTF-8"
    "RABBITMQ_NODENAME=$NODE"
    "RABBITMQ_USE_LONGNAME=false"
    "RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf"
    "RABBITMQ_CONFIG_FILE=$DIR/rabbitmq.conf"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins"
    "RABBITMQ_MNESIA_BASE=$DIR/mnesia"
    "RABBITMQ_LOG_BASE=$DIR/log"
    "RABBITMQ_PID_FILE=$DIR/rabbitmq.pid"
    "RABBITMQ_DIST_PORT=$dist_port"
    "ERL_EPMD_PORT=$epmd_port"
    "ERL_EPMD_ADDRESS=127.0.0.1"
    "ERL_AFLAGS=-kernel inet_dist_use_interface {127,0,0,1}"
  )
  # Speed: RabbitMQ loads and scans (config schemas, feature flags) every
  # application in its plugins directory at boot, which costs seconds. We
  # enable no plugins, so give it a private plugins directory holding only
  # the core applications (everything except the optional rabbitmq_*
  # plugins). Skipped if the installation layout is not recognised.
  local rmq_home
  rmq_home="$(dirname "$(dirname "$(readlink -f "$RMQ_BIN/rabbitmq-server")")")"
  if compgen -G "$rmq_home/plugins/rabbit-[0-9]*" >/dev/null; then
    rm -rf "${DIR:?}/plugins"
    mkdir -p "$DIR/plugins"
    local app name
    for app in "$rmq_home"/plugins/*; do
      name="${app##*/}"
      case "$name" in
      rabbitmq_prelaunch-*) ;; # core, despite its name
      rabbitmq_*) continue ;;  # optional plugin
      esac
      ln -s "$app" "$DIR/plugins/$name"
    done
    PRIV_ENV+=("RABBITMQ_PLUGINS_DIR=$DIR/plugins")
  fi
  printf '%s\n' "${PRIV_ENV[@]}" >"$DIR/node.env"

  # Our own epmd, started first so that erl finds it instead of spawning a
  # daemon we could not track. setsid: terminal signals must not reach it.
  # (A cluster's nodes share the cluster's epmd instead.)
  if [[ -z "$shared_epmd" ]]; then
    (cd "$DIR" && exec setsid env -i "${PRIV_ENV[@]}" \
      epmd -port "$epmd_port" -address 127.0.0.1 \
      </dev/null >>"$DIR/log/epmd.log" 2>&1) &
    echo $! >"$DIR/epmd.pid"
    local i
    for ((i = 0; i < 100; i++)); do
      tcp_open "$epmd_port" && break
      alive "$(read_pid "$DIR/epmd.pid")" || break
      sleep 0.05
    done
  fi
  tcp_open "$epmd_port" || { show_logs; die "epmd did not start on 127.0.0.1:$epmd_port"; }

  # The broker itself, in its own session; arguments after the script name
  # are passed to erl, which is how the marker reaches beam.smp's cmdline.
  (cd "$DIR" && exec setsid env -i "${PRIV_ENV[@]}" \
    "$RMQ_BIN/rabbitmq-server" "$MARKER_FLAG" "$DIR" \
    </dev/null >>"$DIR/log/startup.log" 2>&1) &
  echo $! >"$DIR/server.pid"

  # Wait until the AMQP port accepts connections and the node log says the
  # boot is complete (the listener opens a moment before the last boot
  # steps). Checking the log is free, whereas a CLI call costs 1-2 s of
  # Erlang/Elixir startup; `rabbitmqctl await_startup` is only the fallback
  # for a RabbitMQ version whose log line differs.
  local deadline=$((t0 + START_TIMEOUT * 1000)) port_up_at=""
  local node_log="$DIR/log/$NODE.log"
  while :; do
    if ! alive "$(read_pid "$DIR/server.pid")"; then
      show_logs
      die "broker exited during startup (logs above, DIR=$DIR)"
    fi
    if (($(now_ms) > deadline)); then
      show_logs
      die "broker did not become ready on 127.0.0.1:$amqp_port within ${START_TIMEOUT}s (logs above)"
    fi
    if [[ -z "$port_up_at" ]]; then
      tcp_open "$amqp_port" && port_up_at="$(now_ms)"
    fi
    if [[ -n "$port_up_at" ]]; then
      grep -q 'Server startup complete' "$node_log" 2>/dev/null && break
      if (($(now_ms) - port_up_at > 5000)); then
        local left=$(((deadline - $(now_ms)) / 1000))
        ((left >= 5)) || left=5
        if ! ctl await_startup --timeout "$left" >>"$DIR/log/ctl.log" 2>&1; then
          show_logs
          tail -n 20 "$DIR/log/ctl.log" >&2 || true
          die "broker did not finish booting (logs above)"
        fi
        break
      fi
    fi
    sleep 0.1
  done

  local url="amqp://guest:guest@127.0.0.1:$amqp_port/"
  printf 'export HYPERFLOW_TEST_AMQP_URL=%s\n' "$url" >"$DIR/env"
  printf '#!/usr/bin/env bash\nexec %q ctl %q "$@"\n' "$SELF" "$DIR" >"$DIR/rabbitmqctl"
  chmod +x "$DIR/rabbitmqctl"
  printf 'export HYPERFLOW_TEST_RABBITMQCTL=%s\n' "$DIR/rabbitmqctl" >>"$DIR/env"
  start_done=1
  trap - EXIT INT TERM

  log "$NODE ready at $url (dist $dist_port, epmd $epmd_port) - started in $(seconds $(($(now_ms) - t0)))s"
}

# ----------------------------------------------------------------- revive --

# do_revive starts again a node whose Erlang VM was killed, with its data
# (a cluster node rejoins its cluster), and waits until it runs.
do_revive() {
  load_node_env
  if alive "$(read_pid "$DIR/rabbitmq.pid")" && marked "$(read_pid "$DIR/rabbitmq.pid")"; then
    die "$NODE is running"
  fi
  (cd "$DIR" && exec setsid env -i "${PRIV_ENV[@]}" \
    "$RMQ_BIN/rabbitmq-server" "$MARKER_FLAG" "$DIR" \
    </dev/null >>"$DIR/log/startup.log" 2>&1) &
  echo $! >"$DIR/server.pid"
  # await_startup fails at once while the VM is not yet registered: retry.
  local t0 deadline
  t0="$(now_ms)"
  deadline=$((t0 + START_TIMEOUT * 1000))
  until ctl await_startup --timeout 10 >>"$DIR/log/ctl.log" 2>&1; do
    if ! alive "$(read_pid "$DIR/server.pid")" || (($(now_ms) > deadline)); then
      show_logs
      die "$NODE did not come back (logs above)"
    fi
    sleep 0.5
  done
  log "$NODE revived in $(seconds $(($(now_ms) - t0)))s"
}

# ------------------------------------------------------------------- stop --

do_stop() {
  if [[ ! -f "$DIR/node.env" ]]; then
    log "nothing to stop in $DIR"
    rm -f "$DIR/env"
    return 0
  fi
  load_node_env

  local beam server epmd
  local was_running=0
  beam="$(read_pid "$DIR/rabbitmq.pid")"
  server="$(read_pid "$DIR/server.pid")"
  epmd="$(read_pid "$DIR/epmd.pid")"

  # Graceful stop; with the pid file, rabbitmqctl waits for the OS process
  # to exit.
  if alive "$beam" && [[ "$(cmdline "$beam")" == *"$MARKER_FLAG $DIR "* ]]; then
    was_running=1
    if ! priv timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$NODE" stop "$DIR/rabbitmq.pid" \
      >>"$DIR/log/ctl.log" 2>&1; then
      log "rabbitmqctl stop failed for $NODE; killing it"
    fi
  fi

  # Leftovers: the server wrapper and beam.smp (found by the DIR marker),
  # and our epmd (checked by its command line before it is signalled).
  local -a pids=()
  mapfile -t pids < <(marked_pids)
  if alive "$server" && [[ "$(cmdline "$server")" == *rabbitmq-server* ]]; then
    pids+=("$server")
  fi
  if alive "$epmd" && [[ "$(cmdline "$epmd")" == *"epmd -port $EPMD_PORT "* ]]; then
    pids+=("$epmd")
  fi
  ((${#pids[@]} == 0)) || was_running=1
  kill_pids "${pids[@]}"

  rm -f "$DIR/env" "$DIR"/*.pid
  if ((was_running)); then
    log "stopped $NODE"
  else
    log "$NODE was not running"
  fi
}

# ------------------------------------------------------------------- main --

(($# >= 2)) || usage
cmd="$1"
DIR="$2"
ctl_args=("${@:3}")
[[ "$cmd" == ctl ]] || (($# == 2)) || usage
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
# Only plain path characters: the path ends up in Erlang/RabbitMQ env vars
# and command lines that are word-split by RabbitMQ's own shell scripts.
check_dir
case "$cmd" in
start) cmd_start ;;
ctl)
  DIR="$(cd "$DIR" && pwd -P)"
  load_node_env
  ctl "${ctl_args[@]}"
  ;;
stop) cmd_stop ;;
revive)
  DIR="$(cd "$DIR" && pwd -P)"
  do_revive
  ;;
*) usage ;;
esac
