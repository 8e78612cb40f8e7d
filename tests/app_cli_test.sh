#!/bin/sh
# Command-line behaviour of kprior-run: exit 2 and one line for bad arguments, exit 1 for data
# errors, and a short real run on the bundled data that writes its outputs.
# Usage: app_cli_test.sh BIN_DIR DATA_DIR SCRATCH_DIR
set -u
bin=$1/kprior-run
data=$2
scratch=$3
. "$(dirname "$0")/cli_expect.sh"
expect 0 "Run a continual-learning experiment" -- "$bin" --help
expect 2 "unknown task sequence 'nope' (known: split-mnist, permuted-mnist," -- "$bin" --tasks nope --data-dir "$data"
# A NaN, infinite or negative setting is refused up front (it would only show as a diverged
# run after a whole task, or not at all).
expect 2 "lr must be a finite number > 0, got nan" -- "$bin" --lr nan --data-dir "$data"
expect 2 "tau must be a finite number > 0, got inf" -- "$bin" --tau inf --data-dir "$data"
expect 2 "ewc-lambda must be a finite number >= 0, got nan" -- "$bin" --method ewc --ewc-lambda nan --data-dir "$data"
expect 2 "replay-weight must be a finite number >= 0, got -5" -- "$bin" --method replay --replay-weight -5 --data-dir "$data"
expect 2 "clip must be a finite number >= 0, got nan" -- "$bin" --clip nan --data-dir "$data"
expect 2 "prior-precision must be a finite number > 0, got inf" -- "$bin" --prior-precision inf --data-dir "$data"
expect 2 "seed: must be >= 0" -- "$bin" --seed -1 --data-dir "$data"
expect 2 "ivon-prior regularizes with IVON's posterior: it needs --optimizer ivon" -- "$bin" --method ivon-prior --data-dir "$data"
expect 2 "joint training learns all tasks in one go" -- "$bin" --method joint --stop-after-task 2 --data-dir "$data"
expect 2 "joint (training on all tasks at once) cannot be combined" -- "$bin" --method joint,fromp --data-dir "$data"
# Options that cannot act say so rather than being ignored silently.
expect 0 "note: --memory-per-task has no effect: method ewc keeps no memory" -- "$bin" --method ewc --memory-per-task 10 \
  --epochs 1 --stop-after-task 1 --data-dir "$data" --out "$scratch/ewc-note" --threads 1
printf '%s' "$out" | grep -q "memory none" || { echo "FAIL: the header of an ewc run shows a memory: $out"; fail=1; }
expect 2 "optimizer must be ivon, adam or sgd" -- "$bin" --optimizer rmsprop --data-dir "$data"
expect 2 "epochs must be > 0" -- "$bin" --epochs 0 --data-dir "$data"
expect 2 "Could not convert" -- "$bin" --epochs abc
expect 2 "unknown method 'nope'" -- "$bin" --method nope --data-dir "$data"
expect 2 "memory selection must be lambda, mpe or random" -- "$bin" --select best --data-dir "$data"
expect 2 "learning-rate schedule must be constant or cosine" -- "$bin" --lr-schedule step --data-dir "$data"
expect 1 "cifar-10-batches-bin: not found" -- "$bin" --tasks split-cifar --data-dir "$data"
expect 2 "needs a memory" -- "$bin" --memory-per-task 0 --data-dir "$data"
expect 2 "--ewc-mode: sometimes not in {online,offline}" -- "$bin" --ewc-mode sometimes --data-dir "$data"
expect 2 "--threads: '-1' is not an integer from 0 to 4096" -- "$bin" --threads -1 --data-dir "$data"
expect 2 "--threads: '1.5' is not an integer from 0 to 4096" -- "$bin" --threads 1.5 --data-dir "$data"
expect 1 "train-images-idx3-ubyte: not found" -- "$bin" --data-dir "$scratch/missing"
rm -rf "$scratch/run"
expect 0 "average accuracy" -- "$bin" --data-dir "$data" --method fromp --epochs 1 --out "$scratch/run" --threads 1
for f in results.json accuracy_matrix.csv; do
  [ -s "$scratch/run/$f" ] || { echo "FAIL: $f not written"; fail=1; }
done
grep -q '"average_accuracy_mean"' "$scratch/run/results.json" || { echo "FAIL: results.json lacks average_accuracy_mean"; fail=1; }
grep -q '"ece"' "$scratch/run/results.json" || { echo "FAIL: results.json lacks ece"; fail=1; }
# Every per-seed number has its mean and sample standard deviation over the seeds.
expect 0 "over 2 seed" -- "$bin" --data-dir "$data" --method finetune --epochs 1 --seeds 2 --threads 1 --out "$scratch/two"
if command -v python3 > /dev/null; then
  python3 - "$scratch/two/results.json" <<'PY' || { echo "FAIL: results.json's across_seeds"; fail=1; }
