#!/usr/bin/env bash
# The transfer study (docs/transfer.md): the child pair SRC->TGT of STUDY.yaml trained four ways,
#   child_scratch       random initialisation
#   child_from_parent   from a PARENT_LANG->TGT parent (task.init_from, vocabulary remapped)
#   child_from_multi    from a multilingual parent on every pair of PARENTS.yaml (bt_multilingual)
#   child_from_ae       from a (V)AE pretrained with bt_denoising on STUDY.yaml's mono SRC + TGT
#     bash scripts/studies/transfer.sh STUDY.yaml PARENTS.yaml [KEY=VALUE ...]
# (configs/experiments/transfer_de_en.yaml and transfer_de_en_parents.yaml), on the pipeline's
# stages: data (WORK/raw; the parents' WORK/pretrain/raw/PAIR) -> prepare (one sentencepiece
# model over every language, trained with the child's data; the parents' data with it, one
# dictionary) -> parents and autoencoder (WORK/pretrain/models, fixed budgets) -> each child to
# CHILD_EARLY updates (child_X_at_N), then on from there until the profile's patience stops it
# (child_X) -> evaluate (eval_beam) -> report (p-values against child_scratch). The profile
# (cpu_transfer, gpu_transfer) decides the models and CPU or GPU; environment variables and
# KEY=VALUE override STUDY.yaml as for the pipeline; PARENTS.yaml is read as it is. Every stage
# skips finished work.
set -euo pipefail

PARENT_LANG=${PARENT_LANG:-fr}          # the bilingual parent's source language (a pair of PARENTS.yaml)
PARENT_UPDATES=${PARENT_UPDATES:-250}   # updates of each parent
AE_UPDATES=${AE_UPDATES:-250}           # updates of the autoencoder
AE_ARCH=${AE_ARCH:-bt_transformer_vae_small}  # the autoencoder (the profile's sizes, as every model)
AE_ARGS=${AE_ARGS:-++model.latent_mode=autoencoder criterion._name=bt_vae_seq2seq ++criterion.kl_beta=0.2 ++criterion.kl_schedule=cyclical ++criterion.kl_cycle_updates=100 ++criterion.kl_free_bits=0.1 ++criterion.rec_weight=0.2}
CHILD_EARLY=${CHILD_EARLY:-250}         # each child is also scored after this many updates (0: not)
FREEZE=${FREEZE:-0}                     # task.init_freeze_updates of the initialised children

usage() { sed -n '2,16p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)  # scripts/
root=$(dirname "$here")
case "${1:-}" in -h|--help|""|*=*) usage ;; esac
case "${2:-}" in ""|*=*) usage ;; esac
experiment=$1 parents=$2
shift 2
source "$here/stages/driver.sh"
load_settings "$experiment" "$@"
[ -z "$PAIRS" ] || { echo "error: $experiment: the study's file has one pair (source_lang); the parents' pairs go in PARENTS.yaml" >&2; exit 2; }
source "$here/stages/common.sh"  # stamped, stamp (make_data)
pretrain="$WORK/pretrain"
keep() { :; }  # make_data's cleaning: none, the data as the files hold it

