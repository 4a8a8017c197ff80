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
# and copied to WORK/experiment.yaml when the run reaches its report (publish_experiment): a
# run stopped before (e.g. by other settings than a finished output's) leaves it as it was.
load_settings() {
  local settings
  settings=$(python -m fairseq_bt_plugin.experiment settings "$@" --configs "$root/configs" \
    --save) || exit 2
  eval "$settings"
  export WORK PROFILE BT_MODE BT_BEAM BT_ARGS BT_BACKEND BT_SHARDS EVAL_BEAM PROGRESS_INTERVAL SPM_VOCAB BT_TAG \
    AVERAGE_LAST REVERSE_CHECKPOINT REVERSE_DATA REVERSE_SPM LAUNCHER EXPERIMENT_NAME EXPERIMENT_FILE
  # shellcheck disable=SC2206
  train_args=($TRAIN_ARGS)
  if [ "$AVERAGE_LAST" -gt 1 ]; then train_args+=("checkpoint.keep_interval_updates=$AVERAGE_LAST"); fi
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
}

# updates FACTOR: FACTOR times the profile's max_update, rounded
updates() { awk -v m="$max_update" -v f="$1" 'BEGIN { printf "%d", m * f + 0.5 }'; }

# publish_experiment: WORK/experiment.yaml is this run's experiment file (it reached the report)
publish_experiment() {
  cmp -s "$EXPERIMENT_FILE" "$WORK/experiment.yaml" && return
  cp "$EXPERIMENT_FILE" "$WORK/experiment.yaml.tmp" && mv "$WORK/experiment.yaml.tmp" "$WORK/experiment.yaml"
}
