#!/usr/bin/env bash
# GPU side of the back-translation benchmark, one GPU, under 6 minutes: fairseq-bt-backtranslate
# (fairseq backend, --fp16) and CTranslate2 (float16) against fairseq-generate --fp16 with the
# same batch, beam 5 and sampling, median of 3 alternating runs, and the BLEU of both backends
# on the held-out set. The table goes to $OUT/bench_gpu.md (and stdout).
#
# Imports (beyond Python 3.12, torch CUDA, sentencepiece, sacrebleu, numpy): fairseq
# (fairseq-fixed 0.12.3.1, with hydra-core, omegaconf, bitarray, sacremoses), ctranslate2 (a
# CUDA build; without it the CTranslate2 rows are left out), this repository on PYTHONPATH.
# Data: the committed Tatoeba slice (a bt_transformer_small en->fr model is trained on it
# first, fp16, about a minute), or Multi30K when BT_SHARED_DATA points to a copy of
# shared/data; MODEL/DATA/SPM/SRC/TGT use an existing reverse model instead.
#   OUT=/tmp/out bash benchmarks/gpu.sh
set -euo pipefail
OUT=${OUT:-runs/bench_gpu}
LINES=${LINES:-3000}      # monolingual lines per timed run
BATCH=${BATCH:-128}       # --batch-size of every command
UPDATES=${UPDATES:-800}   # training updates when no MODEL is given
MODEL=${MODEL:-}
DATA=${DATA:-}
SPM=${SPM:-}
SRC=${SRC:-}
TGT=${TGT:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUT"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
model=()
if [ -n "$MODEL" ]; then
  model=(--path "$MODEL" --spm-model "${SPM:?set SPM to the sentencepiece model of MODEL}")
  [ -n "$DATA" ] && model+=(--data "$DATA")
fi
[ -n "$SRC" ] && model+=(-s "$SRC")
[ -n "$TGT" ] && model+=(-t "$TGT")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt" || true
python "$root/benchmarks/bench_generate.py" --device cuda --lines "$LINES" \
  --batch-size "$BATCH" --updates "$UPDATES" --repeats 3 --table "$OUT/bench_gpu.md.part" \
  "${model[@]}"
mv "$OUT/bench_gpu.md.part" "$OUT/bench_gpu.md"
