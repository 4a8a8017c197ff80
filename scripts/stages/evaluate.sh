#!/usr/bin/env bash
# Score one model on every raw test set WORK/raw/test_SET.{SRC,TGT} (sacrebleu BLEU + chrF):
# WORK/eval/SET/NAME.{json,hyp,log,done}; each set skipped when its scores are done (NAME.done: the
# beam, checkpoint, vocabulary and test files they were made with). With PAIR (a
# multilingual run): the pair's test sets WORK/raw/PAIR/test_SET.*, into
# WORK/eval/SET/PAIR/SYSTEM.* (SYSTEM: the last part of NAME, e.g. bt of de-en/bt).
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME SRC TGT [PAIR]   (env: WORK, EVAL_BEAM, LAUNCHER, PROGRESS_INTERVAL; PROGRESS_PLAIN=1: no live line)" >&2; exit 2; }
[ $# -eq 3 ] || [ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${EVAL_BEAM:?set EVAL_BEAM}" "${LAUNCHER?set LAUNCHER (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
name=$1 src=$2 tgt=$3 pair=""
[ $# -lt 4 ] || pair=$4
model_files "$name"
raw="$WORK/raw${pair:+/$pair}"
sets=("$raw"/test_*."$src")
[ -e "${sets[0]}" ] || { echo "error: no test set $raw/test_SET.$src" >&2; exit 2; }
for input in "${sets[@]}"; do
  set=${input#"$raw/test_"} && set=${set%".$src"}
  out="$WORK/eval/$set/$name"
  [ -z "$pair" ] || out="$WORK/eval/$set/$pair/$(basename "$name")"
  # scored with this beam, model, vocabulary and test set (in OUT.done): anything else is an
  # error, never an old score shown beside new settings (scores without it: scored again)
  made_with=("beam=$EVAL_BEAM") made_from=("${model_inputs[@]}" "$input" "$raw/test_$set.$tgt")
  if stamped "$out.done" "Delete $out.* to score it again."; then
    echo "== evaluate $name on $set: done already"; continue
  fi
  echo "== evaluate $name on $set ($src->$tgt, beam $EVAL_BEAM)"
  mkdir -p "$(dirname "$out")"
  "${run_stage[@]}" --stage evaluate --name "${out#"$WORK/eval/$set/"} $set" \
    --timings "$WORK/timings.jsonl" --log "$out.log" --interval "$PROGRESS_INTERVAL" ${PROGRESS_PLAIN:+--plain} -- \
    "${launcher[@]}" fairseq-bt-evaluate --path "$ckpt" --data-dir "$data" --spm-model "$spm" \
    --source-lang "$src" --target-lang "$tgt" --input "$input" \
    --reference "$raw/test_$set.$tgt" --output-prefix "$out" --system "$(basename "$out")" \
    --beam "$EVAL_BEAM" --log-interval 1 "${model_args[@]}"
  stamp "$out.done"
  tail -n 1 "$out.log"  # the scores (warnings, if any, are in the log)
done
