#!/usr/bin/env bash
# Normalise, train the sentencepiece model, binarize: fairseq-bt-prepare with the given flags
# (the pairs or languages, --trainpref, --validpref) into WORK/prep, with SPM_VOCAB pieces and
# BT_TAG in the dictionary; skipped when WORK/prep/DONE records these flags and raw files.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 FAIRSEQ-BT-PREPARE-FLAGS...   (env: WORK, SPM_VOCAB, BT_TAG, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -ge 1 ] || usage
: "${WORK:?set WORK}" "${SPM_VOCAB:?set SPM_VOCAB}" "${BT_TAG?set BT_TAG (may be empty)}" \
  "${LAUNCHER?set LAUNCHER (may be empty)}" "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
# made with these flags from the raw bitext (train and valid, of every pair): in WORK/prep/DONE
args="$*"
made_with=("flags=${args//"$WORK/"/WORK/}" "spm_vocab=$SPM_VOCAB" "tag=$BT_TAG")
made_from=()
for f in "$WORK/raw"/train.* "$WORK/raw"/valid.* "$WORK/raw"/*/train.* "$WORK/raw"/*/valid.*; do
  [ ! -f "$f" ] || made_from+=("$f")
done
if stamped "$WORK/prep/DONE" "Delete $WORK/prep and what was made from it ($WORK/models, $WORK/bt, $WORK/eval) to prepare again, or use a new WORK."; then
  echo "== prepare: done already"; exit 0
fi
rm -f "$WORK/prep/prepare.json"  # not finished here (or without a record of its inputs): again
"${run_stage[@]}" --stage prepare --timings "$WORK/timings.jsonl" --interval "$PROGRESS_INTERVAL" \
  -- fairseq-bt-prepare "$@" --destdir "$WORK/prep" \
  --spm-vocab-size "$SPM_VOCAB" ${BT_TAG:+--tag "$BT_TAG"} > /dev/null
stamp "$WORK/prep/DONE"
