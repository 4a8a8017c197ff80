#!/usr/bin/env bash
# Transfer learning for low-resource de->en (a Multi30K subset), four children:
#   scratch   random initialisation
#   parent    initialised from a fr->en parent trained on Tatoeba (--init-from, vocabulary remapped)
#   multi     initialised from a multilingual fr,cs->en parent (bt_multilingual: Tatoeba fr-en and
#             Multi30K cs-en; a new language pair for it), vocabulary remapped
#   ae        initialised from a (V)AE pretrained with bt_denoising on Multi30K mono/ de+en
# Every child trains to convergence (CHILD_PATIENCE validations without a lower valid loss, at
# most CHILD_UPDATES) and is scored twice: at CHILD_EARLY updates (the old fixed budget: speed of
# convergence) and at its best validation loss (final quality); the report has each validation
# curve. One joint sentencepiece model over de/fr/cs/en (fairseq-bt-prepare --spm-extra-text,
# reused by the parents); one fairseq dictionary per pair (one joined one for the multilingual
# parent). fairseq-bt-evaluate scores sacrebleu BLEU and chrF on test_2016_flickr,
# fairseq-bt-report tabulates. Every stage skips finished work.
#   WORK=runs/transfer bash scripts/transfer_experiment.sh
# MAX_UPDATE=10 is a smoke run; MODEL_ARGS= gives ARCH's own (bigger) sizes.
set -euo pipefail

WORK=${WORK:-runs/transfer}                 # everything is written here
DATA=${DATA:-}                              # shared data folder; default ../shared/data
M30K=${M30K:-}                              # Multi30K folder (task1/, mono/); default DATA/multi30k
TATOEBA=${TATOEBA:-}                        # Tatoeba fr-en folder ({train,dev}.{fr,en}.gz);
                                            # default DATA/tatoeba/fra-eng
CHILD_PAIRS=${CHILD_PAIRS:-5000}            # de-en training pairs (task1 train, first N)
PARENT_PAIRS=${PARENT_PAIRS:-20000}         # fr-en Tatoeba pairs (every k-th line: all lengths)
MULTI_CS_PAIRS=${MULTI_CS_PAIRS:-5000}      # cs-en pairs of the multilingual parent (task1 train,
                                            # the lines after the child's)
MONO=${MONO:-10000}                         # monolingual sentences per language (de, en)
VALID=${VALID:-200}                         # validation pairs (task1 val)
TEST=${TEST:-1000}                          # test pairs (test_2016_flickr has 1000)
SPM_VOCAB=${SPM_VOCAB:-4000}                # joint de/fr/en sentencepiece vocabulary
ARCH=${ARCH:-bt_transformer_small}          # children and the fr->en parent
AE_ARCH=${AE_ARCH:-bt_transformer_vae_small}  # the pretrained autoencoder (VAE or plain)
# model flags for every model (the same for all, so that every part transfers); CPU size:
MODEL_ARGS=${MODEL_ARGS---encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512}
AE_ARGS=${AE_ARGS:---latent-mode autoencoder --kl-beta 0.2 --kl-schedule cyclical --kl-cycle-updates 100 --kl-free-bits 0.1 --rec-weight 0.2}
MAX_UPDATE=${MAX_UPDATE:-}                  # if set: every *_UPDATES below defaults to it
PARENT_UPDATES=${PARENT_UPDATES:-${MAX_UPDATE:-250}}
AE_UPDATES=${AE_UPDATES:-${MAX_UPDATE:-250}}
CHILD_UPDATES=${CHILD_UPDATES:-${MAX_UPDATE:-8000}}  # at most: children stop at their patience
CHILD_PATIENCE=${CHILD_PATIENCE:-5}         # validations without a lower valid loss: a child stops
VALID_INTERVAL=${VALID_INTERVAL:-125}       # children validate (and keep checkpoint_best) every N
CHILD_EARLY=${CHILD_EARLY:-250}             # each child also scored here (checkpoint_early.pt; 0: not)
MAX_TOKENS=${MAX_TOKENS:-2048}
LR=${LR:-0.002}
WARMUP=${WARMUP:-50}
DROPOUT=${DROPOUT:-0.2}
FREEZE=${FREEZE:-0}                         # --init-freeze-updates for the initialised children
BEAM=${BEAM:-2}
SEED=${SEED:-1}

