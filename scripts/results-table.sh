#!/bin/sh
# Reproduces the README's results table: every method on a benchmark, 3 seeds each, with the
# published settings of kprior-run. Usage: scripts/results-table.sh BENCHMARK [METHOD...]
# (default methods: joint finetune ewc fromp fromp+ivon kprior replay ewc+fr+replay).
# Writes out/results/BENCHMARK/<method>/results.json and prints a Markdown table.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KPRIOR_BUILD_DIR:-$root/build}/apps/kprior-run
bench=${1:-split-mnist}
shift || true
mkdir -p "$root/out/results/$bench"
methods=${*:-"joint finetune ewc fromp fromp+ivon kprior replay ewc+fr+replay"}
seeds=${KPRIOR_SEEDS:-3}
field() { grep "\"$1\"" "$2" | head -1 | sed 's/.*: *//; s/,$//'; }
echo "| method | optimizer | avg. accuracy (%) | NLL | ECE | seconds per seed |"
echo "|---|---|---|---|---|---|"
for m in $methods; do
  case $m in
    *+ivon) method=${m%+ivon}; opt=ivon ;;
    *) method=$m; opt=adam ;;
  esac
  out=$root/out/results/$bench/$m
  start=$(date +%s.%N)
  "$bin" --tasks "$bench" --method "$method" --optimizer "$opt" --seeds "$seeds" \
    --data-dir "$root/data" --out "$out" > "$out.log" 2>&1 || { echo "| $m | $opt | failed (see $out.log) | | | |"; continue; }
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" -v n="$seeds" 'BEGIN{print (b-a)/n}')
  mean=$(field average_accuracy_mean "$out/results.json")
  std=$(field average_accuracy_std "$out/results.json")
  nll=$(field nll_mean "$out/results.json")
  ece=$(field ece_mean "$out/results.json")
  awk -v m="$m" -v o="$opt" -v a="$mean" -v s="$std" -v n="$nll" -v e="$ece" -v t="$secs" \
    'BEGIN { printf "| %s | %s | %.2f ± %.2f | %.4f | %.4f | %.1f |\n", m, o, 100*a, 100*s, n, e, t }'
done
