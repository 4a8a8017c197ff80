#!/usr/bin/env bash
# Normalise, train the sentencepiece model, binarize: fairseq-bt-prepare with the given flags
# (the pairs or languages, --trainpref, --validpref) into WORK/prep, with SPM_VOCAB pieces and
# BT_TAG in the dictionary; fairseq-bt-prepare skips a WORK/prep it finished.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 FAIRSEQ-BT-PREPARE-FLAGS...   (env: WORK, SPM_VOCAB, BT_TAG, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -ge 1 ] || usage
: "${WORK:?set WORK}" "${SPM_VOCAB:?set SPM_VOCAB}" "${BT_TAG?set BT_TAG (may be empty)}" \
  "${LAUNCHER?set LAUNCHER (may be empty)}" "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
"${progress[@]}" --stage prepare --timings "$WORK/timings.jsonl" --interval "$PROGRESS_INTERVAL" \
  --done "$WORK/prep/prepare.json" -- fairseq-bt-prepare "$@" --destdir "$WORK/prep" \
  --spm-vocab-size "$SPM_VOCAB" ${BT_TAG:+--tag "$BT_TAG"} > /dev/null
