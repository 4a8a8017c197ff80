#!/usr/bin/env bash
# Export a system of the run (fairseq-bt-export) into WORK/export/NAME: EXPORT_SYSTEM names it,
# or best: the system of highest BLEU on TEST_SET (the run's first). Made again, replacing the
# old export, whenever the scores that chose it or the model changed (a variant trained since,
# a model continued): an export is never of another model than the report shows.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 TEST_SET   (env: WORK, EXPORT_SYSTEM, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 1 ] || usage
: "${WORK:?set WORK}" "${EXPORT_SYSTEM:?set EXPORT_SYSTEM}" "${LAUNCHER?set LAUNCHER (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"
source "$(dirname "$0")/common.sh"
set=$1
made_with=("system=$EXPORT_SYSTEM" "test_set=$set")
made_from=("$WORK/eval/$set")
[ "$EXPORT_SYSTEM" = best ] || { model_files "$EXPORT_SYSTEM"; made_from+=("$ckpt"); }
state=0
_stamp_args
"${provenance[@]}" check "$WORK/export/DONE" "${stamp_args[@]}" > /dev/null 2>&1 || state=$?
if [ "$state" = 0 ]; then echo "== export: done already ($(ls "$WORK/export" | grep -v DONE | tr '\n' ' '))"; exit 0; fi
echo "== export $EXPORT_SYSTEM (scores of $set) into $WORK/export"
rm -rf "$WORK/export"  # the pipeline's own: no export of a system no longer chosen stays
"${run_stage[@]}" --stage export --name "$EXPORT_SYSTEM" --timings "$WORK/timings.jsonl" \
  --interval "$PROGRESS_INTERVAL" -- fairseq-bt-export --run "$WORK" --system "$EXPORT_SYSTEM" \
  --test-set "$set" --output "$WORK/export/{system}" --force
stamp "$WORK/export/DONE"
