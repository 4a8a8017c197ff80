#!/usr/bin/env bash
# Back-translate monolingual MONO_LANG text with model NAME (MONO_LANG -> SYN_LANG) into a
# binarized synthetic corpus WORK/bt/OUT/bin usable as task.bt_data. Resumable (the generator
# records finished chunks); skipped when the corpus is complete.
# BT_SHARDS=N > 1: N generators side by side, each on every N-th chunk of the input
# (--num-shards N --shard-id i, in WORK/bt/OUT/shards/i, each resumable on its own), then
# merged in input order: the same corpus as one generator. Each gets one visible GPU
# (CUDA_VISIBLE_DEVICES, round robin over the GPUs torch sees) or, without a GPU, cores/N
# threads (OMP_NUM_THREADS); with a LAUNCHER neither: the launcher places each one.
# A model of its own vocabulary (reuse.sh) has its output re-encoded with the pipeline's
# (fairseq-bt-backtranslate --binarize-spm-model). SYN_LANG a list LANG,LANG,...: a multilingual
# model (trained here) back-translates into each (--target-langs; OUT/LANG/ per language, one
# corpus OUT/bin for bt_multilingual; BT_SHARDS=1 and BT_BACKEND=fairseq).
# BT_MODE=copy: no model (NAME unused): each sentence its own source, the control a
# back-translation must beat (fairseq-bt-backtranslate copy).
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME MONO_LANG SYN_LANG OUT   (env: WORK, BT_MODE, BT_BEAM, BT_BACKEND, BT_GENERATE_FLAGS, BT_SHARDS, LAUNCHER, PROGRESS_INTERVAL)" >&2; exit 2; }
[ $# -eq 4 ] || usage
: "${WORK:?set WORK}" "${BT_MODE:?set BT_MODE}" "${BT_BEAM:?set BT_BEAM}" \
  "${BT_BACKEND:?set BT_BACKEND}" "${BT_GENERATE_FLAGS?set BT_GENERATE_FLAGS (may be empty)}" \
  "${BT_SHARDS:?set BT_SHARDS}" "${LAUNCHER?set LAUNCHER (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
name=$1 mono=$2 syn=$3 out="$WORK/bt/$4"
# the corpus is made once per name, with what it was made with and from in OUT/DONE (the
# model's path relative to WORK: a WORK moved elsewhere keeps its corpora): a finished corpus of
# other settings, or of a model trained again since, is an error (not silently reused)
prep="$WORK/prep"
if [ "$BT_MODE" = copy ]; then
  made_with=("mode=copy")
  made_from=("$WORK/raw/mono.$mono" "$prep/bin"/dict*.txt "$prep/spm.model")
else
  model_files "$name"
  backend=$BT_BACKEND
  [ -z "$model_backend" ] || backend=$model_backend  # a reused CTranslate2 model: CTranslate2
  made_with=("mode=$BT_MODE" "beam=$BT_BEAM" "backend=$backend" "args=$BT_GENERATE_FLAGS")
  made_from=("${model_inputs[@]}" "$WORK/raw/mono.$mono" "$prep/bin"/dict*.txt "$prep/spm.model")
fi
if stamped "$out/DONE" "Delete $out to back-translate again, or give these settings their own corpus name (bt.corpus / BT_CORPUS)."; then
  echo "== back-translate $4: done already"; exit 0
fi
done_corpus() { stamp "$out/DONE"; }
binarize=(--binarize-to "$out/bin" --srcdict "$prep/bin/dict.$syn.txt"
          --tgtdict "$prep/bin/dict.$mono.txt" --binarize-spm-model "$prep/spm.model")
run_stage+=(--stage back-translate --timings "$WORK/timings.jsonl" --interval "$PROGRESS_INTERVAL")
if [ "$BT_MODE" = copy ]; then
  echo "== copy $WORK/raw/mono.$mono as its own $syn source (the copied-text control)"
  "${run_stage[@]}" --name "$4" -- fairseq-bt-backtranslate copy --input "$WORK/raw/mono.$mono" \
    --spm-model "$prep/spm.model" -s "$mono" -t "$syn" --output-dir "$out" "${binarize[@]}"
  done_corpus
  exit 0
fi
echo "== back-translate $WORK/raw/mono.$mono with $name ($mono->$syn, $BT_MODE, $backend)"
langs=(-t "$syn")
case "$syn" in *,*)  # the model's dictionaries are the pipeline's: each language's own
  langs=(--target-langs "$syn") binarize=(--binarize-to "$out/bin")
  [ "$BT_SHARDS" = 1 ] || { echo "error: $0: SYN_LANG $syn needs BT_SHARDS=1" >&2; exit 2; } ;;
