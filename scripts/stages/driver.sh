# Sourced by the drivers (pipeline.sh, pipeline_multi.sh): their settings and the profile.
# shellcheck shell=bash

# A stage prints its own one-line error (the file and line at fault, or what to do): the driver
# adds a line of its own only where one of its own commands failed, not a stage (or the
# baseline's training, run beside the others)
trap 'case $BASH_COMMAND in *stages/*|*baseline*) ;;
        *) echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2 ;; esac' ERR

# load_settings EXPERIMENT [KEY=VALUE ...]: every setting with its default comes from the
# experiment file (its schema: fairseq_bt_plugin/experiment/config.py); the stages require
# theirs. Written to WORK/experiments/SHA.yaml (EXPERIMENT_FILE), which reproduces this run,
# and copied to WORK/experiment.yaml when the run reaches its report (the report function): a
# run stopped before (e.g. by other settings than a finished output's) leaves it as it was.
# The settings are shell variables until export_settings: a driver that hands the experiment
# to another (pipeline.sh to pipeline_multi.sh) hands it the environment it was given, not
# values of its own (MONO holds mono.max_lines, while the variable sets mono_source's too).
load_settings() {
  local settings
  settings=$(fairseq-bt-experiment settings "$@" --configs "$root/configs" \
    --save) || exit 2
  eval "$settings"  # VAR=VALUE, each, and SETTING_NAMES
  # shellcheck disable=SC2206
  train_args=($TRAIN_ARGS)
  if [ "$AVERAGE_LAST" -gt 1 ]; then train_args+=("checkpoint.keep_interval_updates=$AVERAGE_LAST"); fi
  [ -z "$PATIENCE" ] || train_args+=("checkpoint.patience=$PATIENCE")
  tag_args=()  # the +BT models' (and the fine-tuned ones')
  [ -z "$BT_TAG" ] || tag_args=("++task.bt_tag='$BT_TAG'")
}

# export_settings: every setting exported (the stages read theirs)
export_settings() {
  # shellcheck disable=SC2086
  export $SETTING_NAMES
}

# compose_profile: max_update and on_cpu of the profile as training composes it
# (configs/_base.yaml etc. included)
compose_profile() {
  local show composed profile
  show=(fairseq-bt-hydra-train --config-dir "$root/configs" --config-name "$PROFILE" --cfg job)
  composed=$("${show[@]}" 2> /dev/null) || { echo "error: PROFILE=$PROFILE does not compose: ${show[*]}" >&2; exit 2; }
  profile=$(python -c "import sys, yaml
c = yaml.safe_load(sys.stdin); print(c['optimization']['max_update'], int(c['common']['cpu']))" <<< "$composed")
  read -r max_update on_cpu <<< "$profile"
  # BASELINE_PARALLEL empty: models side by side with a GPU profile, one at a time on CPU
  if [ -z "$BASELINE_PARALLEL" ]; then BASELINE_PARALLEL=$([ "$on_cpu" = 1 ] && echo 0 || echo 1); fi
}

# make_data CLEAN: WORK/raw, once: the experiment's raw data (fairseq-bt-experiment raw) in
# WORK/raw.tmp, cleaned by the driver's function CLEAN, then moved into place; WORK/raw/DONE
# records the experiment's data keys and the corpus files read (a WORK with its raw/ needs no
# corpus, e.g. copied to a GPU host: files outside WORK that are gone are not checked)
make_data() {
  made_with=("data=$DATA_SETTINGS") made_from=()
  if stamped "$WORK/raw/DONE" "Delete $WORK/raw and what was made from it ($WORK/prep, models, bt, eval) to make the data again, or use a new WORK."; then
    return
  fi
  rm -rf "$WORK/raw.tmp"
  fairseq-bt-experiment raw "$EXPERIMENT_FILE" --out "$WORK/raw.tmp" \
    --origin "$experiment" || exit 2
  "$1" "$WORK/raw.tmp"
  mapfile -t made_from < "$WORK/raw.tmp/sources.txt"
  rm -rf "$WORK/raw"; mv "$WORK/raw.tmp" "$WORK/raw"; stamp "$WORK/raw/DONE"
}

# shown COUNT: a count of lines or pairs, 0 shown as all
shown() { if [ "$1" = 0 ]; then echo all; else echo "$1"; fi; }

# updates FACTOR: FACTOR times the profile's max_update, rounded
updates() { awk -v m="$max_update" -v f="$1" 'BEGIN { printf "%d", m * f + 0.5 }'; }

# report TITLE [fairseq-bt-report flags]: WORK/experiment.yaml becomes this run's experiment
# file (it reached the report), then the report (the flags given win, e.g. a study's --command)
report() {
  echo "== report: $WORK/report.{md,json,png}"
  if ! cmp -s "$EXPERIMENT_FILE" "$WORK/experiment.yaml"; then
    cp "$EXPERIMENT_FILE" "$WORK/experiment.yaml.tmp" && mv "$WORK/experiment.yaml.tmp" "$WORK/experiment.yaml"
  fi
  fairseq-bt-report --work-dir "$WORK" --title "$1" --experiment-file "$WORK/experiment.yaml" \
    --command "bash scripts/pipeline.sh $WORK/experiment.yaml" "${@:2}"
}
