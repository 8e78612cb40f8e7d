#!/bin/sh
# Command-line behaviour of mpe-influence: exit 2 and one line for bad arguments (a class out
# of range, NaN rates, options that cannot act), exit 1 for files it cannot use (a removal
# list without indices, a file that is not its model file), and a short
# real run on the bundled Fashion-MNIST that writes its outputs and reads its model back.
# Usage: mpe_influence_cli_test.sh BIN_DIR DATA_DIR SCRATCH_DIR
set -u
bin=$1/mpe-influence
data=$2
scratch=$3
. "$(dirname "$0")/cli_expect.sh"
rm -rf "$scratch"; mkdir -p "$scratch"
quick="--data-dir $data --train-size 2000 --epochs 1 --threads 1"
load="--data-dir $data --train-size 2000 --threads 1"  # with --checkpoint: no training options
expect 0 "what if some training data had not been there" -- "$bin" --help
expect 2 "remove-class must be a class 0..9 or 'all', got '10'" -- "$bin" $quick --remove-class 10
expect 2 "remove-class must be a class 0..9 or 'all', got 'x'" -- "$bin" $quick --remove-class x
: > "$scratch/empty.txt"
expect 1 "the removal set is empty" -- "$bin" $quick --remove-indices "$scratch/empty.txt"
expect 1 "is a directory, not a --remove-indices file" -- "$bin" $quick --remove-indices "$scratch"
printf '3\n99999999\n' > "$scratch/far.txt"
expect 1 "index 99999999 is outside the training set" -- "$bin" $quick --remove-indices "$scratch/far.txt"
expect 2 "perturbation form" -- "$bin" $quick --form cubic
expect 2 "--threads: '-1' is not an integer from 0 to 4096" -- "$bin" --data-dir "$data" --threads -1
expect 2 "--train-size 70000 is more than the 60000 training images" -- "$bin" --data-dir "$data" --train-size 70000 --threads 1
expect 2 "model must be mlp or lenet5" -- "$bin" $quick --model resnet
expect 2 "converge-epochs and --per-example-steps must be > 0" -- "$bin" $quick --retrain --remove-class 3 --converge-epochs 0
expect 2 "converge-lr must be a finite number > 0, got -1" -- "$bin" $quick --retrain --remove-class 3 --converge-lr -1
# NaN and infinite values are refused before training.
expect 2 "lr (0: the optimizer's default) must be a finite number >= 0, got nan" -- "$bin" $quick --lr nan
expect 2 "prior-precision must be a finite number > 0, got inf" -- "$bin" $quick --prior-precision inf
expect 2 "per-example-lr must be a finite number > 0, got inf" -- "$bin" $quick --per-example 2 --per-example-lr inf
expect 2 "per-example-optimizer: optimizer must be" -- "$bin" $quick --per-example 2 --per-example-optimizer foo
# Options of a stage that does not run, or of training when the model is loaded, are refused.
expect 2 "protocols requires --retrain" -- "$bin" $quick --protocols converge
expect 2 "retrain-epochs sets the published protocol's epochs; --protocols has no 'published'" -- "$bin" $quick \
  --remove-class 3 --retrain --protocols converge --retrain-epochs 500
expect 2 "converge-lr sets the converge protocol" -- "$bin" $quick --remove-class 3 --retrain --protocols published --converge-lr 0.5
expect 2 "'converge' is given twice" -- "$bin" $quick --remove-class 3 --retrain --protocols converge,converge
expect 2 "with --optimizer ivon the posterior is IVON's own" -- "$bin" $quick --optimizer ivon --posterior laplace
expect 2 "per-example-steps requires --per-example" -- "$bin" $quick --per-example-steps 3
expect 2 "retrain retrains without removed data" -- "$bin" $quick --retrain
expect 2 "posterior must be laplace or adam" -- "$bin" $quick --posterior exact
expect 2 "seed: must be >= 0" -- "$bin" $quick --seed -1
expect 1 "train-images-idx3-ubyte: not found" -- "$bin" --data-dir "$scratch/missing"
expect 1 "not a kprior checkpoint" -- "$bin" $load --checkpoint "$scratch/far.txt"
# A real (tiny) run: class estimates, a listed set, retraining, top-k picture.
printf '0, 1, 2\n5\n' > "$scratch/some.txt"
expect 0 "estimate vs retrained test NLL Pearson" -- "$bin" $quick --out "$scratch/run" --remove-class all \
  --remove-indices "$scratch/some.txt" --retrain --protocols converge --converge-epochs 1 --top-k 12