usage() { sed -n '2,17p' "$0" >&2; echo "settings: the VAR=\${VAR:-default} block at the top" >&2; exit 2; }
[ $# -eq 0 ] || usage
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DATA=${DATA:-$root/../shared/data}
M30K=${M30K:-$DATA/multi30k}
TATOEBA=${TATOEBA:-$DATA/tatoeba/fra-eng}
for f in "$M30K/task1/train.de.gz" "$TATOEBA/train.fr.gz" "$M30K/mono/task2_train.de.dedup_notask1.gz"; do
  [ -f "$f" ] || { echo "error: $f not found (set DATA, M30K or TATOEBA)" >&2; exit 2; }
done
if [ -x "$root/.venv/bin/fairseq-bt-prepare" ]; then export PATH="$root/.venv/bin:$PATH"; fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
source "$here/stages/finished.sh"
banner() { echo "== $(date +%H:%M:%S) $*"; }
take() { (set +o pipefail; zcat "$1" | head -n "$2"); }  # first N lines of a .gz
spread() {  # spread FILE.gz N: N lines from all over the file (Tatoeba is sorted by length)
  local total; total=$(zcat "$1" | wc -l)
  zcat "$1" | awk -v step=$(( total / $2 > 1 ? total / $2 : 1 )) -v n="$2" \
    '(NR - 1) % step == 0 && c++ < n'
}

# ---------------------------------------------------------------------------------------
banner "data: $CHILD_PAIRS de-en pairs, $PARENT_PAIRS fr-en pairs, $MONO mono sentences per language"
if [ ! -f "$WORK/raw/DONE" ]; then
  rm -rf "$WORK/raw.tmp"; mkdir -p "$WORK/raw.tmp"
  for l in de en; do
    take "$M30K/task1/train.$l.gz" "$CHILD_PAIRS" > "$WORK/raw.tmp/train.$l"
    take "$M30K/task1/val.$l.gz" "$VALID" > "$WORK/raw.tmp/valid.$l"
    take "$M30K/task1/test_2016_flickr.$l.gz" "$TEST" > "$WORK/raw.tmp/test.$l"
    take "$M30K/mono/task2_train.$l.dedup_notask1.gz" "$MONO" > "$WORK/raw.tmp/mono.$l"
  done
  for l in fr en; do
    spread "$TATOEBA/train.$l.gz" "$PARENT_PAIRS" > "$WORK/raw.tmp/parent_train.$l"
    spread "$TATOEBA/dev.$l.gz" "$VALID" > "$WORK/raw.tmp/parent_valid.$l"
  done
  # the multilingual parent: the fr-en parent's pairs and cs-en pairs the child never sees
  for pair in fr-en cs-en; do mkdir -p "$WORK/raw.tmp/multi/$pair"; done
  for l in fr en; do
    cp "$WORK/raw.tmp/parent_train.$l" "$WORK/raw.tmp/multi/fr-en/train.$l"
    cp "$WORK/raw.tmp/parent_valid.$l" "$WORK/raw.tmp/multi/fr-en/valid.$l"
  done
  for l in cs en; do
    take "$M30K/task1/train.$l.gz" $(( CHILD_PAIRS + MULTI_CS_PAIRS )) | tail -n +$(( CHILD_PAIRS + 1 )) \
      > "$WORK/raw.tmp/multi/cs-en/train.$l"
    take "$M30K/task1/val.$l.gz" "$VALID" > "$WORK/raw.tmp/multi/cs-en/valid.$l"
  done
  touch "$WORK/raw.tmp/DONE"
  rm -rf "$WORK/raw"; mv "$WORK/raw.tmp" "$WORK/raw"
fi

r="$WORK/raw"
banner "prepare: child de-en and mono de+en; one sentencepiece model over de/fr/cs/en ($SPM_VOCAB)"
fairseq-bt-prepare --source-lang de --target-lang en --trainpref "$r/train" \
  --validpref "$r/valid" --testpref "$r/test" --monopref "$r/mono" \
  --spm-extra-text "$r/parent_train.fr,$r/parent_train.en,$r/multi/cs-en/train.cs" \
  --spm-vocab-size "$SPM_VOCAB" --destdir "$WORK/prep/child" --workers 2 > /dev/null
banner "prepare: parent fr-en with the same sentencepiece model, its own dictionary"
fairseq-bt-prepare --source-lang fr --target-lang en --trainpref "$r/parent_train" \
  --validpref "$r/parent_valid" --spm-model "$WORK/prep/child/spm.model" \
  --destdir "$WORK/prep/parent" --workers 2 > /dev/null
banner "prepare: multilingual parent fr-en + cs-en, the same sentencepiece model, one dictionary"
fairseq-bt-prepare --lang-pairs fr-en,cs-en --trainpref "$r/multi/{pair}/train" \
  --validpref "$r/multi/{pair}/valid" --spm-model "$WORK/prep/child/spm.model" \
  --destdir "$WORK/prep/multi" --workers 2 > /dev/null

# ---------------------------------------------------------------------------------------
# shellcheck disable=SC2206
model_args=($MODEL_ARGS)
common=(--optimizer adam --adam-betas "(0.9, 0.98)" --lr "$LR" --lr-scheduler inverse_sqrt
        --warmup-updates "$WARMUP" --warmup-init-lr 1e-07 --clip-norm 1.0 --dropout "$DROPOUT"
        --max-tokens "$MAX_TOKENS" --share-all-embeddings --seed "$SEED" --cpu
        --no-epoch-checkpoints --num-workers 0 --no-progress-bar --log-interval 20
        "${model_args[@]}")
parent=(--disable-validation --log-format simple)
# train NAME DATA UPDATES ARGS...: fairseq-bt-train, resumable; $MARK (DONE) when finished,
# with the settings (finished.sh): a finished model asked for with others is an error
train() {
  local name=$1 data=$2 updates=$3 mark=${MARK:-DONE} state=0; shift 3
  local dir="$WORK/models/$name" stamp=("data=${data//"$WORK/"/WORK/}" "max-update=$updates"
    "common=${common[*]}" "args=${*//"$WORK/"/WORK/}")
  finished "$dir/$mark" "${stamp[@]}" || state=$?
  if [ "$state" = 0 ]; then echo "   $name: done"; return 0; fi
  if [ "$state" = 2 ]; then
    echo "error: $dir/$mark: finished with $changed: delete $dir (and its scores" \
         "$WORK/eval/*/$name*) to train it again with these settings" >&2
    exit 2
  fi
  mkdir -p "$dir"
  echo "   $name: $updates updates, log $dir/train.log"
  fairseq-bt-train "$data" --save-dir "$dir" --max-update "$updates" "${common[@]}" "$@" \
    >> "$dir/train.log" 2>&1 || { tail -20 "$dir/train.log" >&2; return 1; }
  { grep -h -m1 "init from" "$dir/train.log" || true
    grep -hE "(INFO:train:|[|] train [|])" "$dir/train.log" | tail -1 || true; } | sed 's/^/   /'
  printf '%s\n' "${stamp[@]}" > "$dir/$mark"
}

banner "parent: fr->en on Tatoeba ($PARENT_UPDATES updates)"
train parent_fr_en "$WORK/prep/parent/bin" "$PARENT_UPDATES" "${parent[@]}" --task bt_translation \
  -s fr -t en --arch "$ARCH" --criterion label_smoothed_cross_entropy --label-smoothing 0.1
banner "multilingual parent: fr,cs->en, bt_multilingual ($PARENT_UPDATES updates)"
train parent_multi "$WORK/prep/multi/bin" "$PARENT_UPDATES" "${parent[@]}" --task bt_multilingual \
  --lang-pairs fr-en,cs-en --encoder-langtok src --sampling-method temperature \
  --sampling-temperature 1.5 --arch "$ARCH" --criterion label_smoothed_cross_entropy \
  --label-smoothing 0.1

banner "autoencoder: $AE_ARCH, bt_denoising on mono de+en ($AE_UPDATES updates)"
# shellcheck disable=SC2206
ae_args=($AE_ARGS)
train ae_de_en "$WORK/prep/child/mono" "$AE_UPDATES" "${parent[@]}" --task bt_denoising --mono-langs de,en \
  --arch "$AE_ARCH" --criterion bt_vae_seq2seq --label-smoothing 0.1 "${ae_args[@]}"

# children validate every VALID_INTERVAL updates (the JSON log lines are the report's curves)
# and stop after CHILD_PATIENCE validations without a lower loss; checkpoint_best.pt is scored.
# Not at the end of each epoch too (fairseq's default; epochs are short here, and patience
# would count those validations): --validate-interval / --save-interval in epochs, never
child=(--task bt_translation -s de -t en --arch "$ARCH" --criterion label_smoothed_cross_entropy
       --label-smoothing 0.1 --validate-interval-updates "$VALID_INTERVAL"
       --save-interval-updates "$VALID_INTERVAL" --keep-interval-updates 1
       --validate-interval 1000000 --save-interval 1000000
       --patience "$CHILD_PATIENCE" --log-format json)
early=$(( CHILD_EARLY > 0 && CHILD_EARLY < CHILD_UPDATES ? CHILD_EARLY : 0 ))
train_child() {  # train_child NAME ARGS...: to CHILD_EARLY (kept: checkpoint_early.pt), then on
  local name=$1 dir="$WORK/models/$1"; shift
  if [ "$early" -gt 0 ] && [ ! -f "$dir/checkpoint_early.pt" ]; then
    MARK=EARLY train "$name" "$WORK/prep/child/bin" "$early" "${child[@]}" "$@"
    cp "$dir/checkpoint_last.pt" "$dir/checkpoint_early.pt.tmp"
    mv "$dir/checkpoint_early.pt.tmp" "$dir/checkpoint_early.pt"
  fi
  train "$name" "$WORK/prep/child/bin" "$CHILD_UPDATES" "${child[@]}" "$@"
}
banner "children: de->en to convergence (patience $CHILD_PATIENCE x $VALID_INTERVAL updates, at most $CHILD_UPDATES)"
train_child child_scratch
train_child child_from_parent --init-from "$WORK/models/parent_fr_en/checkpoint_last.pt" \
  --init-freeze-updates "$FREEZE"
train_child child_from_multi --init-from "$WORK/models/parent_multi/checkpoint_last.pt" \
  --init-freeze-updates "$FREEZE"
train_child child_from_ae --init-from "$WORK/models/ae_de_en/checkpoint_last.pt" \
  --init-freeze-updates "$FREEZE"

# ---------------------------------------------------------------------------------------
banner "evaluate: sacrebleu BLEU and chrF on test_2016_flickr (beam $BEAM)"
mkdir -p "$WORK/eval/flickr2016"  # eval/SET/SYSTEM.json: the report's layout, one test set
for name in child_scratch child_from_parent child_from_multi child_from_ae; do
  # NAME: the converged child (its best validation loss); NAME_at_EARLY: after CHILD_EARLY updates
  for system in "$name:checkpoint_best" "${name}_at_$early:checkpoint_early"; do
    checkpoint="$WORK/models/$name/${system#*:}.pt" system=${system%%:*}
    [ -f "$checkpoint" ] && [ ! -f "$WORK/eval/flickr2016/$system.json" ] || continue
    fairseq-bt-evaluate --path "$checkpoint" \
      --data-dir "$WORK/prep/child/bin" --spm-model "$WORK/prep/child/spm.model" \
      --source-lang de --target-lang en --input "$r/test.de" --reference "$r/test.en" \
      --output-prefix "$WORK/eval/flickr2016/$system" --system "$system" --beam "$BEAM" --cpu \
      | sed 's/^/   /'
  done
done

banner "report: $WORK/report.{md,json,png}"
fairseq-bt-report --work-dir "$WORK" --baselines child_scratch \
  --title "Transfer learning, Multi30K de->en ($CHILD_PAIRS pairs, children to convergence)"
