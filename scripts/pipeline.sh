#!/usr/bin/env bash
# Raw text to a sacrebleu table in one command, for the experiment a YAML file describes:
#   bash scripts/pipeline.sh EXPERIMENT.yaml [KEY=VALUE ...]
# (make demo: configs/experiments/multi30k_demo.yaml; every key: configs/experiments/example.yaml;
# a file with pairs: runs scripts/pipeline_multi.sh)
#   data -> clean -> prepare -> train reverse (TGT->SRC) -> back-translate TGT monolingual text
#   (BT_MODE=copy: each sentence its own source, no reverse model: the control BT must beat;
#   BT_COPIES=1: the +BT model trains on back-translations and such copies together)
#   -> train forward: bitext only (baseline); bitext + tagged BT (bt), then fine-tuned on the
#   bitext (bt_ft) -> evaluate -> export the best system -> report. Every stage skips finished
#   work and resumes after a kill.
# Environment variables override the file (WORK, PROFILE, BITEXT, MONO, BT_MODE, ...: README),
# KEY=VALUE both:   WORK=runs/x bash scripts/pipeline.sh my.yaml bt.beam=4
set -euo pipefail

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
case "${1:-}" in -h|--help|""|*=*) usage ;; *) experiment=$1; shift ;; esac
source "$here/stages/driver.sh"
load_settings "$experiment" "$@"
source "$here/stages/common.sh"  # model_files
# several source languages (the file's pairs:): the multilingual experiment
[ -z "$PAIRS" ] || exec bash "$here/pipeline_multi.sh" "$experiment" "$@"
export_settings
compose_profile
if [ -n "$REVERSE_CHECKPOINT$REVERSE_CT2_DIR" ]; then  # checked before any work
  bash "$here/stages/reuse.sh" reverse "$TGT" "$SRC" "$REVERSE_CHECKPOINT$REVERSE_CT2_DIR" \
    "$REVERSE_DATA" "$REVERSE_SPM" "$REVERSE_TARGET_SPM" || exit $?
elif [ -f "$WORK/models/reverse/reused.json" ]; then
  echo "error: $WORK/models/reverse reuses $(cat "$WORK/models/reverse/reused.json"): set" \
       "reverse_model (REVERSE_*) as in the first run, or use a new WORK" >&2
  exit 2
fi

echo "== data: $EXPERIMENT_NAME ($(shown "$BITEXT") bitext pairs, $(shown "$MONO") monolingual $TGT sentences; test sets: $TEST_SETS)"
clean() {  # RAW: the bitext cleaned, guarded against the valid and test sets
  # shellcheck disable=SC2086
  fairseq-bt-clean --raw-dir "$1" --source-lang "$SRC" \
    --target-lang "$TGT" $CLEAN_ARGS || exit 2
}
make_data clean

echo "== prepare: normalise, sentencepiece ($SPM_VOCAB), binarize"
bash "$here/stages/prepare.sh" --source-lang "$SRC" --target-lang "$TGT" \
  --trainpref "$WORK/raw/train" --validpref "$WORK/raw/valid"

par=()  # side by side on CPU: half the cores each (unless OMP_NUM_THREADS is set)
if [ "$BASELINE_PARALLEL" = 1 ] && [ "$on_cpu" = 1 ]; then
  half=$(( $(nproc) / 2 )); par=(env "OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( half > 0 ? half : 1 ))}")
fi
baseline=("${par[@]}" bash "$here/stages/train.sh" baseline "$SRC" "$TGT" "${train_args[@]}")
if [ "$BASELINE_PARALLEL" = 1 ]; then  # plain progress lines beside the other stages' live line
  baseline=(env PROGRESS_PLAIN=1 "${baseline[@]}")
  "${baseline[@]}" & baseline_pid=$!
  trap 'pkill -P "$baseline_pid" 2>/dev/null; kill "$baseline_pid" 2>/dev/null || true' EXIT
fi
wait_baseline() {  # the baseline trained beside the others has finished (waited for once)
  if [ -n "${baseline_pid:-}" ]; then wait "$baseline_pid"; baseline_pid=; trap - EXIT; fi
}
# BT_MODE=copy (the copied-text control) reads no model: no reverse model for it
if [ -z "$REVERSE_CHECKPOINT$REVERSE_CT2_DIR" ] && [ "$BT_MODE" != copy ]; then
  "${par[@]}" bash "$here/stages/train.sh" reverse "$TGT" "$SRC" "${train_args[@]}"
