#!/usr/bin/env bash
# rabbitmq4.sh - run a private, throw-away RabbitMQ 4.0 broker (with a TLS
# listener) on loopback for tests.
#
# Usage (as root):
#   scripts/rabbitmq4.sh start DIR   start a broker whose config, data, logs
#                                    and certificates live under DIR; writes
#                                    DIR/env
#   scripts/rabbitmq4.sh stop DIR    stop that broker (idempotent, also after
#                                    a failed or interrupted start)
#   scripts/rabbitmq4.sh ctl DIR ARGS...  run rabbitmqctl ARGS against it
#
# After "start", `. DIR/env` exports
#   HYPERFLOW_TEST_AMQP4_URL=amqp://guest:guest@127.0.0.1:PORT/
#   HYPERFLOW_TEST_AMQPS4_URL=amqps://guest:guest@127.0.0.1:TLSPORT/
#   HYPERFLOW_TEST_TLS_DIR=DIR/tls      the test CA (ca.pem, ca.key), the
#                                       server's and the client's certificates
#   HYPERFLOW_TEST_TLS_CA=DIR/tls/ca.pem
#   HYPERFLOW_TEST_TLS_CERT=DIR/tls/client.pem   client certificate (CN=guest)
#   HYPERFLOW_TEST_TLS_KEY=DIR/tls/client.key    and its key
#   HYPERFLOW_TEST_RABBITMQ4CTL=DIR/rabbitmqctl  a wrapper of "ctl DIR"
#
# Why a root of its own: Debian 12 ships RabbitMQ 3.10 (see rabbitmq.sh);
# Debian 13 (trixie) ships rabbitmq-server 4.0.5 with Erlang 27, whose
# binaries need trixie's glibc. So the broker runs from a minimal trixie root
# made once with debootstrap (--variant=minbase --include=rabbitmq-server:
# 1-5 minutes and about 250 MB, from the Debian mirror only) and cached in
# HYPERFLOW_RABBITMQ4_ROOT (default /var/cache/hyperflow-test/trixie-rabbitmq).
# A lock file next to it makes concurrent starts build it only once; the root
# appears under its final name only when complete.
#
# Every command that runs in the root (epmd, the broker, rabbitmqctl) runs in
# a private mount namespace (unshare --mount) holding /proc and DIR
# bind-mounted on /srv/hyperflow inside the root, chrooted, as the root's own
# user hftest-rmq4 (uid 64990, used by no other broker), under `env -i` with
# only the private environment. The mounts exist only in that namespace: they
# vanish with its last process, whatever happens, and the host never sees
# them. Instances share nothing but the read-only root.
#
# Isolation, as rabbitmq.sh: its own node name (hftest4-PORT@localhost), its
# own epmd on its own port, its own distribution port, its own Erlang cookie
# (HOME is DIR/home), its own config, data and log directories; every
# listener on 127.0.0.1, ports picked free at start. Another broker (the 3.10
# one of rabbitmq.sh, the system service, another instance of this script)
# may run at the same time. Processes are found by a marker argument holding
# DIR (the broker) or by pid file and command line (epmd), never by name.
# Host names resolve from /etc/hosts only inside the root (no DNS).
#
# Configuration, as RabbitMQ 4.3 behaves by default:
#   deprecated_features.permit.transient_nonexcl_queues = false
#   deprecated_features.permit.global_qos = false
# TLS listener: TLS 1.2 and 1.3, ssl_options.verify = verify_peer,
# fail_if_no_peer_cert = true, certificates made with openssl at start (a CA,
# a server certificate for localhost and 127.0.0.1, a client certificate with
# CN=guest). The plugin rabbitmq_auth_mechanism_ssl is enabled, so a client
# may also log in with auth_mechanism=external: the certificate's common name
# is the user name (guest, allowed from loopback). No other plugin (no
# management): the broker boots from a private plugins directory that holds
# only the core applications and that plugin, which keeps the boot fast.
#
# Optional environment:
#   RABBITMQ_EXTRA_CONF            lines appended to rabbitmq.conf
#   HYPERFLOW_RABBITMQ_TIMEOUT     seconds to wait for the broker (default 90)
#   HYPERFLOW_RABBITMQ4_ROOT       the cached trixie root (see above)
#   HYPERFLOW_DEBIAN_MIRROR        Debian mirror for debootstrap
#                                  (default http://deb.debian.org/debian)
#
# Files under DIR: rabbitmq.conf, enabled_plugins, rabbitmq-env.conf (empty,
# shadows the root's /etc/rabbitmq/rabbitmq-env.conf), advanced.config
# (absent), plugins/ (symlinks into the root), home/.erlang.cookie, mnesia/,
# log/ (the node's log, startup.log, epmd.log), run/rabbitmq.pid, tls/,
# node.env (the private environment), *.pid, env, rabbitmqctl.
#
# By hand, e.g. beside the 3.10 broker:
#   scripts/rabbitmq4.sh start /tmp/b4 && . /tmp/b4/env
#   $HYPERFLOW_TEST_RABBITMQ4CTL status
#   scripts/rabbitmq4.sh stop /tmp/b4
# or: scripts/with-servers.sh --rabbitmq4 -- CMD

