#!/usr/bin/env bash
# Score one model on the raw test set TEST (raw/test_TEST.*: sacrebleu BLEU + chrF); skipped
# when its JSON exists.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME SRC TGT TEST   (env: WORK, EVAL_BEAM, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${EVAL_BEAM:?set EVAL_BEAM}" "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/checkpoint.sh"
name=$1 src=$2 tgt=$3 test=$4
out="$WORK/eval/$name"
if [ -f "$out.json" ]; then echo "== evaluate $name: done already"; exit 0; fi
echo "== evaluate $name on $test ($src->$tgt, beam $EVAL_BEAM)"
python -m fairseq_bt_plugin.progress --stage evaluate --name "$name" \
  --timings "$WORK/timings.jsonl" --log "$out.log" --interval "$PROGRESS_INTERVAL" -- \
  fairseq-bt-evaluate --path "$(model_checkpoint "$name")" --data-dir "$WORK/prep/bin" \
  --spm-model "$WORK/prep/spm.model" --source-lang "$src" --target-lang "$tgt" \
  --input "$WORK/raw/test_$test.$src" --reference "$WORK/raw/test_$test.$tgt" --output-prefix "$out" \
  --system "$name" --beam "$EVAL_BEAM" --log-interval 1
tail -n 1 "$out.log"  # the scores (warnings, if any, are in the log)
