# Sourced by the stages that run models (train.sh, backtranslate.sh, evaluate.sh); they
# require LAUNCHER (may be empty).
# shellcheck shell=bash

# The words of LAUNCHER: the command prefix of every heavy command (training, decoding,
# evaluation), e.g. "srun --ntasks=1 --gres=gpu:1"; empty: none.
# shellcheck disable=SC2206
launcher=($LAUNCHER)

# model_files NAME: sets ckpt, data (the folder of its dict.*.txt) and spm for the model
# WORK/models/NAME. A reused model's folder (reuse.sh) holds its own dictionaries and
# sentencepiece model; a model the pipeline trained uses the pipeline's (WORK/prep).
model_files() {
  ckpt="$WORK/models/$1/checkpoint_best.pt" data="$WORK/prep/bin" spm="$WORK/prep/spm.model"
  if [ -e "$WORK/models/$1/spm.model" ]; then
    data="$WORK/models/$1" spm="$WORK/models/$1/spm.model"
  fi
}