set -euo pipefail

readonly LOG_NAME="rabbitmq4"
# log, die, usage and the helpers shared with the other server scripts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly ROOT="${HYPERFLOW_RABBITMQ4_ROOT:-/var/cache/hyperflow-test/trixie-rabbitmq}"
readonly SUITE="trixie"
readonly MIRROR="${HYPERFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly START_TIMEOUT="${HYPERFLOW_RABBITMQ_TIMEOUT:-90}"
# Marks a complete root (written last, before the rename).
readonly READY="$ROOT/.hyperflow-ready"
# The broker's user inside the root; the uid is not used on the host.
readonly BROKER_USER="hftest-rmq4"
readonly BROKER_UID=64990
# Where DIR appears inside the root (a bind mount in each private namespace).
readonly MNT="/srv/hyperflow"
# The unwrapped RabbitMQ scripts inside the root (the /usr/sbin wrappers
# `su` to the package's rabbitmq user and use /var/lib/rabbitmq).
readonly RMQ_BIN="/usr/lib/rabbitmq/bin"
# Marker argument added to the server command line (passed through to erl,
# which ignores unknown flags) so the processes of one DIR can be found.
readonly MARKER_FLAG="-hyperflow_testenv4_dir"

# ------------------------------------------------------------- the root --

# ensure_root builds the cached trixie root with rabbitmq-server unless it is
# there. Concurrent callers wait for one another on a lock file.
ensure_root() {
  [[ -f "$READY" ]] && return 0
  mkdir -p "$(dirname "$ROOT")"
  local lock_fd
  exec {lock_fd}>"$ROOT.lock"
  if ! flock -n "$lock_fd"; then
    log "waiting for another start that builds $ROOT"
    flock "$lock_fd"
  fi
  if [[ ! -f "$READY" ]]; then
    [[ -e "$ROOT" ]] && die "$ROOT exists but is incomplete (no $READY): remove it and start again"
    build_root
  fi
  exec {lock_fd}>&-
}

