#!/usr/bin/env bash
# gridftp.sh - run a private, throw-away GridFTP server on loopback for tests.
#
# Usage:
#   scripts/gridftp.sh start DIR   start an anonymous globus-gridftp-server
#                                  whose config, log and pid file live under
#                                  DIR; writes DIR/env
#   scripts/gridftp.sh stop DIR    stop that server (idempotent)
#
# After "start", `. DIR/env` exports
#   HYPERFLOW_TEST_GRIDFTP_URL=ftp://127.0.0.1:PORT
#   HYPERFLOW_TEST_GRIDFTP_ROOT=/abs/path/data      the directory served
#   HYPERFLOW_TEST_GRIDFTP_PREFIX=ftp://127.0.0.1:PORT/abs/path/data
# The server has no chroot, so the path of an ftp URL is the file system
# path: the file ROOT/x/y is the URL PREFIX/x/y. Access is restricted to ROOT
# (-restrict-paths).
#
# The server (from Debian's globus-gridftp-server-progs) is started with:
#   -c DIR/gridftp.conf   an empty config file of our own, so that
#                         /etc/gridftp.conf (which sets port 2811) is not read
#   -aa                   clear-text anonymous access (user "anonymous", as
#                         globus-url-copy sends for ftp:// URLs); run as root,
#                         the server setuids anonymous sessions to
#                         -anonymous-user (nobody, see below)
#   -control-interface 127.0.0.1 -data-interface 127.0.0.1
#   -ipc-interface 127.0.0.1 -allow-from 127.0.0.1
#                         control and data channels on loopback only
#   -restrict-paths ROOT  nothing outside ROOT is reachable
#   -disable-usage-stats  never send usage statistics (UDP to a host outside
#                         loopback; versions >= 13 ignore the flag, older
#                         ones would send them)
#   no -p                 the kernel picks a free port, which the server
#                         prints ("Server listening at localhost:PORT"); no
#                         race between choosing a port and binding it
#   -d error,warn,info -l DIR/log/gridftp.log
# It runs in the foreground of its own session (setsid, `env -i` with a
# minimal environment so no GLOBUS_* variable of the caller leaks in); it
# forks a process per connection. "stop" kills the session's process group.
#
# Running as root: the anonymous sessions run as HYPERFLOW_GRIDFTP_ANON_USER
# (default nobody), which cannot enter with-servers.sh's private directory
# (mktemp -d, mode 0700). The data directory then lives in its own
# directory ${TMPDIR:-/tmp}/hyperflow-gridftp.XXXXXX (DIR/data is a symlink to
# it, DIR/dataroot holds its path), owned by that user; "stop" removes it
# (unless HYPERFLOW_KEEP_SERVERS_DIR=1). Tests running as root must create the
# directories they seed world-writable (0777) so that uploads can add files.
# As any other user the server runs as that user and ROOT is DIR/data.
#
# Optional environment:
#   HYPERFLOW_GRIDFTP_TIMEOUT      seconds to wait for the server (default 30)
#   HYPERFLOW_GRIDFTP_ANON_USER    user of anonymous sessions when run as root
#                                  (default nobody)
#
# If the GridFTP server or globus-url-copy is missing, "start" installs the
# Debian packages globus-gridftp-server-progs and globus-gass-copy-progs
# (needs root or password-less sudo).

set -euo pipefail

readonly LOG_NAME="gridftp"
# log, die, usage and the helpers shared with the other server scripts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly START_TIMEOUT="${HYPERFLOW_GRIDFTP_TIMEOUT:-30}"
readonly ANON_USER="${HYPERFLOW_GRIDFTP_ANON_USER:-nobody}"
readonly PACKAGES=(globus-gridftp-server-progs globus-gass-copy-progs)
readonly EXTERNAL_PREFIX="hyperflow-gridftp."
readonly EXTERNAL_MARK=".hyperflow-gridftp-data"

# ---------------------------------------------------------------- helpers --

# ours PID succeeds if PID is the GridFTP server (or one of its connection
# processes) of this DIR: its command line names our config file.
ours() {
  local c
  c="$(cmdline "$1")"
  [[ "$c" == *globus-gridftp-server* && "$c" == *" -c $DIR/gridftp.conf "* ]]
}