import json, statistics, sys
r = json.load(open(sys.argv[1]))
for key, at in [("brier", ("brier",)), ("forgetting", ("task_incremental", "forgetting")),
                ("class_incremental_average_accuracy", ("class_incremental", "average_accuracy"))]:
    values = []
    for run in r["runs"]:
        v = run
        for k in at:
            v = v[k]
        values.append(v)
    got = r["across_seeds"][key]
    assert abs(got["mean"] - statistics.mean(values)) < 1e-12, (key, got, values)
    assert abs(got["std"] - statistics.stdev(values)) < 1e-12, (key, got, values)
PY
fi
grep -q '"lr_schedule": "constant"' "$scratch/run/results.json" || { echo "FAIL: results.json lacks lr_schedule"; fail=1; }
[ "$(wc -l < "$scratch/run/accuracy_matrix.csv")" -eq 6 ] || { echo "FAIL: accuracy_matrix.csv is not 1 header + 5 rows"; fail=1; }
head -1 "$scratch/run/accuracy_matrix.csv" | grep -qx "after_task,task_1,task_2,task_3,task_4,task_5" ||
  { echo "FAIL: accuracy_matrix.csv's header does not number the tasks from 1"; fail=1; }
sed -n 2p "$scratch/run/accuracy_matrix.csv" | grep -q "^1,[01]\.[0-9]*,,,,$" ||
  { echo "FAIL: accuracy_matrix.csv's first row is not task 1's"; fail=1; }
# Several seeds: --stop-after-task stops each of them there (not the first only), and each
# has its files, named alike.
rm -rf "$scratch/seeds"
expect 0 "seed 1: stopped after task 1 of 5" -- "$bin" --data-dir "$data" --method fromp --epochs 1 --stop-after-task 1 \
  --seeds 2 --out "$scratch/seeds" --threads 1
for f in accuracy_matrix-seed0.csv accuracy_matrix-seed1.csv checkpoint-seed0.h5 checkpoint-seed1.h5; do
  [ -s "$scratch/seeds/$f" ] || { echo "FAIL: --seeds 2 did not write $f"; fail=1; }
done
[ -e "$scratch/seeds/results.json" ] && { echo "FAIL: a stopped multi-seed run wrote results.json"; fail=1; }
expect 0 "seed 1: already stopped after task 1 of 5" -- "$bin" --resume "$scratch/seeds" --stop-after-task 1 --threads 1
# Options from a CLI11 config file.
mkdir -p "$scratch"
printf 'epochs = 1\nmethod = "finetune"\noptimizer = "sgd"\n' > "$scratch/run.toml"
expect 0 "method finetune, optimizer sgd .* 1 epochs" -- "$bin" --config "$scratch/run.toml" --data-dir "$data" --out "$scratch/cfg" --threads 1
printf 'epoch = 1\n' > "$scratch/typo.toml"  # misspelt: refused, not silently ignored
expect 2 "the --config file sets 'epoch', which is not an option" -- "$bin" --config "$scratch/typo.toml" --data-dir "$data" --out "$scratch/typo"
# IVON's measured defaults for FROMP on split-MNIST (train::ivon_settings) reach the learner;
# a given option still wins.
expect 0 "optimizer ivon (lr 0.1, cosine), .* 1 epochs of batch 8," -- "$bin" --data-dir "$data" --optimizer ivon --epochs 1 \
  --stop-after-task 1 --out "$scratch/ivon" --threads 1
expect 0 "optimizer ivon (lr 0.1, constant), .* 1 epochs of batch 32," -- "$bin" --data-dir "$data" --optimizer ivon --epochs 1 \
  --batch-size 32 --lr-schedule constant --stop-after-task 1 --out "$scratch/ivon32" --threads 1
expect 0 "optimizer ivon (lr 0.1, constant)" -- "$bin" --data-dir "$data" --tasks permuted-mnist --optimizer ivon \
  --epochs 1 --stop-after-task 1 --out "$scratch/ivon-permuted" --threads 1
expect 0 "optimizer adam (lr 0.0001, constant)" -- "$bin" --data-dir "$data" --epochs 1 \
  --stop-after-task 1 --out "$scratch/adam1" --threads 1
[ $fail -eq 0 ] && echo "kprior-run CLI: all checks passed"
exit $fail
