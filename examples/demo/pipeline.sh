#!/usr/bin/env bash
# pipeline.sh DIR - one run of the demo workflow, sent job by job with
# hyperflow-submit exactly as the HyperFlow engine would send them:
#
#   split          data.txt              -> part-00.txt .. part-03.txt
#   count (x4)     part-0N.txt           -> count-0N.txt      (in parallel, varied length)
#   join           count-00..03.txt      -> total.txt
#   calibrate      (fails on purpose: exit 3, with a message on stderr)
#
# Every job uses nfs storage on DIR: inputs are copied from DIR into a
# private work directory, outputs copied back. Needs AMQP_URL and
# hyperflow-submit on PATH (or $SUBMIT).
set -uo pipefail
dir=${1:?usage: pipeline.sh DIR}
submit=${SUBMIT:-hyperflow-submit}
mkdir -p "$dir"
[[ -f "$dir/data.txt" ]] || cp "$(dirname "$0")/data.txt" "$dir/data.txt"

job() { "$submit" --quiet --storage nfs --workdir "$dir" "$@"; }

job --input data.txt --output parts=part-00.txt:part-01.txt:part-02.txt:part-03.txt \
  -- /usr/bin/split -n l/4 -d --additional-suffix=.txt data.txt part- || exit 1

pids=()
for i in 0 1 2 3; do
  # Steps of varied length: 0.5 s to 4 s of "computation".
  t=$(( (RANDOM % 36) + 5 ))
  job --input "part-0$i.txt" --output "count-0$i.txt" \
    -- /bin/sh -c "sleep $((t / 10)).$((t % 10)); wc -w < part-0$i.txt > count-0$i.txt" &
  pids+=($!)
done
wait "${pids[@]}"

job --input counts=count-00.txt:count-01.txt:count-02.txt:count-03.txt --output total.txt \
  -- /usr/bin/awk '{ s += $1 } END { print s > "total.txt" }' count-00.txt count-01.txt count-02.txt count-03.txt

# One job fails on purpose, so the monitor has a failure to show.
job -- /bin/sh -c 'echo "calibration table missing: cal-2026.dat" >&2; exit 3'
exit 0