for f in model.h5 influence.h5 summary.json class_removal.csv top_influential.png top_influential.csv; do
  [ -s "$scratch/run/$f" ] || { echo "FAIL: $f not written"; fail=1; }
done
[ "$(wc -l < "$scratch/run/class_removal.csv")" -eq 11 ] || { echo "FAIL: class_removal.csv is not 1 header + 10 rows"; fail=1; }
grep -q '"spearman"' "$scratch/run/summary.json" || { echo "FAIL: summary.json lacks correlations"; fail=1; }
# kprior-inspect names what the sensitivities file is instead of "0 parameters".
expect 0 "content: mpe-influence sensitivities (no model)" -- "$1/kprior-inspect" "$scratch/run/influence.h5"
# ... and summarises it: the form, the examples, the mean NLLs (those of summary.json).
printf '%s' "$out" | grep -q "sensitivities (diagonal form) of [0-9]* examples: mean NLL [0-9.]*, estimated leave-one-out NLL [0-9.]*" ||
  { echo "FAIL: kprior-inspect does not summarise influence.h5: $out"; fail=1; }
expect 1 "is not a kprior-run checkpoint (it holds 'mpe-influence sensitivities')" -- "$1/kprior-inspect" \
  "$scratch/run/influence.h5" --export-memory 1 --png "$scratch/x.png"
# Reading the model back skips training and gives the same estimates.
expect 0 "loaded mlp and its posterior" -- "$bin" $load --checkpoint "$scratch/run/model.h5" --remove-class 3 --out "$scratch/again"
# ... and reports how the file's model was trained (from the file: this run trained nothing).
grep -q '"optimizer": "adam"' "$scratch/again/summary.json" || { echo "FAIL: summary.json of a loaded model lacks its training"; fail=1; }
# The file belongs to its training set: not another --train-size.
expect 1 "the model was trained on 2000 examples, not the 1000 given" -- "$bin" --data-dir "$data" --train-size 1000 \
  --threads 1 --checkpoint "$scratch/run/model.h5" --out "$scratch/other-size"
expect 2 "prior-precision applies to training; with --checkpoint" -- "$bin" $load --checkpoint "$scratch/run/model.h5" \
  --prior-precision 5
expect 2 "optimizer with --checkpoint acts only on --retrain's runs" -- "$bin" $load --checkpoint "$scratch/run/model.h5" \
  --optimizer ivon
expect 2 "optimizer with --checkpoint sets the converge protocol's optimizer; --protocols has no 'converge'" -- "$bin" $load \
  --checkpoint "$scratch/run/model.h5" --remove-class 3 --retrain --protocols published --optimizer sgd
a=$(grep '^3,' "$scratch/run/class_removal.csv" | cut -d, -f1-5)
b=$(grep '^3,' "$scratch/again/class_removal.csv" | cut -d, -f1-5)
[ "$a" = "$b" ] || { echo "FAIL: estimates differ after reloading: '$a' vs '$b'"; fail=1; }
# Retraining a loaded model keeps the file's δ (here 50, not the default 100).
expect 0 "training mlp on 2000 Fashion-MNIST images (standardized inputs)" -- "$bin" $quick --prior-precision 50 --out "$scratch/d50" --remove-class 3
expect 0 "loaded mlp" -- "$bin" $load --checkpoint "$scratch/d50/model.h5" --remove-class 3 --retrain --protocols converge \
  --converge-epochs 1 --out "$scratch/d50-retrain"
