#!/usr/bin/env bash
# Train one model with fairseq-bt-hydra-train; skipped when WORK/models/NAME/DONE exists.
# A killed run started again resumes from its checkpoint_last.pt (fairseq's own restore).
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { echo "usage: $0 NAME SRC TGT [hydra overrides...]   (env: WORK, PROFILE, LAUNCHER, PROGRESS_INTERVAL, AVERAGE_LAST; PROGRESS_PLAIN=1: no live line)" >&2; exit 2; }
[ $# -ge 3 ] || usage
: "${WORK:?set WORK}" "${PROFILE:?set PROFILE}" "${LAUNCHER?set LAUNCHER (may be empty)}" \
  "${PROGRESS_INTERVAL:?set PROGRESS_INTERVAL}" "${AVERAGE_LAST:?set AVERAGE_LAST}"  # defaults: pipeline.sh
source "$(dirname "$0")/common.sh"
name=$1 src=$2 tgt=$3; shift 3
here=$(cd "$(dirname "$0")/../.." && pwd)
dir="$WORK/models/$name"
# a model trained on by scripts/continue.sh: its raised cap or patience, after the run's own
# settings (and recorded with them: a rerun of the pipeline finds it finished as continued)
if [ -f "$dir/continued.txt" ]; then mapfile -t more < "$dir/continued.txt"; set -- "$@" "${more[@]}"; fi
# What the model is trained with (WORK's paths relative to it, so that a WORK moved or copied
# elsewhere is still finished; where it runs left out) and from (the binarized bitext, and every
# file or folder an override names, each of a comma-separated list too: a synthetic corpus,
# the checkpoint it starts from), in its
# DONE: a finished model asked for with other settings, e.g. more updates, or whose inputs were
# made again since, is an error, never silently the old model. The data: WORK/prep/bin, or
# the folder of a task.data=DIR override (e.g. bt_denoising's monolingual data)
data="$WORK/prep/bin"
for a in "$@"; do case $a in task.data=*) data=${a#task.data=} ;; esac; done
made_with=("profile=$PROFILE")
made_from=("$data")
for a in "$@"; do
  case ${a#"${a%%[!+]*}"} in common.cpu=*|common.tensorboard_logdir=*|common.log_*|\
    dataset.num_workers=*|distributed_training.*) continue ;; esac
  made_with+=("${a//"$WORK/"/WORK/}")
  case $a in task.data=*) ;; *=*)  # a value may list several, hydra-quoted: 'A,B'
    value=${a#*=} && value=${value#\'} && value=${value%\'}
    IFS=, read -ra parts <<< "$value"
    for p in "${parts[@]}"; do [ ! -e "$p" ] || made_from+=("$p"); done ;;
  esac
done
if stamped "$dir/DONE" "Delete $dir to train it again (for more updates only its DONE: fairseq goes on from checkpoint_last.pt) and its scores $WORK/eval/*/$name.*, or give it a new name."; then
  echo "== train $name: done already"; exit 0
fi
echo "== train $name ($src->$tgt, profile $PROFILE)"
mkdir -p "$dir"
# fairseq's log to train.stdout, a status line on the terminal; every model's curves (with
# the plugin's per-source losses) in WORK/tensorboard/NAME
"${run_stage[@]}" --stage train --name "$name" --timings "$WORK/timings.jsonl" \
  --log "$dir/train.stdout" --interval "$PROGRESS_INTERVAL" ${PROGRESS_PLAIN:+--plain} -- \
  "${launcher[@]}" fairseq-bt-hydra-train --config-dir "$here/configs" --config-name "$PROFILE" \
  task.data="$data" task.source_lang="$src" task.target_lang="$tgt" \
  checkpoint.save_dir="$dir" common.tensorboard_logdir="$WORK/tensorboard/$name" "$@" \
  || { echo "error: training $name failed (fairseq's log: $dir/train.stdout)" >&2; exit 1; }
[ -f "$dir/checkpoint_best.pt" ] || { echo "error: $dir/checkpoint_best.pt missing" >&2; exit 1; }
if [ "$AVERAGE_LAST" -gt 1 ]; then  # checkpoint_avg.pt: evaluation and BT decode with it
  "${run_stage[@]}" --stage average --name "$name" --timings "$WORK/timings.jsonl" \
    --interval "$PROGRESS_INTERVAL" -- fairseq-bt-average --checkpoint-dir "$dir" \
    --last "$AVERAGE_LAST" --skip-if-fewer
fi
stamp "$dir/DONE"