# session_pids PGID prints the live processes of process group PGID.
session_pids() {
  local p stat
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    stat="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
    # Field 5 is the pgrp; fields after the ")" of the command name.
    stat="${stat##*) }"
    read -r _ _ pgrp _ <<<"$stat"
    [[ "$pgrp" == "$1" ]] && alive "$p" && echo "$p"
  done
  return 0
}

# marked_pids prints the pids of processes whose command line names this
# DIR's config file (leftovers of a server whose leader is gone).
marked_pids() {
  pids_where ours
}

# server_bin prints the path of globus-gridftp-server (empty if missing).
server_bin() {
  command -v globus-gridftp-server 2>/dev/null ||
    { [[ -x /usr/sbin/globus-gridftp-server ]] && echo /usr/sbin/globus-gridftp-server; } ||
    true
}

# ensure_installed installs the Debian packages if the server or the client
# is missing.
ensure_installed() {
  [[ -n "$(server_bin)" ]] && command -v globus-url-copy >/dev/null && return 0
  log "GridFTP server or globus-url-copy not found; installing ${PACKAGES[*]}"
  apt_install "${PACKAGES[@]}"
  [[ -n "$(server_bin)" ]] || die "installed ${PACKAGES[*]} but globus-gridftp-server is still missing"
  command -v globus-url-copy >/dev/null || die "installed ${PACKAGES[*]} but globus-url-copy is still missing"
}

# as_anon CMD... runs CMD as the anonymous user (root only; a no-op check
# when setpriv is missing).
as_anon() {
  command -v setpriv >/dev/null || return 0
  setpriv --reuid="$ANON_USER" --regid="$(id -g "$ANON_USER")" --clear-groups -- "$@"
}

# make_data_root prints the directory to serve. As root it is a new
# directory outside DIR that the anonymous user can reach (see the header).
make_data_root() {
  if ((EUID != 0)); then
    mkdir -p "$DIR/data"
    echo "$DIR/data"
    return
  fi
  id "$ANON_USER" >/dev/null 2>&1 || die "user $ANON_USER (HYPERFLOW_GRIDFTP_ANON_USER) does not exist"
  local parent top data
  for parent in "${TMPDIR:-/tmp}" /tmp; do
    top="$(mktemp -d "$parent/${EXTERNAL_PREFIX}XXXXXX")" || continue
    top="$(cd "$top" && pwd -P)"
    : >"$top/$EXTERNAL_MARK"
    echo "$top" >"$DIR/dataroot"
    chmod 755 "$top"
    data="$top/data"
    mkdir -m 755 "$data"
    chown "$ANON_USER:$(id -gn "$ANON_USER")" "$data"
    if as_anon test -w "$data" -a -x "$data"; then
      ln -sfn "$data" "$DIR/data"
      echo "$data"
      return
    fi
    log "$ANON_USER cannot reach $data; trying elsewhere"
    rm -rf "$top" "$DIR/dataroot"
  done
  die "found no directory that $ANON_USER can reach (tried ${TMPDIR:-/tmp} and /tmp)"
}

# remove_data_root removes the external data directory made as root.
remove_data_root() {
  [[ -f "$DIR/dataroot" ]] || return 0
  local top
  top="$(head -n1 "$DIR/dataroot")"
  if [[ "${top##*/}" != "$EXTERNAL_PREFIX"* || ! -f "$top/$EXTERNAL_MARK" ]]; then
    log "warning: $DIR/dataroot names $top, which is not ours; left alone"
  elif [[ "${HYPERFLOW_KEEP_SERVERS_DIR:-}" == 1 ]]; then
    log "kept the data directory $top"
    return 0
  else
    rm -rf "$top"
  fi
  rm -f "$DIR/dataroot" "$DIR/data"
}

show_logs() { show_tails "$DIR/log/stdout.log" "$DIR/log/gridftp.log"; }

# ------------------------------------------------------------------ start --

