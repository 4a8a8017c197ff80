#!/usr/bin/env bash
# Raw text to a sacrebleu table in one command: Multi30K de->en, baseline vs back-translation.
#   prepare -> train reverse (en->de) -> back-translate English monolingual text ->
#   train forward: bitext only (baseline); bitext + tagged BT (bt), then fine-tuned on the
#   bitext (bt_ft) -> evaluate -> report.
# Every stage skips finished work and resumes after a kill. Settings below, all overridable:
#   WORK=runs/x BITEXT=29000 MONO=100000 PROFILE=base_gpu bash scripts/pipeline.sh
set -euo pipefail

WORK=${WORK:-runs/demo}                 # run directory (everything is written here)
CORPUS=${CORPUS:-}                      # Multi30K folder; default: ../shared/data/multi30k, else download
DOWNLOAD_DIR=${DOWNLOAD_DIR:-data/multi30k}  # where the download goes when there is no CORPUS
PROFILE=${PROFILE:-cpu_demo}            # configs/PROFILE.yaml (cpu_demo, cpu_experiment, gpu_experiment, base_gpu, tiny)
SRC=${SRC:-de}
TGT=${TGT:-en}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-$SRC->$TGT}  # the report's title
EXPERIMENT_FILE=${EXPERIMENT_FILE:-}    # the experiment file of the run: its hash goes in the report
BITEXT=${BITEXT:-3000}                  # task1 training pairs used as bitext (low-resource subset)
MONO=${MONO:-10000}                     # monolingual TGT sentences to back-translate
VALID=${VALID:-1014}                    # validation pairs (task1 val)
TEST=${TEST:-1000}                      # test pairs (test_2016_flickr)
SPM_VOCAB=${SPM_VOCAB:-4000}            # joint sentencepiece vocabulary
BT_TAG=${BT_TAG-<BT>}                   # tagged back-translation (Caswell et al. 2019); empty: off
BT_MODE=${BT_MODE:-beam}                # beam | greedy | sample | noised_beam
BT_BEAM=${BT_BEAM:-2}                   # beam size of back-translation (modes beam, noised_beam)
BT_BACKEND=${BT_BACKEND:-fairseq}       # fairseq | ctranslate2 (fairseq-bt-generate --backend)
BT_ARGS=${BT_ARGS:-}                    # more fairseq-bt-generate flags, e.g. --fp16 --max-tokens 16000
BT_TRAIN_ARGS=${BT_TRAIN_ARGS:-}        # extra hydra overrides for the +BT model, e.g. ++task.upsample_primary=2
BT_UPDATES=${BT_UPDATES:-2}             # the +BT model trains BT_UPDATES x the profile's max_update on
                                        # bitext + synthetic (several times the bitext's size)
BT_FINETUNE=${BT_FINETUNE:-0.334}       # then goes on with the bitext alone for this share of
                                        # max_update: system NAME_ft (0: no fine-tuning)
BT_NAME=${BT_NAME:-bt}                  # name of the +BT system: a new name in the same WORK trains
                                        # one more variant beside the finished ones (reverse,
                                        # baseline, synthetic corpus reused)
TRAIN_ARGS=${TRAIN_ARGS:-}              # extra hydra overrides for every model
EVAL_BEAM=${EVAL_BEAM:-5}               # beam size of the test-set evaluation
ROUNDS=${ROUNDS:-1}                     # >1: iterative back-translation (Hoang et al. 2018)
BASELINE_PARALLEL=${BASELINE_PARALLEL:-}  # 1: train the baseline beside the reverse model and BT
                                        # (on CPU each with half the cores); 0: one at a time;
                                        # default: 1 for a GPU profile, 0 for a CPU one (on 2 cores
                                        # two 1-thread trainings were no faster than one after another)
PROGRESS_INTERVAL=${PROGRESS_INTERVAL:-60}  # seconds between progress lines when the output is
                                        # not a terminal (a terminal gets one live line)
REVERSE_CHECKPOINT=${REVERSE_CHECKPOINT:-}  # a trained TGT->SRC model (.pt) to back-translate
                                        # with instead of training one (system `reverse`)