grep -q '"prior_precision": 50' "$scratch/d50-retrain/summary.json" || { echo "FAIL: summary.json lacks the file's δ"; fail=1; }
[ "$(grep -c '"prior_precision": 50' "$scratch/d50-retrain/summary.json")" -ge 2 ] ||
  { echo "FAIL: the retraining protocol did not use the file's δ"; fail=1; }
expect 2 "holds a mlp model, not a lenet5-tanh-avgpool one: --model mlp" -- "$bin" $load --checkpoint "$scratch/run/model.h5" --model lenet5
: > "$scratch/a-file"
expect 1 "a-file: is a file, not an output folder" -- "$bin" $load --checkpoint "$scratch/run/model.h5" --out "$scratch/a-file"
# Options that cannot act and removals the data cannot give are refused before training, and
# leave no output folder behind.
expect 2 "set-form adds the set form to --remove-class" -- "$bin" $quick --set-form --out "$scratch/none"
expect 2 "final-lr 0.1 is above the learning rate 0.001" -- "$bin" $quick --final-lr 0.1 --out "$scratch/none"
expect 2 "optimizer: optimizer must be" -- "$bin" $quick --optimizer foo --out "$scratch/none"
expect 2 "remove-class: class 1 (trouser) has no examples among the 5 training images" -- "$bin" --data-dir "$data" \
  --train-size 5 --epochs 1 --threads 1 --remove-class 1 --out "$scratch/none"
case $out in *"training mlp"*) echo "FAIL: the missing class was found after training"; fail=1 ;; esac
expect 2 "seed with --checkpoint acts only on --retrain and --per-example" -- "$bin" $load \
  --checkpoint "$scratch/run/model.h5" --seed 3 --out "$scratch/none"
expect 1 "is a folder: give the model.h5 in it" -- "$bin" $load --checkpoint "$scratch/run" --out "$scratch/none"
[ ! -e "$scratch/none" ] || { echo "FAIL: a refused run left its output folder"; fail=1; }
# A run into an earlier run's folder removes that run's outputs (not the model.h5 it loads).
cp -r "$scratch/run" "$scratch/reused"
expect 0 "loaded mlp" -- "$bin" $load --checkpoint "$scratch/reused/model.h5" --out "$scratch/reused"
for f in class_removal.csv top_influential.png top_influential.csv; do
  [ ! -e "$scratch/reused/$f" ] || { echo "FAIL: a stale $f stayed in a reused --out"; fail=1; }
done
[ -s "$scratch/reused/model.h5" ] || { echo "FAIL: a reused --out lost the model.h5 it loaded"; fail=1; }
# Another file's model loaded into it: refused, the earlier model.h5 kept (not deleted, not
# left beside another model's results).
expect 2 "holds the model.h5 of an earlier run, and this run loads another model" -- "$bin" $load \
  --checkpoint "$scratch/run/model.h5" --out "$scratch/reused"
[ -s "$scratch/reused/model.h5" ] || { echo "FAIL: a refused run deleted the earlier model.h5"; fail=1; }
# With a loaded model --batch-size sets the converge protocol's batch size only.
expect 2 "batch-size with --checkpoint sets the converge protocol's batch size" -- "$bin" $load \
  --checkpoint "$scratch/run/model.h5" --remove-class 3 --retrain --protocols published --batch-size 64 --out "$scratch/bs"
# A run that fails leaves none of the earlier run's results beside its own, and says which run failed.
cp -r "$scratch/run" "$scratch/failed"
expect 1 "training: training diverged in epoch 1 of 1" -- "$bin" $quick --lr 1e30 --out "$scratch/failed"
printf '%s' "$out" | grep -q "held an earlier run; removed its class_removal.csv, influence.h5, model.h5, summary.json" ||
  { echo "FAIL: the removal of the earlier run's files is not said: $out"; fail=1; }
