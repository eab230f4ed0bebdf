#!/usr/bin/env bash
# s3.sh - run a private, throw-away S3-compatible server (versitygw) on
# loopback for tests.
#
# Usage:
#   scripts/s3.sh start DIR   start a server whose data and log live under
#                             DIR; writes DIR/env
#   scripts/s3.sh stop DIR    stop that server (idempotent)
#
# After "start", `. DIR/env` exports
#   HYPERFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   HYPERFLOW_TEST_S3_ACCESS_KEY=...   (the server's root access key)
#   HYPERFLOW_TEST_S3_SECRET_KEY=...   (and secret key, random per start)
#   HYPERFLOW_TEST_S3_REGION=us-east-1
#   HYPERFLOW_TEST_S3_DATA=DIR/data    (the posix backend's root: a bucket is
#                                       a directory, an object a file)
#
# The server is versitygw (github.com/versity/versitygw) with its posix
# backend, pinned to VERSITYGW_VERSION below. When the binary is missing
# from the cache it is built with `go install` from the Go module proxy
# (about 3 minutes on a cold module cache, seconds afterwards) into
#   ${HYPERFLOW_CACHE:-$HOME/.cache/hyperflow}/bin/versitygw-VERSION
# It listens on a free port on 127.0.0.1 only, path-style addressing, with
# its own root keys; no WebUI, admin, IAM or event listeners.
#
# Optional environment:
#   HYPERFLOW_CACHE            cache directory (default ~/.cache/hyperflow)
#   HYPERFLOW_VERSITYGW_BIN    use this versitygw binary instead (no install)
#   HYPERFLOW_S3_TIMEOUT       seconds to wait for the server (default 30;
#                              the install, if any, is not counted)
#
# Files under DIR: data/ (buckets), server.log, server.pid, env.

set -euo pipefail

readonly LOG_NAME="s3"
# log, die, usage and the helpers shared with the other server scripts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly VERSITYGW_MODULE="github.com/versity/versitygw"
readonly VERSITYGW_VERSION="v1.8.0"
readonly CACHE_DIR="${HYPERFLOW_CACHE:-$HOME/.cache/hyperflow}"
readonly START_TIMEOUT="${HYPERFLOW_S3_TIMEOUT:-30}"
readonly REGION="us-east-1"

# ---------------------------------------------------------------- helpers --

# ours PID succeeds if PID is the versitygw serving this DIR (checked before
# it is signalled, in case the pid was reused).
ours() {
  alive "$1" && [[ "$(cmdline "$1")" == *versitygw*" posix $DIR/data "* ]]
}

# random_key N prints N random alphanumeric characters.
random_key() {
  local key=""
  while ((${#key} < $1)); do
    key+="$(head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9')"
  done
  echo "${key:0:$1}"
}

# ensure_installed sets BIN to the versitygw binary, building the pinned
# version into the cache first when it is not there.
ensure_installed() {
  if [[ -n "${HYPERFLOW_VERSITYGW_BIN:-}" ]]; then
    BIN="$HYPERFLOW_VERSITYGW_BIN"
    [[ -x "$BIN" ]] || die "HYPERFLOW_VERSITYGW_BIN=$BIN is not an executable"
    return 0
  fi
  BIN="$CACHE_DIR/bin/versitygw-$VERSITYGW_VERSION"
  [[ -x "$BIN" ]] && return 0
  command -v go >/dev/null || die "versitygw is not in $BIN and Go is not installed to build it"
  mkdir -p "$CACHE_DIR/bin"
  # Built into a private directory and renamed into place, so that two
  # concurrent starts never run a half-written binary.
  local tmp t0
  tmp="$(mktemp -d "$CACHE_DIR/bin/.install.XXXXXX")"
  t0="$(now_ms)"
  log "installing $VERSITYGW_MODULE@$VERSITYGW_VERSION into $BIN (a few minutes on a cold module cache)"
  # Run outside the repository: `go install mod@version` ignores the
  # current module anyway, but GOFLAGS such as -mod=vendor would not.
  if ! (cd / && GOBIN="$tmp" GOFLAGS=-buildvcs=false \
    go install "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION" </dev/null >&2); then
    rm -rf "$tmp"
    die "go install $VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION failed"
  fi
  mv -f "$tmp/versitygw" "$BIN"
  rm -rf "$tmp"
  log "installed versitygw $VERSITYGW_VERSION in $(seconds $(($(now_ms) - t0)))s"
}

show_log() { show_tails "$DIR/server.log"; }

# ------------------------------------------------------------------ start --

do_start() {
  # An interrupted start (Ctrl-C, kill) runs do_stop, then dies by the signal
  # (so that a calling bash notices the Ctrl-C), see abort_start.
  abort_start_on_signals do_stop
  ensure_installed

  if ours "$(read_pid "$DIR/server.pid")"; then
    die "a server for $DIR is already running; run: $0 stop $DIR"
  fi
  rm -rf "${DIR:?}/data" "${DIR:?}/env" "${DIR:?}/server.pid" "${DIR:?}/server.log"
  mkdir -p "$DIR/data"

  local t0 port access secret
  t0="$(now_ms)"
  port="$(free_ports 1)"
  [[ "$port" =~ ^[0-9]+$ ]] || die "could not get a free port"
  access="hf$(random_key 18)"
  secret="$(random_key 40)"

  # The keys go in through the environment, not the command line (which
  # every user can read in /proc). env -i: nothing of the caller's
  # environment (VGW_*, proxies) leaks in. setsid: terminal signals must
  # not reach it; stop_s3 stops it.
  (cd "$DIR" && exec setsid env -i \
    "PATH=/usr/local/bin:/usr/bin:/bin" "HOME=$DIR" \
    "ROOT_ACCESS_KEY=$access" "ROOT_SECRET_KEY=$secret" \
    "$BIN" --port "127.0.0.1:$port" --region "$REGION" --quiet \
    posix "$DIR/data" \
    </dev/null >>"$DIR/server.log" 2>&1) &
  echo $! >"$DIR/server.pid"

  local deadline=$((t0 + START_TIMEOUT * 1000))
  until tcp_open "$port"; do
    if ! alive "$(read_pid "$DIR/server.pid")"; then
      show_log
      do_stop
      die "versitygw exited during startup (log above, DIR=$DIR)"
    fi
    if (($(now_ms) > deadline)); then
      show_log
      do_stop
      die "versitygw did not listen on 127.0.0.1:$port within ${START_TIMEOUT}s (log above)"
    fi
    sleep 0.05
  done

  (
    umask 077
    {
      echo "export HYPERFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
      echo "export HYPERFLOW_TEST_S3_ACCESS_KEY=$access"
      echo "export HYPERFLOW_TEST_S3_SECRET_KEY=$secret"
      echo "export HYPERFLOW_TEST_S3_REGION=$REGION"
      printf 'export HYPERFLOW_TEST_S3_DATA=%q\n' "$DIR/data"
    } >"$DIR/env"
  )
  log "versitygw $VERSITYGW_VERSION ready at http://127.0.0.1:$port (data $DIR/data) - started in $(seconds $(($(now_ms) - t0)))s"
}

# ------------------------------------------------------------------- stop --

do_stop() {
  local pid i
  pid="$(read_pid "$DIR/server.pid")"
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "killing versitygw $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped versitygw for $DIR"
  else
    log "nothing to stop in $DIR"
  fi
  rm -f "$DIR/env" "$DIR/server.pid"
}

# ------------------------------------------------------------------- main --

server_main "$@"