fi
[ "$BASELINE_PARALLEL" = 1 ] || "${baseline[@]}"
bt_updates=$(updates "$BT_UPDATES")
ft_updates=$(updates "$BT_FINETUNE")
reverse=reverse
mode=$([ "$BT_MODE" = beam ] && echo "" || echo "_$BT_MODE")  # one synthetic corpus per mode
for round in $(seq 1 "$ROUNDS"); do
  sfx=$([ "$round" = 1 ] && echo "" || echo "_r$round")
  synthetic="${BT_CORPUS:-mono_$TGT$mode}$sfx"
  bash "$here/stages/backtranslate.sh" "$reverse" "$TGT" "$SRC" "$synthetic"
  if [ -n "$BT_FILTER" ]; then  # one filtered corpus per setting, beside the unfiltered one
    [ "$BT_FILTER_METHOD" != dual ] || wait_baseline  # dual scores with the baseline
    filtered="${synthetic}_${BT_FILTER_METHOD}_$BT_FILTER_FRACTION"
    bash "$here/stages/filter.sh" "$synthetic" "$filtered" "$reverse" baseline
    synthetic=$filtered
  fi
  bt_data="$WORK/bt/$synthetic/bin"
  if [ "$BT_COPIES" = 1 ]; then  # and the monolingual text copied as its own source (no model)
    BT_MODE=copy bash "$here/stages/backtranslate.sh" "$reverse" "$TGT" "$SRC" "mono_${TGT}_copy"
    bt_data="'$bt_data,$WORK/bt/mono_${TGT}_copy/bin'"  # hydra: a comma-separated value, quoted
  fi
  # on CPU the +BT model gets every core: not beside the baseline (3 threads on 2 cores)
  if [ "$on_cpu" = 1 ]; then wait_baseline; fi
  init_args=()
  if [ "$BT_INIT" = baseline ]; then  # the baseline's weights; a new optimizer and schedule
    wait_baseline; model_files baseline; init_args=("checkpoint.finetune_from_model=$ckpt")
  fi
  # shellcheck disable=SC2206
  bash "$here/stages/train.sh" "$BT_NAME$sfx" "$SRC" "$TGT" "${train_args[@]}" \
    ++task.bt_data="$bt_data" "${tag_args[@]}" "${init_args[@]}" \
    optimization.max_update="$bt_updates" $BT_OVERRIDES
  forward="$BT_NAME$sfx"
  if [ "$ft_updates" -gt 0 ]; then  # fine-tune on the bitext: optimizer and schedule go on
    bash "$here/stages/train.sh" "${forward}_ft" "$SRC" "$TGT" "${train_args[@]}" "${tag_args[@]}" \
      checkpoint.continue_once="$WORK/models/$forward/checkpoint_last.pt" \
      checkpoint.reset_dataloader=true checkpoint.reset_meters=true \
      optimization.max_update="$((bt_updates + ft_updates))"
    forward="${forward}_ft"
  fi
  if [ "$round" -lt "$ROUNDS" ]; then  # the better forward model improves the reverse one
    nxt="_r$((round + 1))"
    bash "$here/stages/backtranslate.sh" "$forward" "$SRC" "$TGT" "mono_$SRC$mode$nxt"
    bash "$here/stages/train.sh" "reverse$nxt" "$TGT" "$SRC" "${train_args[@]}" \
      ++task.bt_data="$WORK/bt/mono_$SRC$mode$nxt/bin" "${tag_args[@]}"
    reverse="reverse$nxt"
  fi
done

wait_baseline
for m in "$WORK"/models/*/; do
  name=$(basename "$m")
  # a model still training (another variant's run, or one killed earlier) is scored once it
  # has finished, by the run that finishes it: never its unfinished checkpoint
  if [ ! -f "$m/DONE" ]; then echo "== evaluate $name: not finished training, skipped"; continue; fi
  case "$name" in reverse*) bash "$here/stages/evaluate.sh" "$name" "$TGT" "$SRC" ;;
                  *) bash "$here/stages/evaluate.sh" "$name" "$SRC" "$TGT" ;; esac
done

[ -z "$EXPORT_SYSTEM" ] || bash "$here/stages/export.sh" "${TEST_SETS%% *}"
report "$EXPERIMENT_NAME $SRC->$TGT: baseline vs back-translation ($PROFILE)"
