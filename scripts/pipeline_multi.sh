#!/usr/bin/env bash
# The multilingual experiment of an experiment file with pairs: (several source languages into
# one target), which scripts/pipeline.sh runs here:   bash scripts/pipeline.sh EXPERIMENT.yaml
#   data per pair -> clean per pair -> prepare (one sentencepiece model, one dictionary) -> per
#   pair SRC-TGT: reverse (TGT->SRC), baseline, back-translate the TGT monolingual text, +BT
#   (bt) -> multi (bt_multilingual on every pair's bitext) -> multi_reverse (TGT->every SRC)
#   back-translates it into every SRC -> multi_bt -> evaluate every system per pair -> export
#   each pair's best system (WORK/export/PAIR/NAME) -> report.
# Every stage skips finished work and resumes after a kill; settings as for pipeline.sh.
set -euo pipefail

usage() { sed -n '2,9p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
case "${1:-}" in -h|--help|""|*=*) usage ;; *) experiment=$1; shift ;; esac
source "$here/stages/driver.sh"
load_settings "$experiment" "$@"
[ -n "$PAIRS" ] || { echo "error: $experiment has no pairs: run it with scripts/pipeline.sh" >&2; exit 2; }
export_settings
compose_profile
read -ra pairs <<< "$PAIRS"
read -ra srcs <<< "$SRC_LANGS"
pair_list=$(IFS=,; echo "${pairs[*]}")

echo "== data: $EXPERIMENT_NAME (pairs $PAIRS, $(shown "$MONO") monolingual $TGT sentences; test sets: $TEST_SETS)"
source "$here/stages/common.sh"  # stamped, stamp (make_data)
clean() {  # RAW: raw/PAIR/ per pair (cleaned), raw/mono.TGT kept by all
  local i others monos=()
  for i in "${!pairs[@]}"; do  # every pair's valid and test sets guard every pair's text
    others=$(printf '%s\n' "${pairs[@]}" | { grep -vxF "${pairs[i]}" || true; } | paste -sd,)
    # shellcheck disable=SC2086
    fairseq-bt-clean --raw-dir "$1/${pairs[i]}" \
      --source-lang "${srcs[i]}" --target-lang "$TGT" --protect-also "$others" $CLEAN_ARGS || exit 2
    monos+=("$1/${pairs[i]}/mono.$TGT")
  done
  fairseq-bt-experiment common-mono "${monos[@]}" --out "$1/mono.$TGT"
}
make_data clean

echo "== prepare: normalise, one sentencepiece model ($SPM_VOCAB) and dictionary for $PAIRS, binarize"
bash "$here/stages/prepare.sh" --lang-pairs "$pair_list" --trainpref "$WORK/raw/{pair}/train" \
  --validpref "$WORK/raw/{pair}/valid"

mode=$([ "$BT_MODE" = beam ] && echo "" || echo "_$BT_MODE")  # one synthetic corpus per mode
# shellcheck disable=SC2206
bt_train_args=($BT_OVERRIDES) multi_bt_train_args=($MULTI_BT_OVERRIDES) multi_args=($MULTI_TRAIN_ARGS)
bilingual() {  # PAIR SRC: the pair's bilingual systems, as pipeline.sh trains them
  local pair=$1 src=$2
  bash "$here/stages/train.sh" "$pair/reverse" "$TGT" "$src" "${train_args[@]}"
  bash "$here/stages/train.sh" "$pair/baseline" "$src" "$TGT" "${train_args[@]}"
  bash "$here/stages/backtranslate.sh" "$pair/reverse" "$TGT" "$src" "$pair/mono_$TGT$mode"
  bash "$here/stages/train.sh" "$pair/$BT_NAME" "$src" "$TGT" "${train_args[@]}" \
    ++task.bt_data="$WORK/bt/$pair/mono_$TGT$mode/bin" "${tag_args[@]}" \
    optimization.max_update="$(updates "$BT_UPDATES")" "${bt_train_args[@]}"
}

# the multilingual models: bt_multilingual over every pair (fairseq's language tokens, its
# temperature sampling across pairs), MULTI_UPDATES times max_update
multi=(task._name=bt_multilingual "~task.source_lang" "~task.target_lang"
       ++task.decoder_langtok=true ++task.sampling_method=temperature
       ++task.sampling_temperature="$MULTI_TEMPERATURE" "${train_args[@]}")
