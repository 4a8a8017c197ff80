#!/usr/bin/env bash
# Back-translate monolingual MONO_LANG text with model NAME (MONO_LANG -> SYN_LANG) into a
# binarized synthetic corpus WORK/bt/OUT/bin usable as task.bt_data. Resumable (the generator
# records finished chunks); skipped when the corpus is complete.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME MONO_LANG SYN_LANG OUT   (env: WORK, BT_MODE, BT_BEAM, BT_BACKEND, BT_ARGS, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${BT_MODE:?set BT_MODE}" "${BT_BEAM:?set BT_BEAM}" \
  "${BT_BACKEND:?set BT_BACKEND}" "${BT_ARGS?set BT_ARGS (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/checkpoint.sh"
name=$1 mono=$2 syn=$3 out="$WORK/bt/$4"
if [ -f "$out/DONE" ]; then echo "== back-translate $4: done already"; exit 0; fi
echo "== back-translate $WORK/raw/mono.$mono with $name ($mono->$syn, $BT_MODE, $BT_BACKEND)"
# the generator draws its own progress bar (a line every PROGRESS_INTERVAL s off a terminal)
# shellcheck disable=SC2086
python -m fairseq_bt_plugin.progress --stage back-translate --name "$4" \
  --timings "$WORK/timings.jsonl" --interval "$PROGRESS_INTERVAL" -- \
  fairseq-bt-generate --input "$WORK/raw/mono.$mono" --path "$(model_checkpoint "$name")" \
  --data "$WORK/prep/bin" --spm-model "$WORK/prep/spm.model" -s "$mono" -t "$syn" \
  --output-dir "$out" --mode "$BT_MODE" --beam "$BT_BEAM" --backend "$BT_BACKEND" \
  --binarize-to "$out/bin" --srcdict "$WORK/prep/bin/dict.$syn.txt" \
  --tgtdict "$WORK/prep/bin/dict.$mono.txt" --log-interval "$PROGRESS_INTERVAL" $BT_ARGS
touch "$out/DONE"
