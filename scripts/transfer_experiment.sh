#!/usr/bin/env bash
# Transfer learning for low-resource de->en (a Multi30K subset), three children, same budget:
#   scratch   random initialisation
#   parent    initialised from a fr->en parent trained on Tatoeba (--init-from, vocabulary remapped)
#   ae        initialised from a (V)AE pretrained with bt_denoising on Multi30K mono/ de+en
# One joint sentencepiece model over de/fr/en; one fairseq dictionary per pair. Reports
# sacrebleu BLEU and chrF on test_2016_flickr. Every stage skips finished work.
#   WORK=runs/transfer MAX_UPDATE=800 bash scripts/transfer_experiment.sh
# Defaults (2+2-layer, 128-dim models, 250 updates each) ran end to end in 14 minutes on 2
# shared CPU cores; MAX_UPDATE=10 is a smoke run; MODEL_ARGS= gives ARCH's own (bigger) sizes.
set -euo pipefail

WORK=${WORK:-runs/transfer}                 # everything is written here
DATA=${DATA:-}                              # shared data folder; default ../shared/data
CHILD_PAIRS=${CHILD_PAIRS:-5000}            # de-en training pairs (task1 train, first N)
PARENT_PAIRS=${PARENT_PAIRS:-20000}         # fr-en Tatoeba pairs (every k-th line: all lengths)
MONO=${MONO:-10000}                         # monolingual sentences per language (de, en)
VALID=${VALID:-200}                         # validation pairs (task1 val)
SPM_VOCAB=${SPM_VOCAB:-4000}                # joint de/fr/en sentencepiece vocabulary
ARCH=${ARCH:-bt_transformer_small}          # children and the fr->en parent
AE_ARCH=${AE_ARCH:-bt_transformer_vae_small}  # the pretrained autoencoder (VAE or plain)
# model flags for every model (the same for all, so that every part transfers); CPU size:
MODEL_ARGS=${MODEL_ARGS---encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512}
AE_ARGS=${AE_ARGS:---latent-mode autoencoder --kl-beta 0.2 --kl-schedule cyclical --kl-cycle-updates 100 --kl-free-bits 0.1 --rec-weight 0.2}
MAX_UPDATE=${MAX_UPDATE:-}                  # if set: every *_UPDATES below defaults to it
PARENT_UPDATES=${PARENT_UPDATES:-${MAX_UPDATE:-250}}
AE_UPDATES=${AE_UPDATES:-${MAX_UPDATE:-250}}
CHILD_UPDATES=${CHILD_UPDATES:-${MAX_UPDATE:-250}}
MAX_TOKENS=${MAX_TOKENS:-2048}
LR=${LR:-0.002}
WARMUP=${WARMUP:-50}
DROPOUT=${DROPOUT:-0.2}
FREEZE=${FREEZE:-0}                         # --init-freeze-updates for the initialised children
BEAM=${BEAM:-2}
SEED=${SEED:-1}

