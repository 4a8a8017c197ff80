#!/usr/bin/env bash
# Where the fairseq backend's beam-search time goes on CPU (README, "Benchmarks"):
#   bash benchmarks/profile_generate.sh WORK [LINES] [OUT]
# WORK: a finished pipeline run (its reverse model, prep/ and raw/mono.TGT are used), e.g.
# runs/demo. Decodes the first LINES (1000) monolingual lines with beam 5, batch 64, three ways,
# twice each (1 process with 1 torch thread, 1 process with 2, --workers 2), prints each run's
# wall and decoding seconds, then profiles the 1-thread run with cProfile and prints the
# functions by cumulative time (OUT, default /tmp/profile_generate, keeps everything).
set -euo pipefail
work=${1:?usage: bash benchmarks/profile_generate.sh WORK [LINES] [OUT]}
lines=${2:-1000}
out=${3:-/tmp/profile_generate}
here=$(cd "$(dirname "$0")" && pwd)
py=$([ -x "$here/../.venv/bin/python" ] && echo "$here/../.venv/bin/python" || echo python)
langs=$("$py" -c "import yaml, sys; c = yaml.safe_load(open(sys.argv[1])); print(c['target_lang'], c['source_lang'])" "$work/experiment.yaml")
read -r src tgt <<< "$langs"  # the reverse model: target language -> source language
mkdir -p "$out"
head -n "$lines" "$work/raw/mono.$src" > "$out/input.txt"
common=(--input "$out/input.txt" --path "$work/models/reverse/checkpoint_best.pt"
        --data "$work/prep/bin" --spm-model "$work/prep/spm.model" -s "$src" -t "$tgt"
        --batch-size 64 --beam 5 --keep-identical --keep-duplicates --max-len-ratio 0
        --max-output-tokens 0 --log-interval 1e9 --backend fairseq --cpu)
run() {  # run NAME ARGS...: one decoding, its wall and decoding seconds
  local name=$1 start end; shift
  rm -rf "$out/$name"
  start=$(date +%s.%N)
  "$py" "$@" --output-dir "$out/$name" > "$out/$name.log" 2>&1
  end=$(date +%s.%N)
  "$py" -c "import json, sys; s = json.load(open(sys.argv[1]))
print(f\"{sys.argv[2]:<12} wall {float(sys.argv[3]):6.2f} s   decoding {s['decode_seconds']:6.2f} s\")" \
    "$out/$name/bt.summary.json" "$name" "$(echo "$end - $start" | bc)"
}
for rep in 1 2; do
  run "1x1thread_$rep" -m fairseq_bt_plugin.generate "${common[@]}" --workers 1 --cpu-threads 1
  run "1x2threads_$rep" -m fairseq_bt_plugin.generate "${common[@]}" --workers 1 --cpu-threads 2
  run "workers2_$rep" -m fairseq_bt_plugin.generate "${common[@]}" --workers 2
done
run profiled -m cProfile -o "$out/profile.out" -m fairseq_bt_plugin.generate "${common[@]}" \
  --workers 1 --cpu-threads 1
"$py" -c "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('cumulative').print_stats(40)" \
  "$out/profile.out"
