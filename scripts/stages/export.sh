#!/usr/bin/env bash
# Export a system of the run (fairseq-bt-export) into WORK/export/NAME: EXPORT_SYSTEM names it,
# or best: the system of highest BLEU on TEST_SET (the run's first). With PAIR SRC TGT (a
# multilingual run): the pair's best (or named) system, bilingual or multilingual, scored on the
# pair's TEST_SET, into WORK/export/PAIR/NAME (translating SRC->TGT). Made again, replacing the
# old export, whenever the scores that chose it or the model changed (a variant trained since,
# a model continued): an export is never of another model than the report shows.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 TEST_SET [PAIR SRC TGT]   (env: WORK, EXPORT_SYSTEM, EXPERIMENT_FILE, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 1 ] || [ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${EXPORT_SYSTEM:?set EXPORT_SYSTEM}" "${EXPERIMENT_FILE:?set EXPERIMENT_FILE}" \
  "${LAUNCHER?set LAUNCHER (may be empty)}" "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"
source "$(dirname "$0")/common.sh"
set=$1 pair="" langs=() system=$EXPORT_SYSTEM
if [ $# -eq 4 ]; then
  pair=$2 langs=(--source-lang "$3" --target-lang "$4")
  [ ! -d "$WORK/models/$pair/$system" ] || system="$pair/$system"  # the pair's own, else a multilingual one
fi
out="$WORK/export${pair:+/$pair}" scores="$set${pair:+/$pair}"
made_with=("system=$system" "test_set=$scores")
made_from=("$WORK/eval/$scores")
[ "$system" = best ] || { model_files "$system"; made_from+=("$ckpt"); }
state=0
_stamp_args
"${provenance[@]}" check "$out/DONE" "${stamp_args[@]}" > /dev/null 2>&1 || state=$?
if [ "$state" = 0 ]; then echo "== export${pair:+ $pair}: done already ($(ls "$out" | grep -v DONE | tr '\n' ' '))"; exit 0; fi
echo "== export $system (scores of $scores) into $out"
rm -rf "$out"  # the pipeline's own: no export of a system no longer chosen stays
"${run_stage[@]}" --stage export --name "$system${pair:+ $pair}" --timings "$WORK/timings.jsonl" \
  --interval "$PROGRESS_INTERVAL" -- fairseq-bt-export --run "$WORK" --system "$system" \
  --test-set "$scores" "${langs[@]}" --experiment-file "$EXPERIMENT_FILE" --output "$out/{system}" --force
stamp "$out/DONE"
