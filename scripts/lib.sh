# shellcheck shell=bash
# lib.sh - helpers shared by the private test server scripts (rabbitmq.sh,
# s3.sh, gridftp.sh). Not a command: each script sources it with
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script sets LOG_NAME (the prefix of its messages) and defines
# do_start and do_stop, which use the global DIR (the server's directory,
# set by check_dir/cmd_start/cmd_stop or server_main).

# The repository root (free_ports runs ./scripts/freeport from there).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_ROOT

log() { printf '%s: %s\n' "$LOG_NAME" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

# ---------------------------------------------------------------- helpers --

# now_ms prints the wall clock in milliseconds.
now_ms() {
  local t="${EPOCHREALTIME/[.,]/}" # microseconds, bash >= 5
  echo $((t / 1000))
}

# seconds MS prints MS milliseconds as seconds with three decimals.
seconds() { echo "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# free_ports N prints N distinct free TCP ports on 127.0.0.1, one per line.
free_ports() {
  local n="$1"
  if command -v go >/dev/null 2>&1; then
    (cd "$REPO_ROOT" && go run ./scripts/freeport "$n")
    return
  fi
  # Fallback without Go: probe random ports in the ephemeral range with
  # bash's /dev/tcp; a refused connection means nothing listens there.
  local -a picked=()
  local port tries=0
  while ((${#picked[@]} < n)); do
    ((tries++ < 1000)) || die "could not find $n free ports"
    port=$((20000 + RANDOM % 30000))
    [[ " ${picked[*]} " == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      picked+=("$port")
    fi
  done
  printf '%s\n' "${picked[@]}"
}

# tcp_open PORT succeeds when something accepts TCP connections on
# 127.0.0.1:PORT. (On loopback a connect is refused or accepted at once. No
# `timeout` wrapper: it would swallow Ctrl-C, see abort_start.)
tcp_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# cmdline PID prints the command line of PID with spaces for NULs (empty if
# the process is gone).
cmdline() {
  { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true
}

# alive PID succeeds if PID is a live (non-zombie) process.
alive() {
  [[ -n "$1" ]] || return 1
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

# read_pid FILE prints the pid stored in FILE (empty if none).
read_pid() {
  if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi
}

# pids_where TEST prints the pids of the processes (other than this shell
# and its subshell) for which `TEST PID` succeeds.
pids_where() {
  local p
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    "$1" "$p" && echo "$p"
  done
  return 0
}

# kill_pids PID... sends TERM, waits up to 5 s, then KILLs what is left.
kill_pids() {
  local -a pids=("$@")
  local p i any
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    any=0
    for p in "${pids[@]}"; do alive "$p" && any=1; done
    ((any)) || return 0
    sleep 0.1
  done
  log "killing leftover processes: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# apt_install PACKAGE... installs Debian packages, as root or with
# password-less sudo (dies with the command to run otherwise).
apt_install() {
  local -a sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      die "run as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
    fi
    sudo=(sudo -n)
  fi
  # Wait (up to 10 min) for another apt/dpkg run instead of failing at once.
  local -a wait_lock=(-o DPkg::Lock::Timeout=600)
  "${sudo[@]}" apt-get "${wait_lock[@]}" update </dev/null >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${wait_lock[@]}" install -y --no-install-recommends "$@" </dev/null >&2
}

# show_tails FILE... prints the tail of each non-empty FILE (for failures).
show_tails() {
  local f
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    echo "----- tail of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

# ------------------------------------------------------------------ start --

# abort_start SIG CLEANUP... cleans up a start interrupted by SIG (Ctrl-C,
# kill) by running CLEANUP..., then dies by that signal: a calling bash only
# reacts to Ctrl-C if its child was killed by SIGINT, so exiting with a
# status would make it carry on.
abort_start() {
  trap '' INT TERM
  log "start interrupted by SIG$1; cleaning up"
  "${@:2}" || true
  trap - "$1"
  kill -s "$1" "$$"
}

# abort_start_on_signals CLEANUP makes INT and TERM run abort_start with the
# function CLEANUP.
abort_start_on_signals() {
  # The trap strings are meant to expand now.
  # shellcheck disable=SC2064
  trap "abort_start INT $1" INT
  # shellcheck disable=SC2064
  trap "abort_start TERM $1" TERM
}

# ------------------------------------------------------------------- main --

# check_dir dies unless DIR is a plain path (the scripts match it in command
# lines and pass it on to programs that word-split it).
check_dir() {
  [[ "$DIR" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR must be a plain path without spaces or special characters: '$DIR'"
}

# cmd_start creates DIR, makes it absolute and physical, and runs do_start.
cmd_start() {
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd -P)"
  do_start
}

# cmd_stop makes DIR absolute and physical and runs do_stop (nothing to do
# if DIR does not exist).
cmd_stop() {
  [[ -d "$DIR" ]] || {
    log "nothing to stop: $DIR does not exist"
    exit 0
  }
  DIR="$(cd "$DIR" && pwd -P)"
  do_stop
}

# server_main ARGS... is the whole main of a script whose only commands are
# "start DIR" and "stop DIR".
server_main() {
  (($# == 2)) || usage
  local cmd="$1"
  DIR="$2"
  check_dir
  case "$cmd" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  *) usage ;;
  esac
}