[ ! -e "$scratch/failed/summary.json" ] || { echo "FAIL: a failed run left the earlier summary.json"; fail=1; }
# The model file decides the architecture; the sensitivities file is no model file.
expect 0 "training lenet5" -- "$bin" --data-dir "$data" --train-size 300 --epochs 1 --threads 1 --model lenet5 \
  --out "$scratch/lenet"
expect 0 "loaded lenet5 and its posterior" -- "$bin" --data-dir "$data" --train-size 300 --threads 1 \
  --checkpoint "$scratch/lenet/model.h5" --out "$scratch/lenet-again"
expect 1 "is mpe-influence's sensitivities file (influence.h5), not its model file" -- "$bin" $load \
  --checkpoint "$scratch/run/influence.h5" --out "$scratch/none2"
expect 2 "checkpoint needs a model file" -- "$bin" $load --checkpoint "" --out "$scratch/none2"
expect 2 "per-example-lr sets --per-example's runs: give --per-example N > 0" -- "$bin" $quick --per-example 0 \
  --per-example-lr 0.3 --out "$scratch/none2"
seq 0 1999 > "$scratch/every.txt"
expect 2 "lists every training image, and retraining without them has nothing to train on" -- "$bin" $quick \
  --remove-indices "$scratch/every.txt" --retrain --out "$scratch/none2"
case $out in *"training mlp"*) echo "FAIL: removing every example was refused only after training"; fail=1 ;; esac
# With SGD the learning rates default to the publication's: MLP 1e-2 → 1e-3.
expect 0 "training mlp on 2000 Fashion-MNIST images (standardized inputs): 1 epochs, sgd lr 0.01" -- "$bin" $quick \
  --optimizer sgd --out "$scratch/sgd"
grep -q '"final_lr": 0.001' "$scratch/sgd/summary.json" || { echo "FAIL: SGD's final lr is not the published 1e-3"; fail=1; }
# A loaded model's converge protocol retrains with the optimizer the file's model was trained with.
expect 0 "loaded mlp" -- "$bin" $load --checkpoint "$scratch/sgd/model.h5" --remove-class 3 --retrain --protocols converge \
  --converge-epochs 1 --out "$scratch/sgd-retrain"
[ "$(grep -c '"optimizer": "sgd"' "$scratch/sgd-retrain/summary.json")" -ge 2 ] ||
  { echo "FAIL: the converge protocol of an SGD model file did not retrain with SGD"; fail=1; }
# The inputs are standardised as the publication's (x - 0.2860)/0.3530, recorded in model.h5:
# numpy's forward pass of the saved weights on the IDX pixels so scaled gives the saved logits.
# A model file without the record (before 2026-11-28) is evaluated on pixels in [0, 1].
python=""
for p in "${KPRIOR_PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$p" ] && "$p" -c "import numpy, h5py" 2>/dev/null; then python=$p; break; fi
done
if [ -n "$python" ]; then
  cat > "$scratch/forward.py" <<'PY'
# forward.py DATA_DIR MODEL_H5 INFLUENCE_H5 SCALE: max |numpy logits - saved logits| (first N images).
import gzip, sys, h5py, numpy as np
data, model, influence, scale = sys.argv[1:5]
with h5py.File(model, "r") as f:
    w = {k: f["model/" + k][()].astype(np.float64) for k in f["model"]}
with h5py.File(influence, "r") as f:
    saved = f["sensitivities/logits"][()]
raw = gzip.open(data + "/fashion-mnist/train-images-idx3-ubyte.gz").read()
x = np.frombuffer(raw, np.uint8, offset=16)[: saved.shape[0] * 784].reshape(-1, 784) / 255.0
if scale == "standardized":
    x = (x - 0.2860) / 0.3530
