#!/usr/bin/env bash
# feed.sh DIR - send the demo workflow over and over: three runs at a time,
# each in its own directory under DIR, until killed.
set -uo pipefail
dir=${1:?usage: feed.sh DIR}
here=$(dirname "$0")
round=0
while :; do
  for _ in 1 2 3; do
    round=$((round + 1))
    "$here/pipeline.sh" "$dir/run-$round" &
  done
  wait
  # Keep the shared directory small.
  find "$dir" -mindepth 1 -maxdepth 1 -mmin +1 -exec rm -rf {} + 2>/dev/null || true
done
