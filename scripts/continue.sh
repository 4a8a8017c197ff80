#!/usr/bin/env bash
# Train a finished model of a pipeline run on, with a higher cap or patience, and make again
# only what was made from it:
#   bash scripts/continue.sh WORK NAME optimization.max_update=N [checkpoint.patience=P]
# NAME (a folder of WORK/models, e.g. baseline, bt, fr-en/bt) goes on from its
# checkpoint_last.pt; what was made from it (its scores, corpora it back-translated, models
# trained from it or from those) is removed, and the run's own pipeline (scripts/pipeline.sh
# WORK/experiment.yaml) makes it again, reusing everything else, and reports. The raised
# settings stay with the model (WORK/models/NAME/continued.txt): later runs of the pipeline
# find it finished as continued.
set -euo pipefail
usage() { sed -n '2,10p' "$0" >&2; exit 2; }
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || usage
case "$1" in -h|--help) usage ;; esac
work=${1%/} name=${2%/}; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$work/models/$name"
[ -f "$work/experiment.yaml" ] || fail "$work: not a pipeline run that reached its report (no experiment.yaml)"
[ -f "$dir/DONE" ] || fail "$dir: not a finished model of $work (no DONE)"
[ -f "$dir/checkpoint_last.pt" ] || fail "$dir/checkpoint_last.pt: missing, nothing to go on from"
for a in "$@"; do
  case $a in optimization.max_update=[1-9]*|checkpoint.patience=[1-9]*|checkpoint.patience=-1) ;;
    *) fail "$a: give optimization.max_update=N (a higher cap) or checkpoint.patience=N" ;; esac
  case ${a#*=} in *[!0-9-]*) fail "$a: not a whole number" ;; esac
done
trained=$(python -c 'import sys
from fairseq_bt_plugin.report import training_end, validation_curve
log = sys.argv[1]; print(training_end(log, validation_curve(log))["updates"] or 0)' "$dir/hydra_train.log")
for a in "$@"; do
  case $a in optimization.max_update=*) [ "${a#*=}" -gt "$trained" ] ||
    fail "$a: $name has trained $trained updates already: give a higher cap" ;; esac
done

# what was made from the model goes; the model keeps its checkpoints
mapfile -t stale < <(python "$root/fairseq_bt_plugin/provenance.py" dependents "$dir" --work "$work")
for s in "${stale[@]}"; do
  [ -n "$s" ] || continue
  case $s in
    */DONE) echo "continue: removing ${s%/DONE} (made from $name)"; rm -rf "${s%/DONE}" ;;
    *.done) echo "continue: removing ${s%.done}.* (made from $name)"; rm -f "${s%.done}".* ;;
  esac
done
# the raised settings replace any the model was continued with before
keep=()
if [ -f "$dir/continued.txt" ]; then
  while IFS= read -r line; do
    for a in "$@"; do [ "${line%%=*}" != "${a%%=*}" ] || continue 2; done
    keep+=("$line")
  done < "$dir/continued.txt"
fi
printf '%s\n' "${keep[@]}" "$@" > "$dir/continued.txt.tmp"
mv "$dir/continued.txt.tmp" "$dir/continued.txt"
rm -f "$dir/DONE" "$dir/checkpoint_avg.pt"
echo "continue: $name goes on from $dir/checkpoint_last.pt ($trained updates) with $*"
WORK="$work" exec bash "$root/scripts/pipeline.sh" "$work/experiment.yaml"
