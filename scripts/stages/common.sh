# Sourced by the stages (prepare, train, backtranslate, evaluate, filter); they require
# LAUNCHER (may be empty).
# shellcheck shell=bash

# The words of LAUNCHER: the command prefix of every heavy command (training, decoding,
# evaluation), e.g. "srun --ntasks=1 --gres=gpu:1"; empty: none.
# shellcheck disable=SC2206
launcher=($LAUNCHER)

# The stage runner (status line, the stage's wall time in WORK/timings.jsonl): run by its
# path it needs no fairseq, and starts in 0.1 s instead of 2 to 3 s a stage
run_stage=(python "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/fairseq_bt_plugin/stage_runner.py")

# What an output was made from (fairseq_bt_plugin/provenance.py, by its path too): the stage
# fills made_with (settings, KEY=VALUE) and made_from (input files and folders), then
#   stamped STAMP "HOW TO MAKE IT AGAIN"   0: finished as asked (reuse), 1: not finished (run);
#                                           made from anything else: its one-line error, exit 2
#   stamp STAMP                             records them once the output is finished
provenance=(python "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/fairseq_bt_plugin/provenance.py")
made_with=() made_from=()
_stamp_args() {
  local x
  stamp_args=(--work "$WORK")
  for x in "${made_with[@]}"; do stamp_args+=(--setting "$x"); done
  for x in "${made_from[@]}"; do stamp_args+=(--input "$x"); done
}
stamped() {
  local state=0
  _stamp_args
  "${provenance[@]}" check "$1" "${stamp_args[@]}" --redo "$2" || state=$?
  [ "$state" -le 1 ] || exit 2
  return "$state"
}
stamp() { _stamp_args; "${provenance[@]}" record "$1" "${stamp_args[@]}"; }

# model_files NAME: sets ckpt, data (the folder of its dict.*.txt) and spm for the model
# WORK/models/NAME, model_args (more flags of the tools that decode it), model_backend (the
# backend it must be decoded with; empty: any) and model_inputs (the files it is read from). ckpt: its checkpoint_avg.pt when the training averaged its last
# states (AVERAGE_LAST), else its checkpoint_best.pt. A reused model's folder (reuse.sh) holds
# its own dictionaries and sentencepiece model; a model the pipeline trained uses the
# pipeline's (WORK/prep). A reused CTranslate2 model: ckpt its directory (ct2_model), decoded
# by CTranslate2, with its output's own sentencepiece model where it has one.
model_files() {
  local dir="$WORK/models/$1"
  ckpt="$dir/checkpoint_best.pt" data="$WORK/prep/bin" spm="$WORK/prep/spm.model" model_args=()
  model_backend=
  if [ -f "$dir/checkpoint_avg.pt" ]; then ckpt="$dir/checkpoint_avg.pt"; fi
  if [ -e "$dir/spm.model" ]; then data="$dir" spm="$dir/spm.model"; fi
  model_inputs=("$ckpt" "$spm" "$data"/dict*.txt)
  if [ -e "$dir/ct2_model" ]; then
    ckpt="$dir/ct2_model" data="$dir/ct2_model" model_backend=ctranslate2
    model_args=(--backend ctranslate2)
    model_inputs=("$ckpt" "$spm")
    if [ -e "$dir/target_spm.model" ]; then
      model_args+=(--target-spm-model "$dir/target_spm.model")
      model_inputs+=("$dir/target_spm.model")
    fi
  fi
}