esac
# shellcheck disable=SC2206
generate=(fairseq-bt-backtranslate --input "$WORK/raw/mono.$mono" --path "$ckpt" --data "$data"
          --spm-model "$spm" -s "$mono" "${langs[@]}" --mode "$BT_MODE" --beam "$BT_BEAM"
          --backend "$backend" --log-interval "$PROGRESS_INTERVAL" $BT_GENERATE_FLAGS
          "${model_args[@]}")
if [ "$BT_SHARDS" = 1 ]; then
  # the generator draws its own progress bar (a line every PROGRESS_INTERVAL s off a terminal)
  "${run_stage[@]}" --name "$4" -- "${launcher[@]}" "${generate[@]}" --output-dir "$out" \
    "${binarize[@]}"
  done_corpus
  exit 0
fi

devices=()  # the GPUs a shard may see, as CUDA_VISIBLE_DEVICES names them (none: CPU)
case " $BT_GENERATE_FLAGS " in *" --cpu "*) ;; *)
  [ ${#launcher[@]} -gt 0 ] || read -ra devices <<< "$(python -c 'import os, torch
n = torch.cuda.device_count()
print(*(os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(n)))).split(",")[:n])')"
esac
threads=$(( $(nproc) / BT_SHARDS )) && threads=$(( threads > 0 ? threads : 1 ))
dirs=() pids=()
trap 'kill "${pids[@]}" 2> /dev/null || true' EXIT  # a stopped stage stops its shards
for ((i = 0; i < BT_SHARDS; i++)); do
  dirs+=("$out/shards/$i")
  if [ -f "$out/shards/$i/bt.summary.json" ]; then echo "== shard $i of $4: done already"; continue; fi
  place=() share=()  # on CPU each shard's processes / CTranslate2 threads: its share of the cores
  if [ ${#launcher[@]} -gt 0 ]; then :
  elif [ ${#devices[@]} -gt 0 ]; then place=(CUDA_VISIBLE_DEVICES="${devices[i % ${#devices[@]}]}")
  else place=(OMP_NUM_THREADS="$threads") share=(--workers "$threads" --ct2-inter-threads "$threads"); fi
  echo "== shard $i of $4 ($BT_SHARDS shards; ${place[*]:-placed by LAUNCHER})"
  env "${place[@]}" "${run_stage[@]}" --name "$4 shard $i" --plain -- "${launcher[@]}" \
    "${generate[@]}" "${share[@]}" --num-shards "$BT_SHARDS" --shard-id "$i" \
    --output-dir "$out/shards/$i" &
  pids+=($!)
done
failed=()
for pid in "${pids[@]}"; do wait "$pid" || failed+=("$pid"); done
pids=()
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: ${#failed[@]} of $BT_SHARDS back-translation shards of $4 failed (their output" \
       "above); run again to go on from their last finished chunk" >&2
  exit 1
fi
shards=$(IFS=,; echo "${dirs[*]}")
"${run_stage[@]}" --name "$4 merge" -- fairseq-bt-backtranslate merge --shards "$shards" \
  --output-dir "$out" "${binarize[@]}"
done_corpus