REVERSE_DATA=${REVERSE_DATA:-}          # with it: the folder of its dict.SRC.txt, dict.TGT.txt
REVERSE_SPM=${REVERSE_SPM:-}            # with it: its sentencepiece model (when not the
                                        # pipeline's, its output is re-encoded with the pipeline's)
BT_SHARDS=${BT_SHARDS:-1}               # back-translate with N generators side by side (one per
                                        # GPU, or cores/N threads each on CPU), merged in order
LAUNCHER=${LAUNCHER:-}                  # command prefix of every training, back-translation and
                                        # evaluation, e.g. "srun --ntasks=1 --gres=gpu:1"
export WORK PROFILE BT_MODE BT_BEAM BT_ARGS BT_BACKEND BT_SHARDS EVAL_BEAM LAUNCHER \
  PROGRESS_INTERVAL  # the stages require them

trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
usage() { sed -n '2,7p' "$0" >&2; exit 2; }
take() {  # take FILE.gz N: the first N lines (head closing the pipe early is not an error)
  [ -f "$1" ] || { echo "error: $1: not found" >&2; return 1; }
  (set +o pipefail; zcat "$1" | head -n "$2")
}
[ $# -eq 0 ] || usage
if [ "$BT_NAME" != bt ] && [ "$ROUNDS" != 1 ]; then
  echo "error: BT_NAME=$BT_NAME: variants are for ROUNDS=1; iterate in a new WORK" >&2; exit 2
fi
[[ "$BT_SHARDS" =~ ^[1-9][0-9]*$ ]] || { echo "error: BT_SHARDS=$BT_SHARDS: a number >= 1" >&2; exit 2; }
if [ -n "$REVERSE_CHECKPOINT$REVERSE_DATA$REVERSE_SPM" ] && \
   { [ -z "$REVERSE_CHECKPOINT" ] || [ -z "$REVERSE_DATA" ] || [ -z "$REVERSE_SPM" ]; }; then
  echo "error: a reused reverse model needs REVERSE_CHECKPOINT, REVERSE_DATA and REVERSE_SPM" \
       "(got '$REVERSE_CHECKPOINT', '$REVERSE_DATA', '$REVERSE_SPM')" >&2; exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [ -z "$CORPUS" ] && [ -d "$root/../shared/data/multi30k" ]; then CORPUS="$root/../shared/data/multi30k"; fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
# shellcheck disable=SC2206
train_args=($TRAIN_ARGS)
# the profile as training composes it (configs/_base.yaml etc. included)
[ -f "$root/configs/$PROFILE.yaml" ] || { echo "error: PROFILE=$PROFILE: no $root/configs/$PROFILE.yaml" >&2; exit 2; }
show=(fairseq-bt-hydra-train --config-dir "$root/configs" --config-name "$PROFILE" --cfg job)
composed=$("${show[@]}" 2> /dev/null) || { echo "error: PROFILE=$PROFILE does not compose: ${show[*]}" >&2; exit 2; }
profile=$(python -c "import sys, yaml
c = yaml.safe_load(sys.stdin); print(c['optimization']['max_update'], int(c['common']['cpu']))" <<< "$composed")
read -r max_update on_cpu <<< "$profile"
if [ -n "$REVERSE_CHECKPOINT" ]; then  # checked before any work
  bash "$here/stages/reuse.sh" reverse "$TGT" "$SRC" "$REVERSE_CHECKPOINT" "$REVERSE_DATA" \
    "$REVERSE_SPM" || exit $?
elif [ -f "$WORK/models/reverse/reused.json" ]; then
  echo "error: $WORK/models/reverse reuses $(cat "$WORK/models/reverse/reused.json"): set" \
       "REVERSE_CHECKPOINT, REVERSE_DATA and REVERSE_SPM as in the first run, or use a new WORK" >&2
  exit 2
fi

echo "== data: Multi30K subset ($BITEXT bitext pairs, $MONO monolingual $TGT sentences)"
if [ ! -f "$WORK/raw/DONE" ]; then  # a WORK with its raw/ subset needs no corpus (e.g. copied to a GPU host)
  corpus=$(CORPUS="$CORPUS" DOWNLOAD_DIR="$DOWNLOAD_DIR" bash "$here/stages/fetch_multi30k.sh")
  mkdir -p "$WORK/raw.tmp"
  for l in "$SRC" "$TGT"; do
    take "$corpus/task1/train.$l.gz" "$BITEXT" > "$WORK/raw.tmp/train.$l"
    take "$corpus/task1/val.$l.gz" "$VALID" > "$WORK/raw.tmp/valid.$l"
    take "$corpus/task1/test_2016_flickr.$l.gz" "$TEST" > "$WORK/raw.tmp/test_2016_flickr.$l"
    take "$corpus/mono/task2_train.$l.dedup_notask1.gz" "$MONO" > "$WORK/raw.tmp/mono.$l"
  done
  rm -rf "$WORK/raw"; mv "$WORK/raw.tmp" "$WORK/raw"; touch "$WORK/raw/DONE"
fi

echo "== prepare: normalise, sentencepiece ($SPM_VOCAB), binarize"
python -m fairseq_bt_plugin.progress --stage prepare --timings "$WORK/timings.jsonl" \
  --interval "$PROGRESS_INTERVAL" --done "$WORK/prep/prepare.json" -- \
  fairseq-bt-prepare --source-lang "$SRC" --target-lang "$TGT" --trainpref "$WORK/raw/train" \
  --validpref "$WORK/raw/valid" --destdir "$WORK/prep" \
  --spm-vocab-size "$SPM_VOCAB" ${BT_TAG:+--tag "$BT_TAG"} > /dev/null

if [ -z "$BASELINE_PARALLEL" ]; then BASELINE_PARALLEL=$([ "$on_cpu" = 1 ] && echo 0 || echo 1); fi
tag_args=()
[ -n "$BT_TAG" ] && tag_args=("++task.bt_tag='$BT_TAG'")
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
[ -n "$REVERSE_CHECKPOINT" ] || "${par[@]}" bash "$here/stages/train.sh" reverse "$TGT" "$SRC" "${train_args[@]}"
[ "$BASELINE_PARALLEL" = 1 ] || "${baseline[@]}"
bt_updates=$(awk -v m="$max_update" -v f="$BT_UPDATES" 'BEGIN { printf "%d", m * f + 0.5 }')
ft_updates=$(awk -v m="$max_update" -v f="$BT_FINETUNE" 'BEGIN { printf "%d", m * f + 0.5 }')
reverse=reverse
mode=$([ "$BT_MODE" = beam ] && echo "" || echo "_$BT_MODE")  # one synthetic corpus per mode
for round in $(seq 1 "$ROUNDS"); do
  sfx=$([ "$round" = 1 ] && echo "" || echo "_r$round")
  bash "$here/stages/backtranslate.sh" "$reverse" "$TGT" "$SRC" "mono_$TGT$mode$sfx"
  # shellcheck disable=SC2206
  bash "$here/stages/train.sh" "$BT_NAME$sfx" "$SRC" "$TGT" "${train_args[@]}" \
    ++task.bt_data="$WORK/bt/mono_$TGT$mode$sfx/bin" "${tag_args[@]}" \
    optimization.max_update="$bt_updates" $BT_TRAIN_ARGS
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

if [ "$BASELINE_PARALLEL" = 1 ]; then wait "$baseline_pid"; trap - EXIT; fi
for m in "$WORK"/models/*/; do
  name=$(basename "$m")
  case "$name" in reverse*) bash "$here/stages/evaluate.sh" "$name" "$TGT" "$SRC" ;;
                  *) bash "$here/stages/evaluate.sh" "$name" "$SRC" "$TGT" ;; esac
done

echo "== report: $WORK/report.{md,json,png}"
reproduce=$(for v in $(grep -oE '^[A-Z][A-Z0-9_]*=\$\{' "$0" | cut -d= -f1); do
  printf '%s=%q ' "$v" "${!v}"; done; echo "bash scripts/pipeline.sh")  # every setting's value
fairseq-bt-report --work-dir "$WORK" --title "$EXPERIMENT_NAME: baseline vs back-translation ($PROFILE)" \
  --experiment-file "$EXPERIMENT_FILE" --command "$reproduce"
