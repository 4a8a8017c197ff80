#!/usr/bin/env bash
# The recipe table (docs/results/recipe.md): each back-translation ingredient against the default recipe, per seed.
#   bash scripts/studies/recipe.sh [EXPERIMENT.yaml] [SEED ...]      (default: the demo; 1 2)
# For each seed S, in RECIPE_WORK/sS (RECIPE_WORK default runs/recipe) the pipeline's default
# run (baseline, reverse, bt, bt_ft), then every variant of ARMS (bt_rev10: the same with the
# reverse-score filter) beside it on the same
# baseline, reverse model and monolingual text (a new BT_NAME each: the variants run side by
# side), and in RECIPE_WORK/avgS the whole pipeline again with AVERAGE_LAST=2 (it changes every
# model). Then one more pipeline pass per work directory scores and reports everything.
# Each row of the table is one pipeline command: the variant's variables + TRAIN_ARGS=common.seed=S.
# Environment: TRAIN_ARGS (more hydra overrides for every model, e.g. common.cpu=false on a GPU),
# BT_ARGS (more generator flags for every corpus, e.g. --cpu), PARALLEL (variants at a time,
# default 1: one after the other; on a GPU host, all).
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
scripts=$(cd "$(dirname "$0")/.." && pwd)
experiment=${1:-$scripts/../configs/experiments/multi30k_demo.yaml}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2)
out=${RECIPE_WORK:-runs/recipe}
parallel=${PARALLEL:-1}
# NAME|variables of the variant ("@": a space; BT_CORPUS: a corpus of its own where the
# generator differs)
ARMS=(
  "bt_rev10|BT_FILTER=reverse:0.1"
  "bt_dual10|BT_FILTER=dual:0.1"
  "bt_share05|BT_TRAIN_ARGS=++task.bt_synthetic_fraction=0.5"
  "bt_topk10|BT_MODE=sample BT_CORPUS=mono_topk10 BT_ARGS=--sampling-topk@10"
  "bt_sample|BT_MODE=sample"
  "bt_noised|BT_MODE=noised_beam"
)
mkdir -p "$out"
run() {  # run LOG WORK SEED [VAR=VALUE ...]: one pipeline, its output in LOG
  local log=$1 work=$2 seed=$3 vars=() args="" v; shift 3
  for v in "$@"; do  # "@" stands for a space; every corpus gets the extra BT_ARGS flags
    v=${v//@/ }
    case $v in BT_ARGS=*) args=${v#BT_ARGS=} ;; *) vars+=("$v") ;; esac
  done
  env WORK="$work" TRAIN_ARGS="common.seed=$seed ${TRAIN_ARGS:-}" "${vars[@]}" \
    BT_ARGS="${args:+$args }${BT_ARGS:-}" bash "$scripts/pipeline.sh" "$experiment" > "$log" 2>&1 \
    || { echo "error: $log" >&2; tail -n 5 "$log" >&2; return 1; }
}
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done; }
pids=()
for s in "${seeds[@]}"; do  # the default runs (and the averaged ones) first
  throttle; run "$out/s$s.log" "$out/s$s" "$s" & pids+=($!)
  throttle; run "$out/avg$s.log" "$out/avg$s" "$s" AVERAGE_LAST=2 & pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
pids=()
for s in "${seeds[@]}"; do
  [ -f "$out/s$s/models/bt/DONE" ] || continue
  for arm in "${ARMS[@]}"; do
    name=${arm%%|*}
    # shellcheck disable=SC2206
    vars=(BT_NAME="$name" ${arm#*|})
    throttle; run "$out/s$s.$name.log" "$out/s$s" "$s" "${vars[@]}" & pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for s in "${seeds[@]}"; do  # score and report whatever finished
  for w in "s$s" "avg$s"; do
    [ -d "$out/$w/models" ] || continue
    if [ "$w" = "avg$s" ]; then avg=(AVERAGE_LAST=2); else avg=(); fi
    run "$out/$w.report.log" "$out/$w" "$s" "${avg[@]}" || failed=1
  done
done
echo "== reports: $out/*/report.md"
exit $failed
