#!/bin/sh
# The runs the notebooks read (notebooks/README.md). Usage:
#   scripts/notebook-runs.sh [--fast] [OUT]     (OUT default: out/notebooks)
# Default settings are the published ones (2.5 minutes alone on 2 cores); --fast trains for a
# couple of epochs on part of the data (~1 minute: the CI check that the notebooks run).
# Writes OUT/runs/split-mnist/<method>/ (kprior-run: results.json, checkpoint.h5,
# example_scores.h5; kprior-inspect --json: inspect.json for the two FROMP runs), OUT/influence/ (mpe-influence: every class removed, against
# retraining) and OUT/influence-examples/ (single removals against retraining).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KPRIOR_BUILD_DIR:-$root/build}/apps
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
out=${1:-$root/out/notebooks}
for app in kprior-run kprior-inspect mpe-influence; do
  [ -x "$bin/$app" ] || { echo "notebook-runs: $bin/$app not built (run scripts/build.sh)" >&2; exit 1; }
done
if [ $fast = 1 ]; then
  run_opts="--epochs 2"
  class_opts="--train-size 6000 --epochs 5 --retrain-epochs 2"
  example_opts="--train-size 2000 --epochs 5 --per-example 20 --per-example-steps 20"
else
  run_opts="--seeds ${KPRIOR_SEEDS:-1}"
  # As in the README: published protocol, 10 warm-started epochs; single removals on the
  # first 10,000 images (each is 50 full-batch steps).
  class_opts="--retrain-epochs 10"
  example_opts="--train-size 10000 --per-example 100 --per-example-steps 50"
fi
log=$out/logs
mkdir -p "$log"
# Several methods on split-MNIST (accuracy matrices, average accuracy after each task); FROMP's
# memory both as published (Tr Λ) and random, with every example's scores at each boundary.
for spec in finetune:lambda ewc:lambda replay:random kprior:lambda fromp:lambda fromp-random:random; do
  name=${spec%%:*}
  select=${spec##*:}
  method=${name%-random}
  echo "notebook-runs: kprior-run split-mnist $name"
  # shellcheck disable=SC2086  # the option lists are meant to split
  "$bin/kprior-run" --tasks split-mnist --method "$method" --select "$select" --example-scores \
    $run_opts --data-dir "$root/data" --out "$out/runs/split-mnist/$name" > "$log/$name.log" 2>&1 ||
    { echo "notebook-runs: kprior-run $name failed (see $log/$name.log)" >&2; exit 1; }
done
# kprior-inspect's summary of the two memories (per task and class, score ranges, posterior).
for name in fromp fromp-random; do
  "$bin/kprior-inspect" "$out/runs/split-mnist/$name/checkpoint.h5" --json > "$out/runs/split-mnist/$name/inspect.json" ||
    { echo "notebook-runs: kprior-inspect $name failed" >&2; exit 1; }
done
# The published class-removal experiment and single-example removals (MLP on Fashion-MNIST).
echo "notebook-runs: mpe-influence, every class removed"
# shellcheck disable=SC2086
"$bin/mpe-influence" --remove-class all --retrain --protocols published --top-k 20 $class_opts \
  --data-dir "$root/data" --out "$out/influence" > "$log/influence.log" 2>&1 ||
  { echo "notebook-runs: mpe-influence failed (see $log/influence.log)" >&2; exit 1; }
echo "notebook-runs: mpe-influence, single removals"
# shellcheck disable=SC2086
"$bin/mpe-influence" $example_opts --per-example-lr 0.05 \
  --data-dir "$root/data" --out "$out/influence-examples" > "$log/influence-examples.log" 2>&1 ||
  { echo "notebook-runs: mpe-influence failed (see $log/influence-examples.log)" >&2; exit 1; }
echo "notebook-runs: outputs in $out"