h = np.tanh(x @ w["fc0.weight"].T + w["fc0.bias"])
h = np.tanh(h @ w["fc1.weight"].T + w["fc1.bias"])
print("%.3g" % np.abs(h @ w["fc2.weight"].T + w["fc2.bias"] - saved).max())
PY
  err=$("$python" "$scratch/forward.py" "$data" "$scratch/run/model.h5" "$scratch/run/influence.h5" standardized)
  "$python" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1e-4 else 1)" "$err" ||
    { echo "FAIL: logits of standardised inputs differ from numpy's by $err"; fail=1; }
  grep -q '"inputs": "standardized"' "$scratch/run/summary.json" || { echo "FAIL: summary.json lacks the inputs"; fail=1; }
  expect 2 "--inputs unit: the model in $scratch/run/model.h5 was trained on standardized inputs" -- "$bin" $load \
    --checkpoint "$scratch/run/model.h5" --inputs unit --out "$scratch/unit-mismatch"
  expect 0 "trained on 2000 examples: adam, 1 epochs, lr 0.001 → 1e-05, batch 256, seed 0; inputs standardized" -- \
    "$1/kprior-inspect" "$scratch/run/model.h5"
  # set-inputs.py FILE VALUE: the file's recorded input scaling set to VALUE ('-': removed).
  cat > "$scratch/set-inputs.py" <<'PY'
import json, sys, h5py
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[3])
import renew_envelope
with h5py.File(sys.argv[1], "r+") as f:
    settings = json.loads(f["training"].attrs["settings"])
    if sys.argv[2] == "-":
        del settings["inputs"]
    else:
        settings["inputs"] = sys.argv[2]
    f["training"].attrs["settings"] = json.dumps(settings)
renew_envelope.renew(sys.argv[1])
PY
  cp "$scratch/run/model.h5" "$scratch/odd-model.h5"
  "$python" "$scratch/set-inputs.py" "$scratch/odd-model.h5" grey "$(dirname "$0")"
  expect 1 "odd-model.h5: its training settings name inputs grey, not standardized or unit" -- "$bin" $load \
    --checkpoint "$scratch/odd-model.h5" --out "$scratch/odd"
  # Settings that are not JSON: mpe-influence refuses the file; kprior-inspect --json stays JSON.
  cp "$scratch/run/model.h5" "$scratch/text-model.h5"
  "$python" - "$scratch/text-model.h5" "$(dirname "$0")" <<'PY'
import sys, h5py
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[2])
import renew_envelope
with h5py.File(sys.argv[1], "r+") as f:
    f["training"].attrs["settings"] = "trained by hand"
renew_envelope.renew(sys.argv[1])
PY
  expect 1 "its training settings are not JSON" -- "$bin" $load --checkpoint "$scratch/text-model.h5" --out "$scratch/text"
  "$1/kprior-inspect" "$scratch/text-model.h5" --json > "$scratch/text-inspect.json" 2>&1
  "$python" -c 'import json, sys; assert json.load(open(sys.argv[1]))["training"]["settings"] == "trained by hand"' \
    "$scratch/text-inspect.json" || { echo "FAIL: kprior-inspect --json of non-JSON settings"; fail=1; }
  cp "$scratch/run/model.h5" "$scratch/old-model.h5"
  "$python" "$scratch/set-inputs.py" "$scratch/old-model.h5" - "$(dirname "$0")"
  expect 0 "inputs unit (not recorded: an older file)" -- "$1/kprior-inspect" "$scratch/old-model.h5"
  expect 0 "records no input scaling" -- "$bin" $load --checkpoint "$scratch/old-model.h5" --out "$scratch/old"
  grep -q '"inputs": "unit"' "$scratch/old/summary.json" || { echo "FAIL: an old model file is not read as unit inputs"; fail=1; }
  err=$("$python" "$scratch/forward.py" "$data" "$scratch/old-model.h5" "$scratch/old/influence.h5" unit)
  "$python" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1e-4 else 1)" "$err" ||
    { echo "FAIL: an old model file's logits differ from numpy's on [0, 1] inputs by $err"; fail=1; }
else
  echo "note: no Python with numpy and h5py: the input scaling is not checked against numpy"
fi
exit $fail
