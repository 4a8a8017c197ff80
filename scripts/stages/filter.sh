#!/usr/bin/env bash
# Filter the synthetic corpus WORK/bt/IN by model scores into WORK/bt/OUT (same files, OUT/bin
# usable as task.bt_data). BT_FILTER_METHOD and BT_FILTER_FRACTION (bt.filter's METHOD:FRACTION)
# drop that fraction of the pairs, the worst by METHOD: dual (dual conditional cross-entropy of the reverse model REVERSE and the forward
# model FORWARD) or reverse (the reverse model's own score). Skipped when OUT is complete.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 IN OUT REVERSE FORWARD   (env: WORK, BT_FILTER_METHOD, BT_FILTER_FRACTION, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${BT_FILTER_METHOD:?set BT_FILTER_METHOD}" \
  "${BT_FILTER_FRACTION:?set BT_FILTER_FRACTION}" "${LAUNCHER?set LAUNCHER (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
out="$WORK/bt/$2"
method=$BT_FILTER_METHOD fraction=$BT_FILTER_FRACTION
# each model scores the pairs in its own vocabulary (a reused reverse model has its own); the
# output is made from the unfiltered corpus and the models that score it (dual: both)
model_files "$3"; reverse=(--reverse-path "$ckpt" --reverse-data "$data" --reverse-spm-model "$spm")
made_with=("filter=$method:$fraction") made_from=("$WORK/bt/$1" "$ckpt")
model_files "$4"; forward=(--forward-path "$ckpt" --forward-data "$data" --forward-spm-model "$spm")
[ "$method" != dual ] || made_from+=("$ckpt")
if stamped "$out/DONE" "Delete $out to filter again."; then
  echo "== filter $2: done already"; exit 0
fi
echo "== filter $1 -> $2 ($method, drop the worst $fraction)"
"${run_stage[@]}" --stage filter --name "$2" \
  --timings "$WORK/timings.jsonl" --interval "$PROGRESS_INTERVAL" -- \
  "${launcher[@]}" fairseq-bt-filter --bt-dir "$WORK/bt/$1" \
  --output-dir "$out" --method "$method" --drop-worst "$fraction" \
  "${reverse[@]}" "${forward[@]}"
stamp "$out/DONE"
