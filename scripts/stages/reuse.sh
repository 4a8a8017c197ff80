#!/usr/bin/env bash
# Reuse a trained model as WORK/models/NAME (SRC->TGT) instead of training one: links to its
# checkpoint (checkpoint_best.pt), dictionaries (dict.SRC.txt, dict.TGT.txt) and sentencepiece
# model (spm.model), with which the stages decode it (common.sh: model_files), and
# reused.json naming them. MODEL a CTranslate2 model directory (DICT_DIR empty): links to it
# (ct2_model), its sentencepiece model(s) (spm.model; TARGET_SPM, its output's: target_spm.model).
# Checked first, on CPU: languages, the dictionaries (vocabularies) against the checkpoint and
# against the sentencepiece model (one line on error, nothing written).
# Skipped when WORK/models/NAME reuses the same files already; other files are an error.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME SRC TGT MODEL DICT_DIR SPM_MODEL TARGET_SPM   (env: WORK; DICT_DIR or TARGET_SPM may be empty)" >&2; exit 2; }
[ $# -eq 7 ] || usage
: "${WORK:?set WORK}"  # defaults: pipeline.sh
name=$1 src=$2 tgt=$3 model=$4 dicts=$5 spm=$6 target_spm=$7
dir="$WORK/models/$name"
ct2=0
[ ! -f "$model/model.bin" ] || ct2=1
record() {  # the reused files, absolute paths, as one line of JSON
  python -c 'import json, os, sys
keys = ("ct2_dir", "data", "spm_model", "target_spm_model") if sys.argv[1] == "1" else (
    "checkpoint", "data", "spm_model")
print(json.dumps({k: os.path.abspath(v) for k, v in zip(keys, sys.argv[2:]) if v}))' \
    "$ct2" "$model" "$dicts" "$spm" "$target_spm"
}
if [ -e "$dir" ]; then  # made by this stage (moved into place complete) or by training
  if [ ! -f "$dir/reused.json" ]; then
    echo "error: $dir holds a model the pipeline trains: reusing another one needs a new WORK" >&2
    exit 2
  fi
  if [ "$(record)" = "$(cat "$dir/reused.json")" ]; then echo "== reuse $name: done already"; exit 0; fi
  echo "error: $dir reuses $(cat "$dir/reused.json"), not $(record): use a new WORK" >&2
  exit 2
fi
echo "== reuse $name ($src->$tgt): $model"
check=(--path "$model" --data "$dicts" --spm-model "$spm")
[ "$ct2" = 0 ] || check=(--path "$model" --backend ctranslate2 --spm-model "$spm"
                         ${target_spm:+--target-spm-model "$target_spm"})
fairseq-bt-check-model "${check[@]}" -s "$src" -t "$tgt" > /dev/null \
  || exit 2  # its one-line error said why
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
record > "$dir.tmp/reused.json"
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
ln -s "$(abs "$spm")" "$dir.tmp/spm.model"
inputs=(--input "$(abs "$model")" --input "$(abs "$spm")")
if [ "$ct2" = 1 ]; then
  ln -s "$(abs "$model")" "$dir.tmp/ct2_model"
  if [ -n "$target_spm" ]; then
    ln -s "$(abs "$target_spm")" "$dir.tmp/target_spm.model"
    inputs+=(--input "$(abs "$target_spm")")
  fi
else
  ln -s "$(abs "$model")" "$dir.tmp/checkpoint_best.pt"
  for l in "$src" "$tgt"; do
    ln -s "$(abs "$dicts/dict.$l.txt")" "$dir.tmp/dict.$l.txt"
    inputs+=(--input "$(abs "$dicts/dict.$l.txt")")
  done
fi
# its record (fairseq_bt_plugin/provenance.py): the files it reuses, by contents
python "$(dirname "$0")/../../fairseq_bt_plugin/provenance.py" record "$dir.tmp/DONE" \
  --work "$WORK" --setting "reused=$(abs "$model")" "${inputs[@]}"
mv "$dir.tmp" "$dir"
