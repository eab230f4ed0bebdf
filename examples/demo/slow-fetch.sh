#!/usr/bin/env bash
# slow-fetch.sh DIR - a job whose input sits on a struggling shared file
# system: the file is a named pipe that delivers 256 KiB, stalls for 75 s,
# then delivers the rest. hyperflow-top marks the transfer STALLED while
# nothing moves. Needs AMQP_URL and hyperflow-submit on PATH (or $SUBMIT).
set -uo pipefail
dir=${1:?usage: slow-fetch.sh DIR}
submit=${SUBMIT:-hyperflow-submit}
mkdir -p "$dir"
mkfifo "$dir/remote.dat"
(head -c 262144 /dev/urandom; sleep 75; head -c 262144 /dev/urandom) >"$dir/remote.dat" &
"$submit" --quiet --storage nfs --workdir "$dir" --input remote.dat --output sum.txt \
  -- /bin/sh -c 'md5sum remote.dat > sum.txt' 
wait