many=$(IFS=+; echo "${srcs[*]}")  # for the banners: de+fr+cs
multilingual() {  # the multilingual model on every pair's bitext
  bash "$here/stages/train.sh" multi "$many" "$TGT" "${multi[@]}" "++task.lang_pairs='$pair_list'" \
    ++task.encoder_langtok=src optimization.max_update="$(updates "$MULTI_UPDATES")" "${multi_args[@]}"
}
multilingual_bt() {  # the multilingual reverse model, its back-translation, the +BT model
  local reverse_pairs
  reverse_pairs=$(for s in "${srcs[@]}"; do echo "$TGT-$s"; done | paste -sd,)
  bash "$here/stages/train.sh" multi_reverse "$TGT" "$many" "${multi[@]}" \
    "++task.lang_pairs='$reverse_pairs'" ++task.encoder_langtok=tgt \
    optimization.max_update="$(updates "$MULTI_UPDATES")" "${multi_args[@]}"
  # every monolingual line into every source language: one fairseq generator (--target-langs)
  BT_BACKEND=fairseq BT_SHARDS=1 bash "$here/stages/backtranslate.sh" multi_reverse "$TGT" \
    "$(IFS=,; echo "${srcs[*]}")" "multi/mono_$TGT$mode"
  bash "$here/stages/train.sh" multi_bt "$many" "$TGT" "${multi[@]}" "++task.lang_pairs='$pair_list'" \
    ++task.encoder_langtok=src "${tag_args[@]}" \
    "++task.extra_data='{\"bt\": \"$WORK/bt/multi/mono_$TGT$mode/bin\"}'" \
    "++task.extra_lang_pairs='{\"bt\": \"$pair_list\"}'" \
    optimization.max_update="$(updates "$(awk -v a="$MULTI_UPDATES" -v b="$BT_UPDATES" 'BEGIN { print a * b }')")" \
    "${multi_bt_train_args[@]}" "${multi_args[@]}"
}
evaluate_pair() {  # PAIR SRC: every system on the pair's test sets: eval/SET/PAIR/SYSTEM
  local pair=$1 src=$2 m name
  for m in "$WORK/models/$pair"/*/ "$WORK"/models/multi*/; do
    name=${m#"$WORK/models/"} && name=${name%/}
    # as pipeline.sh: an unfinished model is scored by the run that finishes it, never before
    if [ ! -f "$m/DONE" ]; then echo "== evaluate $name: not finished training, skipped"; continue; fi
    case "$(basename "$name")" in
      *reverse*) bash "$here/stages/evaluate.sh" "$name" "$TGT" "$src" "$pair" ;;
      *) bash "$here/stages/evaluate.sh" "$name" "$src" "$TGT" "$pair" ;;
    esac
  done
}

# BASELINE_PARALLEL=1 (default with a GPU profile): the chains above side by side, each pair's
# bilingual systems, the multilingual model and the multilingual +BT chain (on CPU each with
# OMP_NUM_THREADS=1 unless set), then the pairs' evaluations; 0: one model at a time
side_by_side() {  # "FUNCTION ARGS" ...: each call, one after the other or side by side
  local job pids=() failed=0
  if [ "$BASELINE_PARALLEL" != 1 ]; then
    for job in "$@"; do $job; done
    return
  fi
  [ "$on_cpu" = 0 ] || export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  for job in "$@"; do PROGRESS_PLAIN=1 $job & pids+=($!); done
  trap 'kill "${pids[@]}" 2> /dev/null; pkill -P "$$" 2> /dev/null || true' EXIT
  for job in "${!pids[@]}"; do
    wait "${pids[job]}" || { echo "error: ${*:job+1:1} failed (side by side)" >&2; failed=1; }
  done
  trap - EXIT
  [ "$failed" = 0 ] || exit 1
}
chains=() evals=()
for i in "${!pairs[@]}"; do
  chains+=("bilingual ${pairs[i]} ${srcs[i]}") evals+=("evaluate_pair ${pairs[i]} ${srcs[i]}")
done
side_by_side "${chains[@]}" multilingual multilingual_bt
side_by_side "${evals[@]}"
export_pair() {  # PAIR SRC: the pair's best (or named) system, by the first test set it has
  local pair=$1 src=$2 set
  for set in $TEST_SETS; do
    if [ -d "$WORK/eval/$set/$pair" ]; then
      bash "$here/stages/export.sh" "$set" "$pair" "$src" "$TGT"
      return
    fi
  done
}
if [ -n "$EXPORT_SYSTEM" ]; then
  for i in "${!pairs[@]}"; do export_pair "${pairs[i]}" "${srcs[i]}"; done
fi

report "$EXPERIMENT_NAME ${many//+/,}->$TGT: bilingual vs multilingual back-translation ($PROFILE)" \
  --baselines "$BT_NAME,reverse"