# build_root runs debootstrap into ROOT.partial and renames it to ROOT when
# complete (called with the lock held).
build_root() {
  local t0 tmp="$ROOT.partial"
  t0="$(now_ms)"
  command -v debootstrap >/dev/null || apt_install debootstrap
  command -v openssl >/dev/null || apt_install openssl
  remove_partial "$tmp"
  log "building $ROOT: debootstrap $SUITE with rabbitmq-server from $MIRROR (once; 1-5 minutes, about 250 MB)"
  # In a private mount namespace: the /proc and /sys that debootstrap mounts
  # in the target vanish with it, even if it is killed.
  if ! unshare --mount --propagation private -- \
    debootstrap --variant=minbase --include=rabbitmq-server \
    "$SUITE" "$tmp" "$MIRROR" </dev/null >"$ROOT.build.log" 2>&1; then
    tail -n 30 "$ROOT.build.log" >&2 || true
    die "debootstrap failed (log: $ROOT.build.log)"
  fi
  [[ -x "$tmp$RMQ_BIN/rabbitmq-server" ]] || die "debootstrap made no $RMQ_BIN/rabbitmq-server (log: $ROOT.build.log)"

  # The broker's own user, and a mount point for DIR.
  chroot "$tmp" getent group "$BROKER_USER" >/dev/null ||
    chroot "$tmp" groupadd -g "$BROKER_UID" "$BROKER_USER"
  chroot "$tmp" getent passwd "$BROKER_USER" >/dev/null ||
    chroot "$tmp" useradd -u "$BROKER_UID" -g "$BROKER_UID" -M -d "$MNT/home" \
      -s /usr/sbin/nologin "$BROKER_USER"
  mkdir -p "$tmp$MNT"
  # Names resolve from /etc/hosts only: nothing may ask a DNS server.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
  sed -i 's/^hosts:.*/hosts: files/' "$tmp/etc/nsswitch.conf"
  echo 'nameserver 127.0.0.1' >"$tmp/etc/resolv.conf"
  chroot "$tmp" apt-get clean
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/*.bin

  # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
  chroot "$tmp" dpkg-query -W -f '${Version}' rabbitmq-server >"$tmp/.hyperflow-rabbitmq-version"
  touch "$tmp/.hyperflow-ready"
  mv "$tmp" "$ROOT"
  log "built $ROOT (rabbitmq-server $(cat "$ROOT/.hyperflow-rabbitmq-version"), $(du -sh "$ROOT" | cut -f1)) in $(seconds $(($(now_ms) - t0)))s"
}

# remove_partial TMP removes an unfinished root left by an interrupted build
# (never crossing into a file system mounted inside it).
remove_partial() {
  [[ -e "$1" ]] || return 0
  log "removing the unfinished root $1"
  local m
  findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "${1:?}"
}

# ---------------------------------------------------------------- helpers --

# load_node_env fills PRIV_ENV, NODE and EPMD_PORT from DIR/node.env.
load_node_env() {
  mapfile -t PRIV_ENV <"$DIR/node.env"
  local kv
  NODE=""
  EPMD_PORT=""
  for kv in "${PRIV_ENV[@]}"; do
    [[ "$kv" == RABBITMQ_NODENAME=* ]] && NODE="${kv#*=}"
    [[ "$kv" == ERL_EPMD_PORT=* ]] && EPMD_PORT="${kv#*=}"
  done
  [[ -n "$NODE" ]] || die "$DIR/node.env has no RABBITMQ_NODENAME"
}

# in_root CMD... runs CMD in the root as the broker's user, in a private
# mount namespace where /proc is mounted and DIR is on MNT, with only the
# private environment, from MNT. Every stage execs the next (unshare, bash,
# chroot, env, CMD), so a background `in_root` has CMD's pid.
in_root() {
  in_root_argv "$@"
  "${IN_ROOT_ARGV[@]}"
}

# in_root_argv CMD... sets IN_ROOT_ARGV to the command line of in_root CMD...
in_root_argv() {
  # shellcheck disable=SC2016 # the script expands its own arguments
  IN_ROOT_ARGV=(
    unshare --mount --propagation private -- /bin/bash -c '
      set -e
      root="$1" dir="$2" mnt="$3" uid="$4"
      shift 4
      mount -t proc proc "$root/proc"
      mount --bind "$dir" "$root$mnt"
      exec chroot --userspec="$uid:$uid" "$root" /usr/bin/env -i -C "$mnt" "$@"
    ' in_root "$ROOT" "$DIR" "$MNT" "$BROKER_UID" "${PRIV_ENV[@]}" "$@"
  )
}

# launch LOG CMD... starts CMD in_root in the background, in a session of its
# own (terminal signals must not reach it), output appended to LOG; $! is
# CMD's pid.
launch() {
  local out="$1"
  shift
  (
    trap - INT TERM EXIT
    exec setsid "$SELF" __in_root "$DIR" "$@" </dev/null >>"$out" 2>&1
  ) &
}

# ctl ARGS... runs rabbitmqctl against our node.
ctl() {
  in_root "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@" </dev/null
}

# argv_has PID STRING succeeds if the command line of PID, its arguments
# joined by spaces, contains " STRING ". No fork (builtins only): it runs for
# every process on the machine.
argv_has() {
  local -a argv
  mapfile -d '' -t argv 2>/dev/null <"/proc/$1/cmdline" || return 1
  ((${#argv[@]})) || return 1
  [[ " ${argv[*]} " == *" $2 "* ]]
}

# marked PID succeeds if the command line of PID carries this DIR's marker
# (every stage of the server's launch does: this script's __in_root,
# unshare, bash, chroot, env, the rabbitmq-server script and beam.smp).
marked() {
  argv_has "$1" "$MARKER_FLAG $DIR"
}

# marked_pids prints the pids of the processes of this DIR's server.
marked_pids() {
  pids_where marked
}

# our_epmd PID succeeds if PID is this DIR's epmd (or a stage of its launch).
our_epmd() {
  [[ -n "$EPMD_PORT" ]] && argv_has "$1" "-port $EPMD_PORT -address 127.0.0.1"
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

# make_tls writes a CA, a server certificate (localhost, 127.0.0.1) and a
# client certificate (CN=guest) into DIR/tls.
make_tls() {
  local d="$DIR/tls" olog="$DIR/log/openssl.log" tag
  local -a key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  tag="$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
  mkdir -p "$d"
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >"$d/server.ext"
  printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature" >"$d/client.ext"
  {
    openssl req -x509 "${key[@]}" -days 3650 -subj "/CN=hyperflow test CA $tag" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/ca.key" -out "$d/ca.pem" &&
      openssl req "${key[@]}" -subj "/CN=localhost" \
        -keyout "$d/server.key" -out "$d/server.csr" &&
      openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -CAserial "$d/ca.srl" -days 3650 -extfile "$d/server.ext" \
        -out "$d/server.pem" &&
      openssl req "${key[@]}" -subj "/CN=guest" \
        -keyout "$d/client.key" -out "$d/client.csr" &&
      openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAserial "$d/ca.srl" -days 3650 -extfile "$d/client.ext" \
        -out "$d/client.pem"
  } >>"$olog" 2>&1 || {
    tail -n 20 "$olog" >&2
    die "openssl could not make the test certificates in $d"
  }
  rm -f "$d"/*.csr "$d"/*.ext "$d/ca.srl"
  chmod 644 "$d"/*.pem
  chmod 600 "$d"/*.key
  chown "$BROKER_UID:$BROKER_UID" "$d/server.key"
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
  ((EUID == 0)) || die "must run as root (chroot, mount)"
  command -v openssl >/dev/null || apt_install openssl
  ensure_root
  mkdir -p "$DIR"

  # Refuse to start twice on one DIR; otherwise begin from clean state.
  if [[ -n "$(marked_pids)" ]]; then
    die "a broker for $DIR is already running; run: $0 stop $DIR"
  fi
  trap start_cleanup EXIT
  # Ctrl-C, kill: start_cleanup, then die by the signal (see abort_start).
  abort_start_on_signals start_cleanup
  rm -rf "${DIR:?}"/{mnesia,log,home,run,tls,plugins} "${DIR:?}"/env "${DIR:?}"/*.pid
  mkdir -p "$DIR"/{mnesia,log,home,run}
  # DIR is the root of the bind mount: the broker's user must traverse it.
  chmod 755 "$DIR"

  local t0
  t0="$(now_ms)"

  local -a ports
  mapfile -t ports < <(free_ports 4)
  ((${#ports[@]} == 4)) || die "could not get free ports"
  local amqp_port="${ports[0]}" tls_port="${ports[1]}" dist_port="${ports[2]}"
  EPMD_PORT="${ports[3]}"
  NODE="hftest4-$amqp_port@localhost"

  # Private Erlang cookie (Erlang reads $HOME/.erlang.cookie; must be 0400).
  (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$DIR/home/.erlang.cookie")
  chmod 400 "$DIR/home/.erlang.cookie"
  chown -R "$BROKER_UID:$BROKER_UID" "$DIR"/{mnesia,log,home,run}

  make_tls

  # The plugins directory: the core applications (everything but the
  # optional rabbitmq_* plugins) and the plugin for client certificate
  # login, as symlinks into the root. RabbitMQ loads and scans every
  # application there at boot, so fewer is faster.
  local rmq_plugins app name ssl_plugin=""
  rmq_plugins="$(cd "$ROOT" && compgen -G "usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins" | head -n 1)" ||
    die "no RabbitMQ plugins directory in $ROOT"
  mkdir -p "$DIR/plugins"
  for app in "$ROOT/$rmq_plugins"/*; do
    name="${app##*/}"
    case "$name" in
    rabbitmq_prelaunch-*) ;; # core, despite its name
    rabbitmq_auth_mechanism_ssl-*) ssl_plugin=rabbitmq_auth_mechanism_ssl ;;
    rabbitmq_*) continue ;; # optional plugin
    esac
    ln -s "/$rmq_plugins/$name" "$DIR/plugins/$name"
  done
  if [[ -n "$ssl_plugin" ]]; then
    echo "[$ssl_plugin]." >"$DIR/enabled_plugins"
  else
    log "warning: no rabbitmq_auth_mechanism_ssl in the root; auth_mechanism=external will not work"
    echo '[].' >"$DIR/enabled_plugins"
  fi
  # Empty env file, so the root's /etc/rabbitmq/rabbitmq-env.conf is not read.
  : >"$DIR/rabbitmq-env.conf"

  {
    echo "# Generated by scripts/rabbitmq4.sh for a private test broker."
    echo "listeners.tcp.1 = 127.0.0.1:$amqp_port"
    echo "listeners.ssl.1 = 127.0.0.1:$tls_port"
    echo "ssl_options.cacertfile = $MNT/tls/ca.pem"
    echo "ssl_options.certfile = $MNT/tls/server.pem"
    echo "ssl_options.keyfile = $MNT/tls/server.key"
    echo "ssl_options.verify = verify_peer"
    echo "ssl_options.fail_if_no_peer_cert = true"
    echo "ssl_options.versions.1 = tlsv1.3"
    echo "ssl_options.versions.2 = tlsv1.2"
    if [[ -n "$ssl_plugin" ]]; then
      echo "auth_mechanisms.1 = PLAIN"
      echo "auth_mechanisms.2 = AMQPLAIN"
      echo "auth_mechanisms.3 = EXTERNAL"
      echo "ssl_cert_login_from = common_name"
    fi
    echo "loopback_users.guest = true"
    echo "log.file.level = info"
    echo "log.console = false"
    echo "# As RabbitMQ 4.3 by default."
    echo "deprecated_features.permit.transient_nonexcl_queues = false"
    echo "deprecated_features.permit.global_qos = false"
    if [[ -n "${RABBITMQ_EXTRA_CONF:-}" ]]; then
      echo "# RABBITMQ_EXTRA_CONF"
      printf '%s\n' "$RABBITMQ_EXTRA_CONF"
    fi
  } >"$DIR/rabbitmq.conf"
  chmod 644 "$DIR/rabbitmq.conf" "$DIR/enabled_plugins" "$DIR/rabbitmq-env.conf"

  # The private environment (paths as seen inside the root) of every
  # RabbitMQ/Erlang command of this DIR. ERL_AFLAGS applies to every erl
  # started (server, CLI) and binds their distribution listeners to
  # 127.0.0.1 only.
  PRIV_ENV=(
    "PATH=$RMQ_BIN:/usr/sbin:/usr/bin:/sbin:/bin"
    "HOME=$MNT/home"
    "LANG=C.UTF-8"
    "LC_ALL=C.UTF-8"
    "RABBITMQ_NODENAME=$NODE"
    "RABBITMQ_USE_LONGNAME=false"
    "RABBITMQ_CONF_ENV_FILE=$MNT/rabbitmq-env.conf"
    "RABBITMQ_CONFIG_FILE=$MNT/rabbitmq.conf"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$MNT/advanced.config"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$MNT/enabled_plugins"
    "RABBITMQ_PLUGINS_DIR=$MNT/plugins"
    "RABBITMQ_MNESIA_BASE=$MNT/mnesia"
    "RABBITMQ_LOG_BASE=$MNT/log"
    "RABBITMQ_PID_FILE=$MNT/run/rabbitmq.pid"
    "RABBITMQ_DIST_PORT=$dist_port"
    "ERL_EPMD_PORT=$EPMD_PORT"
    "ERL_EPMD_ADDRESS=127.0.0.1"
    "ERL_CRASH_DUMP=$MNT/log/erl_crash.dump"
    "ERL_AFLAGS=-kernel inet_dist_use_interface {127,0,0,1}"
  )
  printf '%s\n' "${PRIV_ENV[@]}" >"$DIR/node.env"

  # Our own epmd, started first so that erl finds it instead of spawning a
  # daemon we could not track. setsid: terminal signals must not reach it.
  launch "$DIR/log/epmd.log" /usr/bin/epmd -port "$EPMD_PORT" -address 127.0.0.1
  echo $! >"$DIR/epmd.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    tcp_open "$EPMD_PORT" && break
    alive "$(read_pid "$DIR/epmd.pid")" || break
    sleep 0.05
  done
  tcp_open "$EPMD_PORT" || {
    show_logs
    die "epmd did not start on 127.0.0.1:$EPMD_PORT"
  }

  # The broker itself, in its own session; arguments after the script name
  # are passed to erl, which is how the marker reaches beam.smp's cmdline.
  launch "$DIR/log/startup.log" "$RMQ_BIN/rabbitmq-server" "$MARKER_FLAG" "$DIR"
  echo $! >"$DIR/server.pid"

  # Wait until both ports accept connections and the node log says the
  # boot is complete; `rabbitmqctl await_startup` (1-2 s of CLI startup) is
  # only the fallback for a version whose log line differs.
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
      tcp_open "$amqp_port" && tcp_open "$tls_port" && port_up_at="$(now_ms)"
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

  local version
  version="$(sed -n 's/.*Starting RabbitMQ \([0-9][0-9.]*\) on Erlang \([0-9][0-9.]*\).*/\1 (Erlang \2)/p' \
    "$node_log" 2>/dev/null | head -n 1)"
  [[ -n "$version" ]] || version="$(cat "$ROOT/.hyperflow-rabbitmq-version")"

  local url="amqp://guest:guest@127.0.0.1:$amqp_port/"
  local tls_url="amqps://guest:guest@127.0.0.1:$tls_port/"
  {
    printf 'export HYPERFLOW_TEST_AMQP4_URL=%s\n' "$url"
    printf 'export HYPERFLOW_TEST_AMQPS4_URL=%s\n' "$tls_url"
    printf 'export HYPERFLOW_TEST_TLS_DIR=%s\n' "$DIR/tls"
    printf 'export HYPERFLOW_TEST_TLS_CA=%s\n' "$DIR/tls/ca.pem"
    printf 'export HYPERFLOW_TEST_TLS_CERT=%s\n' "$DIR/tls/client.pem"
    printf 'export HYPERFLOW_TEST_TLS_KEY=%s\n' "$DIR/tls/client.key"
    printf 'export HYPERFLOW_TEST_RABBITMQ4CTL=%s\n' "$DIR/rabbitmqctl"
  } >"$DIR/env.tmp"
  printf '#!/usr/bin/env bash\nexec %q ctl %q "$@"\n' "$SELF" "$DIR" >"$DIR/rabbitmqctl"
  chmod +x "$DIR/rabbitmqctl"
  mv "$DIR/env.tmp" "$DIR/env"
  start_done=1
  trap - EXIT INT TERM

  log "RabbitMQ $version $NODE ready at $url and $tls_url (dist $dist_port, epmd $EPMD_PORT) - started in $(seconds $(($(now_ms) - t0)))s"
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
  beam="$(read_pid "$DIR/run/rabbitmq.pid")"
  server="$(read_pid "$DIR/server.pid")"
  epmd="$(read_pid "$DIR/epmd.pid")"

  # Graceful stop; with the pid file, rabbitmqctl waits for the OS process
  # to exit (there is no pid namespace: the pid is the same inside).
  if alive "$beam" && marked "$beam"; then
    was_running=1
    if ! timeout 60 "$SELF" ctl "$DIR" stop "$MNT/run/rabbitmq.pid" \
      >>"$DIR/log/ctl.log" 2>&1; then
      log "rabbitmqctl stop failed for $NODE; killing it"
    fi
  fi

  # Leftovers: every stage of the server's launch and beam.smp (found by the
  # DIR marker), and our epmd (checked by its command line).
  local -a pids=()
  mapfile -t pids < <(marked_pids)
  if alive "$server" && marked "$server"; then
    pids+=("$server")
  fi
  if alive "$epmd" && our_epmd "$epmd"; then
    pids+=("$epmd")
  fi
  ((${#pids[@]} == 0)) || was_running=1
  kill_pids "${pids[@]}"

  rm -f "$DIR/env" "$DIR"/*.pid "$DIR/run/rabbitmq.pid"
  if ((was_running)); then
    log "stopped $NODE"
  else
    log "$NODE was not running"
  fi
}

# ------------------------------------------------------------------- main --

(($# >= 2)) || {
  echo "usage: $0 start|stop DIR | ctl DIR ARGS..." >&2
  exit 2
}
cmd="$1"
DIR="$2"
ctl_args=("${@:3}")
[[ "$cmd" == ctl || "$cmd" == __in_root ]] || (($# == 2)) || usage
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
# Only plain path characters: the path ends up in Erlang/RabbitMQ env vars
# and command lines that are word-split by RabbitMQ's own shell scripts.
check_dir
case "$cmd" in
start) cmd_start ;;
ctl)
  DIR="$(cd "$DIR" && pwd -P)"
  [[ -f "$DIR/node.env" ]] || die "no broker in $DIR"
  load_node_env
  ctl "${ctl_args[@]}"
  ;;
stop) cmd_stop ;;
__in_root) # internal, for launch: in_root CMD... with DIR's environment
  load_node_env
  in_root_argv "${ctl_args[@]}"
  exec "${IN_ROOT_ARGV[@]}"
  ;;
*) usage ;;
esac
