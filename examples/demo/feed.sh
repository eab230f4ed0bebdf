#!/usr/bin/env bash
# feed.sh DIR - send the demo workflow over and over: three runs at a time,
# each in its own directory under DIR, until killed.
set -uo pipefail
dir=${1:?usage: feed.sh DIR}
here=$(dirname "$0")
round=0
while :; do
  pids=()
  for _ in 1 2 3; do
    round=$((round + 1))
    "$here/pipeline.sh" "$dir/run-$round" &
    pids+=($!)
  done
  # Now and then an input on a struggling file system (a stalled transfer);
  # the workflow runs go on meanwhile.
  if ((round % 45 == 3)); then
    "$here/slow-fetch.sh" "$dir/slow-$round" &
  fi
  wait "${pids[@]}"
  # Keep the shared directory small.
  find "$dir" -mindepth 1 -maxdepth 1 -name 'run-*' -mmin +1 -exec rm -rf {} + 2>/dev/null || true
done