do_start() {
  ensure_installed
  # An interrupted start (Ctrl-C, kill) runs do_stop, then dies by the
  # signal, see abort_start.
  abort_start_on_signals do_stop

  local pid
  pid="$(read_pid "$DIR/server.pid")"
  if { alive "$pid" && ours "$pid"; } || [[ -n "$(marked_pids)" ]]; then
    die "a GridFTP server for $DIR is already running; run: $0 stop $DIR"
  fi
  remove_data_root
  rm -rf "${DIR:?}/log" "${DIR:?}/env" "${DIR:?}/server.pid" "${DIR:?}/data"
  mkdir -p "$DIR/log"

  local t0 root
  t0="$(now_ms)"
  root="$(make_data_root)"

  cat >"$DIR/gridftp.conf" <<'EOF'
# Generated by scripts/gridftp.sh. Deliberately empty: every option is given
# on the command line; this file only keeps /etc/gridftp.conf from being read.
EOF

  local -a args=(
    -c "$DIR/gridftp.conf"
    -aa
    -control-interface 127.0.0.1
    -data-interface 127.0.0.1
    -ipc-interface 127.0.0.1
    -allow-from 127.0.0.1
    -restrict-paths "$root"
    -disable-usage-stats
    -d "error,warn,info"
    -l "$DIR/log/gridftp.log"
  )
  if ((EUID == 0)); then
    args+=(-anonymous-user "$ANON_USER")
  fi
  local server
  server="$(server_bin)"
  (cd "$DIR" && exec setsid env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$DIR" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    "$server" "${args[@]}" </dev/null >>"$DIR/log/stdout.log" 2>&1) &
  echo $! >"$DIR/server.pid"

  local deadline=$((t0 + START_TIMEOUT * 1000)) port=""
  while :; do
    if ! alive "$(read_pid "$DIR/server.pid")"; then
      show_logs
      do_stop
      die "server exited during startup (logs above, DIR=$DIR)"
    fi
    if (($(now_ms) > deadline)); then
      show_logs
      do_stop
      die "server did not become ready within ${START_TIMEOUT}s (logs above)"
    fi
    if [[ -z "$port" ]]; then
      port="$(sed -n 's/.*Server listening at .*:\([0-9][0-9]*\).*/\1/p' "$DIR/log/stdout.log" | head -n1)"
    fi
    [[ -n "$port" ]] && tcp_open "$port" && break
    sleep 0.05
  done

  # A real anonymous login and listing, so that a misconfiguration shows
  # here and not as a failure of every test.
  local url="ftp://127.0.0.1:$port"
  if ! globus-url-copy -list "$url$root/" >"$DIR/log/smoke.log" 2>&1 </dev/null; then
    show_logs
    tail -n 20 "$DIR/log/smoke.log" >&2 || true
    do_stop
    die "the server on $url does not serve $root (logs above)"
  fi

  {
    printf 'export HYPERFLOW_TEST_GRIDFTP_URL=%q\n' "$url"
    printf 'export HYPERFLOW_TEST_GRIDFTP_ROOT=%q\n' "$root"
    printf 'export HYPERFLOW_TEST_GRIDFTP_PREFIX=%q\n' "$url$root"
  } >"$DIR/env"

  log "ready at $url serving $root - started in $(seconds $(($(now_ms) - t0)))s"
}

# ------------------------------------------------------------------- stop --

do_stop() {
  local pid
  local -a pids=()
  pid="$(read_pid "$DIR/server.pid")"
  # The server leads its own session (setsid): its process group holds the
  # connection processes too. Checked by command line before signalling.
  if alive "$pid" && ours "$pid"; then
    mapfile -t pids < <(session_pids "$pid")
  fi
  local p
  while read -r p; do
    [[ -n "$p" && " ${pids[*]} " != *" $p "* ]] && pids+=("$p")
  done < <(marked_pids)
  kill_pids "${pids[@]}"
  remove_data_root
  rm -f "$DIR/env" "$DIR/server.pid"
  if ((${#pids[@]})); then
    log "stopped the server of $DIR"
  fi
}

# ------------------------------------------------------------------- main --

# DIR must be a plain path (no spaces or special characters): the path is
# matched in command lines.
server_main "$@"