usage() { sed -n '2,10p' "$0" >&2; echo "settings: the VAR=\${VAR:-default} block at the top" >&2; exit 2; }
[ $# -eq 0 ] || usage
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DATA=${DATA:-$root/../shared/data}
M30K="$DATA/multi30k"
TATOEBA="$DATA/tatoeba/fra-eng"
for f in "$M30K/task1/train.de.gz" "$TATOEBA/train.fr.gz" "$M30K/mono/task2_train.de.dedup_notask1.gz"; do
  [ -f "$f" ] || { echo "error: $f not found (set DATA)" >&2; exit 2; }
done
PY=${PY:-$root/.venv/bin/python}
[ -x "$PY" ] || PY=python3
bin_dir=$(dirname "$PY")
export PATH="$bin_dir:$PATH"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
banner() { echo "== $(date +%H:%M:%S) $*"; }
take() { (set +o pipefail; zcat "$1" | head -n "$2"); }  # first N lines of a .gz

# ---------------------------------------------------------------------------------------
banner "data: $CHILD_PAIRS de-en pairs, $PARENT_PAIRS fr-en pairs, $MONO mono sentences per language"
if [ ! -f "$WORK/raw/DONE" ]; then
  rm -rf "$WORK/raw.tmp"; mkdir -p "$WORK/raw.tmp"
  for l in de en; do
    take "$M30K/task1/train.$l.gz" "$CHILD_PAIRS" > "$WORK/raw.tmp/train.$l"
    take "$M30K/task1/val.$l.gz" "$VALID" > "$WORK/raw.tmp/valid.$l"
    zcat "$M30K/task1/test_2016_flickr.$l.gz" > "$WORK/raw.tmp/test.$l"
    take "$M30K/mono/task2_train.$l.dedup_notask1.gz" "$MONO" > "$WORK/raw.tmp/mono.$l"
  done
  "$PY" - "$TATOEBA" "$WORK/raw.tmp" "$PARENT_PAIRS" "$VALID" <<'EOF'
import gzip, sys
src, out, n, nvalid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for split, name, want in (("train", "parent_train", n), ("dev", "parent_valid", nvalid)):
    sides = {l: gzip.open(f"{src}/{split}.{l}.gz", "rt", encoding="utf-8").read().splitlines()
             for l in ("fr", "en")}
    total = len(sides["fr"])
    assert total == len(sides["en"]), f"{split}: fr/en line counts differ"
    step = max(1, total // want)  # Tatoeba is sorted by length: spread the sample
    for l, lines in sides.items():
        with open(f"{out}/{name}.{l}", "w", encoding="utf-8") as f:
            f.writelines(x + "\n" for x in lines[::step][:want])
EOF
  touch "$WORK/raw.tmp/DONE"
  rm -rf "$WORK/raw"; mv "$WORK/raw.tmp" "$WORK/raw"
fi

banner "sentencepiece: joint de/fr/en model, $SPM_VOCAB pieces"
if [ ! -f "$WORK/spm/joint.model" ]; then
  rm -rf "$WORK/spm.tmp"; mkdir -p "$WORK/spm.tmp"
  "$PY" - "$WORK" "$SPM_VOCAB" <<'EOF'
import sys
from fairseq_bt_plugin.text_processing import train_sentencepiece
w, vocab = sys.argv[1], int(sys.argv[2])
files = [f"{w}/raw/{n}" for n in ("train.de", "train.en", "parent_train.fr", "parent_train.en",
                                  "mono.de", "mono.en")]
train_sentencepiece(files, f"{w}/spm.tmp/joint", vocab,
                    input_sentence_size=300000)
EOF
  rm -rf "$WORK/spm"; mv "$WORK/spm.tmp" "$WORK/spm"
fi

banner "encode: normalise + sentencepiece"
if [ ! -f "$WORK/tok/DONE" ]; then
  rm -rf "$WORK/tok.tmp"; mkdir -p "$WORK/tok.tmp"
  "$PY" - "$WORK" <<'EOF'
import os, sys
from fairseq_bt_plugin.text_processing import TextProcessor
w = sys.argv[1]
procs = {}
for name in sorted(os.listdir(f"{w}/raw")):
    if name == "DONE":
        continue
    lang = name.rsplit(".", 1)[1]
    proc = procs.setdefault(lang, TextProcessor(f"{w}/spm/joint.model", lang))
    with open(f"{w}/raw/{name}", encoding="utf-8") as f, \
            open(f"{w}/tok.tmp/{name}", "w", encoding="utf-8") as g:
        g.writelines(proc.encode(line) + "\n" for line in f)
EOF
  touch "$WORK/tok.tmp/DONE"
  rm -rf "$WORK/tok"; mv "$WORK/tok.tmp" "$WORK/tok"
fi

banner "binarize: child de-en, parent fr-en (own joined dictionaries), mono with the child's"
binarize() {  # binarize NAME ARGS...: fairseq-preprocess into $WORK/bin/NAME
  local name=$1; shift
  [ -f "$WORK/bin/$name/DONE" ] && return 0
  rm -rf "$WORK/bin/$name.tmp"
  mkdir -p "$WORK/bin"
  fairseq-preprocess --destdir "$WORK/bin/$name.tmp" --workers 2 "$@" >> "$WORK/bin/preprocess.log" 2>&1
  touch "$WORK/bin/$name.tmp/DONE"
  rm -rf "$WORK/bin/$name"; mv "$WORK/bin/$name.tmp" "$WORK/bin/$name"
}
t="$WORK/tok"
binarize child -s de -t en --joined-dictionary --trainpref "$t/train" --validpref "$t/valid" \
  --testpref "$t/test"
binarize parent -s fr -t en --joined-dictionary --trainpref "$t/parent_train" \
  --validpref "$t/parent_valid"
if [ ! -f "$WORK/bin/mono/DONE" ]; then
  rm -rf "$WORK/bin/mono.tmp"
  for l in de en; do
    fairseq-preprocess --only-source -s "$l" --srcdict "$WORK/bin/child/dict.de.txt" \
      --trainpref "$t/mono" --validpref "$t/valid" --destdir "$WORK/bin/mono.tmp" \
      --workers 2 >> "$WORK/bin/preprocess.log" 2>&1
  done
  touch "$WORK/bin/mono.tmp/DONE"
  rm -rf "$WORK/bin/mono"; mv "$WORK/bin/mono.tmp" "$WORK/bin/mono"
fi

# ---------------------------------------------------------------------------------------
# shellcheck disable=SC2206
model_args=($MODEL_ARGS)
common=(--optimizer adam --adam-betas "(0.9, 0.98)" --lr "$LR" --lr-scheduler inverse_sqrt
        --warmup-updates "$WARMUP" --warmup-init-lr 1e-07 --clip-norm 1.0 --dropout "$DROPOUT"
        --max-tokens "$MAX_TOKENS" --share-all-embeddings --seed "$SEED" --cpu
        --no-epoch-checkpoints --disable-validation --num-workers 0 --no-progress-bar
        --log-format simple --log-interval 20 "${model_args[@]}")
train() {  # train NAME DATA UPDATES ARGS...: fairseq-bt-train, resumable; DONE when finished
  local name=$1 data=$2 updates=$3; shift 3
  local dir="$WORK/models/$name"
  if [ -f "$dir/DONE" ]; then echo "   $name: done"; return 0; fi
  mkdir -p "$dir"
  echo "   $name: $updates updates, log $dir/train.log"
  fairseq-bt-train "$data" --save-dir "$dir" --max-update "$updates" "${common[@]}" "$@" \
    >> "$dir/train.log" 2>&1 || { tail -20 "$dir/train.log" >&2; return 1; }
  (grep -hE "(INFO:train:|[|] train [|])" "$dir/train.log" || true) | tail -1 | sed 's/^/   /'
  touch "$dir/DONE"
}

banner "parent: fr->en on Tatoeba ($PARENT_UPDATES updates)"
train parent_fr_en "$WORK/bin/parent" "$PARENT_UPDATES" --task bt_translation -s fr -t en \
  --arch "$ARCH" --criterion label_smoothed_cross_entropy --label-smoothing 0.1

banner "autoencoder: $AE_ARCH, bt_denoising on mono de+en ($AE_UPDATES updates)"
# shellcheck disable=SC2206
ae_args=($AE_ARGS)
train ae_de_en "$WORK/bin/mono" "$AE_UPDATES" --task bt_denoising --mono-langs de,en \
  --arch "$AE_ARCH" --criterion bt_vae_seq2seq --label-smoothing 0.1 "${ae_args[@]}"

child=(--task bt_translation -s de -t en --arch "$ARCH" --criterion label_smoothed_cross_entropy
       --label-smoothing 0.1)
banner "children: de->en, $CHILD_UPDATES updates each"
train child_scratch "$WORK/bin/child" "$CHILD_UPDATES" "${child[@]}"
train child_from_parent "$WORK/bin/child" "$CHILD_UPDATES" "${child[@]}" \
  --init-from "$WORK/models/parent_fr_en/checkpoint_last.pt" --init-freeze-updates "$FREEZE"
train child_from_ae "$WORK/bin/child" "$CHILD_UPDATES" "${child[@]}" \
  --init-from "$WORK/models/ae_de_en/checkpoint_last.pt" --init-freeze-updates "$FREEZE"

# ---------------------------------------------------------------------------------------
banner "evaluate: sacrebleu BLEU and chrF on test_2016_flickr (beam $BEAM)"
for name in child_scratch child_from_parent child_from_ae; do
  out="$WORK/results/$name"
  [ -f "$out.json" ] && continue
  mkdir -p "$WORK/results"
  # fairseq's generator API on the binarized test set; pieces -> text with the same
  # TextProcessor as training; scored against the raw references
  "$PY" - "$WORK" "$name" "$BEAM" <<'EOF'
import json, os, sys
import sacrebleu
import torch
import fairseq_bt_plugin  # noqa: F401  (bt_* components, torch.load fix)
from fairseq import checkpoint_utils, utils
from fairseq_bt_plugin.text_processing import TextProcessor
w, name, beam = sys.argv[1], sys.argv[2], int(sys.argv[3])
models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
    [f"{w}/models/{name}/checkpoint_last.pt"], arg_overrides={"data": f"{w}/bin/child"})
for m in models:
    m.eval()
task.load_dataset("test")
cfg.generation.beam, cfg.generation.max_len_a, cfg.generation.max_len_b = beam, 1.5, 10
generator = task.build_generator(models, cfg.generation)
itr = task.get_batch_iterator(
    dataset=task.dataset("test"), max_tokens=4000, ignore_invalid_inputs=False,
    max_positions=utils.resolve_max_positions(task.max_positions(),
                                              *[m.max_positions() for m in models]),
).next_epoch_itr(shuffle=False)
proc = TextProcessor(f"{w}/spm/joint.model", "en")
hyps = {}
with torch.no_grad():
    for sample in itr:
        out = task.inference_step(generator, models, sample)
        for i, sid in enumerate(sample["id"].tolist()):
            hyps[sid] = proc.decode(task.target_dictionary.string(out[i][0]["tokens"]))
refs = open(f"{w}/raw/test.en", encoding="utf-8").read().splitlines()
assert len(hyps) == len(refs), (len(hyps), len(refs))
hyp_list = [hyps[i] for i in range(len(refs))]
bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
b, c = bleu.corpus_score(hyp_list, [refs]), chrf.corpus_score(hyp_list, [refs])
res = {"system": name, "bleu": round(b.score, 2), "chrf": round(c.score, 2),
       "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
       "beam": beam, "sentences": len(refs)}
prefix = f"{w}/results/{name}"
with open(prefix + ".hyp.tmp", "w", encoding="utf-8") as f:
    f.writelines(h + "\n" for h in hyp_list)
os.replace(prefix + ".hyp.tmp", prefix + ".hyp")
with open(prefix + ".json.tmp", "w") as f:
    json.dump(res, f, indent=2)
os.replace(prefix + ".json.tmp", prefix + ".json")
print(f"   {name}: BLEU {res['bleu']} chrF {res['chrf']}")
EOF
done

banner "report"
"$PY" - "$WORK" <<'EOF' | tee "$WORK/results/report.tsv.tmp"
import json, re, sys
w = sys.argv[1]
print("system\tBLEU\tchrF\tinit_coverage")
for name in ("child_scratch", "child_from_parent", "child_from_ae"):
    r = json.load(open(f"{w}/results/{name}.json"))
    cov = ""
    for line in open(f"{w}/models/{name}/train.log", encoding="utf-8"):
        m = re.search(r"vocabulary coverage (source [\d.]+%)", line)
        cov = m.group(1) if m else cov
    print(f"{name}\t{r['bleu']}\t{r['chrf']}\t{cov}")
EOF
mv "$WORK/results/report.tsv.tmp" "$WORK/results/report.tsv"
echo "BLEU signature: $(grep -h bleu_signature "$WORK/results/child_scratch.json" | cut -d'"' -f4)"
