#!/usr/bin/env bash
# Reuse a trained model as WORK/models/NAME (SRC->TGT) instead of training one: links to its
# checkpoint (checkpoint_best.pt), dictionaries (dict.SRC.txt, dict.TGT.txt) and sentencepiece
# model (spm.model), with which the stages decode it (common.sh: model_files), and
# reused.json naming them. Checked first, on CPU: languages, the dictionaries against the
# checkpoint and against the sentencepiece model (one line on error, nothing written).
# Skipped when WORK/models/NAME reuses the same files already; other files are an error.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME SRC TGT CHECKPOINT DICT_DIR SPM_MODEL   (env: WORK)" >&2; exit 2; }
[ $# -eq 6 ] || usage
: "${WORK:?set WORK}"  # defaults: pipeline.sh
name=$1 src=$2 tgt=$3
dir="$WORK/models/$name"
record() {  # the reused files, absolute paths, as one line of JSON
  python -c 'import json, os, sys
print(json.dumps(dict(zip(("checkpoint", "data", "spm_model"), map(os.path.abspath, sys.argv[1:])))))' "$4" "$5" "$6"
}
if [ -e "$dir" ]; then  # made by this stage (moved into place complete) or by training
  if [ ! -f "$dir/reused.json" ]; then
    echo "error: $dir holds a model the pipeline trains: reusing another one needs a new WORK" >&2
    exit 2
  fi
  if [ "$(record "$@")" = "$(cat "$dir/reused.json")" ]; then echo "== reuse $name: done already"; exit 0; fi
  echo "error: $dir reuses $(cat "$dir/reused.json"), not $4, $5, $6: use a new WORK" >&2
  exit 2
fi
echo "== reuse $name ($src->$tgt): $4"
fairseq-bt-check-model --path "$4" --data "$5" --spm-model "$6" \
  -s "$src" -t "$tgt" > /dev/null || exit 2  # its one-line error said why
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
record "$@" > "$dir.tmp/reused.json"
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
ln -s "$(abs "$4")" "$dir.tmp/checkpoint_best.pt"
for l in "$src" "$tgt"; do ln -s "$(abs "$5/dict.$l.txt")" "$dir.tmp/dict.$l.txt"; done
ln -s "$(abs "$6")" "$dir.tmp/spm.model"
# its record (fairseq_bt_plugin/provenance.py): the files it reuses, by contents
python "$(dirname "$0")/../../fairseq_bt_plugin/provenance.py" record "$dir.tmp/DONE" \
  --work "$WORK" --setting "reused=$(abs "$4")" --input "$(abs "$4")" --input "$(abs "$6")" \
  --input "$(abs "$5/dict.$src.txt")" --input "$(abs "$5/dict.$tgt.txt")"
mv "$dir.tmp" "$dir"