echo "== data: $EXPERIMENT_NAME ($(shown "$BITEXT") $SRC-$TGT pairs, $(shown "$MONO") monolingual sentences per language; test sets: $TEST_SETS)"
make_data keep
parents_data() (  # PARENTS TGT: WORK/pretrain/raw/PAIR, PARENTS.yaml as it is (no study setting)
  # shellcheck disable=SC2086
  unset $SETTING_NAMES
  experiment=$1
  load_settings "$1" "work=$pretrain"
  [ "$TGT" = "$2" ] || { echo "error: $1: target_lang $TGT, the study's is $2" >&2; exit 2; }
  [ -n "$PAIRS" ] || { echo "error: $1: the parents' data are pairs (pairs: SRC: ...)" >&2; exit 2; }
  make_data keep
)
echo "== data of the parents: $parents"
parents_data "$parents" "$TGT" || exit $?
parent_pairs=()
for d in "$pretrain/raw"/*-"$TGT"/; do parent_pairs+=("$(basename "$d")"); done
[ -d "$pretrain/raw/$PARENT_LANG-$TGT" ] || { echo "error: $parents: no pair $PARENT_LANG (PARENT_LANG: one of ${parent_pairs[*]%-"$TGT"})" >&2; exit 2; }
export_settings
compose_profile

echo "== prepare: $SRC-$TGT and mono $SRC+$TGT; one sentencepiece model ($SPM_VOCAB) over the parents' text too"
extra=()  # every parent's training text
for pair in "${parent_pairs[@]}"; do extra+=("$pretrain/raw/$pair/train".*); done
bash "$here/stages/prepare.sh" --source-lang "$SRC" --target-lang "$TGT" \
  --trainpref "$WORK/raw/train" --validpref "$WORK/raw/valid" --monopref "$WORK/raw/mono" \
  --spm-extra-text "$(IFS=,; echo "${extra[*]}")"
echo "== prepare the parents: ${parent_pairs[*]} with that sentencepiece model, one dictionary"
WORK=$pretrain bash "$here/stages/prepare.sh" --lang-pairs "$(IFS=,; echo "${parent_pairs[*]}")" \
  --trainpref "$pretrain/raw/{pair}/train" --validpref "$pretrain/raw/{pair}/valid" \
  --spm-model "$WORK/prep/spm.model"

pretrained() {  # NAME SRC TGT OVERRIDES...: a model of WORK/pretrain
  WORK=$pretrain bash "$here/stages/train.sh" "$@" "${train_args[@]}"
}
pretrained parent "$PARENT_LANG" "$TGT" optimization.max_update="$PARENT_UPDATES"
langs=("${parent_pairs[@]%-"$TGT"}")
pretrained multi "$(IFS=+; echo "${langs[*]}")" "$TGT" task._name=bt_multilingual \
  "~task.source_lang" "~task.target_lang" "++task.lang_pairs='$(IFS=,; echo "${parent_pairs[*]}")'" \
  ++task.encoder_langtok=src ++task.sampling_method=temperature \
  ++task.sampling_temperature="$MULTI_TEMPERATURE" optimization.max_update="$PARENT_UPDATES"
# shellcheck disable=SC2206
ae_args=($AE_ARGS)
pretrained ae "$SRC" "$TGT" task._name=bt_denoising "~task.source_lang" "~task.target_lang" \
  task.data="$WORK/prep/mono" "++task.mono_langs='$SRC,$TGT'" model._name="$AE_ARCH" \
  "${ae_args[@]}" optimization.max_update="$AE_UPDATES"

early=$(( CHILD_EARLY > 0 && CHILD_EARLY < max_update ? CHILD_EARLY : 0 ))
children=()
child() {  # NAME [OVERRIDES...]: child_NAME_at_EARLY (validated and saved at EARLY only: scored
  # there), then child_NAME going on from its last state (optimizer, schedule, data order)
  local name="child_$1" first=("${@:2}") init
  shift
  init="$WORK/models/$name"  # the model initialised (where its log says how)
  if [ "$early" -gt 0 ]; then
    init+="_at_$early"
    bash "$here/stages/train.sh" "${name}_at_$early" "$SRC" "$TGT" "${train_args[@]}" "$@" \
      optimization.max_update="$early" dataset.validate_interval_updates="$early" \
      checkpoint.save_interval_updates="$early"
    first=("checkpoint.continue_once=$WORK/models/${name}_at_$early/checkpoint_last.pt")
    children+=("${name}_at_$early")
  fi
  bash "$here/stages/train.sh" "$name" "$SRC" "$TGT" "${train_args[@]}" "${first[@]}"
  children+=("$name")
  sed -n 's/.*\(init from .*\)/   \1/p;T;q' "$init/hydra_train.log"
}
from() { echo "++task.init_from=$pretrain/models/$1/checkpoint_last.pt"; }
child scratch
child from_parent "$(from parent)" ++task.init_freeze_updates="$FREEZE"
child from_multi "$(from multi)" ++task.init_freeze_updates="$FREEZE"
child from_ae "$(from ae)" ++task.init_freeze_updates="$FREEZE"

for name in "${children[@]}"; do bash "$here/stages/evaluate.sh" "$name" "$SRC" "$TGT"; done
report "Transfer learning, $EXPERIMENT_NAME $SRC->$TGT ($(shown "$BITEXT") pairs, $PROFILE)" \
  --baselines child_scratch --command "bash scripts/studies/transfer.sh $WORK/experiment.yaml $parents"
