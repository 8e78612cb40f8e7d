#!/bin/sh
# kprior-run on the image benchmarks, end to end on tiny fixtures written in the real formats:
# split-cifar (CIFAR-10 + CIFAR-100 binary files, CifarNet, FROMP with IVON) and split-tinyimagenet (a
# JPEG tree in TinyImageNet's layout, training streamed from the files), split-imagenet (an
# ImageFolder tree, 224x224) and split-h5 (an HDF5 array file); ResNet-18 with FROMP; bf16 and
# channels-last; model/data combinations that cannot work are refused.
# Usage: datasets_cli_test.sh BIN_DIR FIXTURE_WRITER SCRATCH_DIR
set -u
bin=$1/kprior-run
writer=$2
scratch=$3
. "$(dirname "$0")/cli_expect.sh"
rm -rf "$scratch"
mkdir -p "$scratch"
"$writer" cifar "$scratch/data" || { echo "FAIL: fixture writer (cifar)"; exit 1; }
"$writer" tiny "$scratch/data" || { echo "FAIL: fixture writer (tiny)"; exit 1; }
"$writer" imagenet "$scratch/data" || { echo "FAIL: fixture writer (imagenet)"; exit 1; }
"$writer" h5 "$scratch/h5" || { echo "FAIL: fixture writer (h5)"; exit 1; }
common="--data-dir $scratch/data --epochs 1 --batch-size 32 --threads 1"
# FROMP with IVON: the kernels linearize CifarNet at every boundary (IVON's posterior spares
# the Laplace GGN pass that Adam would need, which triples this test's time).
expect 0 "split-cifar (6 tasks), method fromp, optimizer ivon.*cifarnet (60 outputs)" -- "$bin" --tasks split-cifar $common \
  --optimizer ivon --memory-per-task 4 --out "$scratch/cifar"
for f in results.json accuracy_matrix.csv checkpoint.h5; do
  [ -s "$scratch/cifar/$f" ] || { echo "FAIL: split-cifar: $f not written"; fail=1; }
done
[ "$(wc -l < "$scratch/cifar/accuracy_matrix.csv")" -eq 7 ] || { echo "FAIL: accuracy_matrix.csv is not 1 header + 6 rows"; fail=1; }
grep -q '"model": "cifarnet"' "$scratch/cifar/results.json" || { echo "FAIL: results.json lacks the model"; fail=1; }
grep -q '"epochs": 1' "$scratch/cifar/results.json" || { echo "FAIL: results.json lacks the epochs given"; fail=1; }
expect 0 "split-tinyimagenet (10 tasks), method replay.*MLP 12288,16,20" -- "$bin" --tasks split-tinyimagenet $common \
  --model mlp --hidden 16 --method replay --memory-per-task 2 --example-scores --out "$scratch/tiny"
[ -s "$scratch/tiny/results.json" ] || { echo "FAIL: split-tinyimagenet: results.json not written"; fail=1; }
# The scores of a JPEG tree's boundary sample name each scored image's file, in its class's folder.
expect 0 "scores of task 10: 4 examples, 2 remembered" -- "$(dirname "$bin")/kprior-inspect" "$scratch/tiny/example_scores.h5"
if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
  /usr/bin/python3 - "$scratch/tiny/example_scores.h5" <<'PY' || fail=1
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for t in range(10):
    g = f[f"task_{t}"]
    files = bytes(g["files"][()]).decode().split("\n")
    assert len(files) == len(g["labels"]), (t, len(files))
    for name, label in zip(files, g["labels"][()]):
        assert f"/train/n{label:08d}/" in name, (t, name, label)
print("example scores name their images")
PY
fi
# Each task's classes, by their folders' names (the first task: the first two wnids).
tr -d ' \n' < "$scratch/tiny/results.json" | grep -q '"class_names":\["n00000000","n00000001"\],"classes":\[0,1\],"task":1' ||
  { echo "FAIL: results.json does not list task 1's classes by name"; fail=1; }
# split-imagenet: an ImageFolder tree, classes in the documented shuffled order, training
# streamed at 224x224 (random-resized crops of the upscaled 16x16 files), val centre crops.
expect 0 "split-imagenet (10 tasks), method replay.*MLP 150528,8,20" -- "$bin" --tasks split-imagenet $common \
  --model mlp --hidden 8 --method replay --memory-per-task 2 --stop-after-task 2 --out "$scratch/imagenet"
printf '%s' "$out" | grep -q "after task 2: accuracy" || { echo "FAIL: split-imagenet did not evaluate task 2: $out"; fail=1; }
# Its remembered images, drawn with ImageNet's normalisation undone.
expect 0 "wrote 2 remembered images of task 2" -- "$1/kprior-inspect" "$scratch/imagenet/checkpoint.h5" --export-memory 2 \
  --png "$scratch/imagenet-memory.png"
expect 0 "split-h5 (2 tasks), method fromp.*MLP 10,256,256,4" -- "$bin" --tasks split-h5 --data-dir "$scratch/h5/data.h5" \
  --epochs 1 --threads 1 --memory-per-task 10 --out "$scratch/h5run"
[ -s "$scratch/h5run/results.json" ] || { echo "FAIL: split-h5: results.json not written"; fail=1; }
# ResNet-18 (BatchNorm, linearized in eval mode) with FROMP on the first two CIFAR-100 tasks
# (10 images each): memory scores, kernels and the FROMP penalty through its 20 BatchNorm layers.
expect 0 "split-cifar100 (10 tasks), method fromp.*resnet18 (100 outputs)" -- "$bin" --tasks split-cifar100 $common \
  --model resnet18 --optimizer ivon --memory-per-task 2 --stop-after-task 2 --out "$scratch/resnet"
printf '%s' "$out" | grep -q "stopped after task 2 of 10" || { echo "FAIL: resnet18 fromp did not stop after task 2: $out"; fail=1; }
[ -s "$scratch/resnet/checkpoint.h5" ] || { echo "FAIL: resnet18 fromp: checkpoint.h5 not written"; fail=1; }
# Mixed precision and channels-last CifarNet (the GPU's fast path, here on the CPU): FROMP with
# Adam (Laplace GGN, kernels) in bf16 over channels-last weights, stopped and resumed with the
# same settings.
expect 0 "split-cifar (6 tasks), method fromp, optimizer adam.*cpu (bf16, channels-last)" -- "$bin" --tasks split-cifar \
  $common --precision bf16 --memory-format channels-last --memory-per-task 4 --stop-after-task 1 --out "$scratch/bf16"
expect 0 "resuming after task 1 of 6" -- "$bin" --resume "$scratch/bf16" --stop-after-task 2 --threads 1
printf '%s' "$out" | grep -q "cpu (bf16, channels-last)" || { echo "FAIL: the resumed run changed precision or layout: $out"; fail=1; }
expect 2 "precision must be fp32 or bf16, got 'fp16'" -- "$bin" --tasks split-cifar $common --precision fp16
expect 2 "memory format must be auto, contiguous or channels-last, got 'nhwc'" -- "$bin" --tasks split-cifar $common --memory-format nhwc
# FROMP's kernels hold a task's whole memory, one class row at a time: ResNet-18 on 64x64
# images with 200 points per task would need ~11 GiB. Asked for, it is refused before any
# training with what to change; by default the memory becomes the ~145 points that fit, which
# these fixtures' 4 boundary images per task cannot supply: refused too, naming the task.
expect 2 "limit 8 GiB, about 14[0-9] inputs); use fewer memorable points per task" -- "$bin" --tasks split-tinyimagenet $common \
  --method fromp --memory-per-task 200 --out "$scratch/big"
[ ! -e "$scratch/big/results.json" ] || { echo "FAIL: a refused FROMP run still wrote results"; fail=1; }
expect 2 "a memory of 14[0-9] examples per task is more than the 4 training examples of task 1 (classes 0/1) held in memory" -- \
  "$bin" --tasks split-tinyimagenet $common --method fromp --out "$scratch/big"
printf '%s' "$out" | grep -q "using 14[0-9] points per task, the most that fit" || { echo "FAIL: no note on the fitted FROMP memory: $out"; fail=1; }
expect 2 "model lenet5 needs images \[C, 28, 28\]" -- "$bin" --tasks split-cifar $common --model lenet5 --out "$scratch/lenet"
expect 2 "hidden applies to --model mlp only" -- "$bin" --tasks split-cifar $common --hidden 10
# --model mlp where the published model is a CNN: two hidden layers of 256, not a linear model.
expect 0 "MLP 3072,256,256,60" -- "$bin" --tasks split-cifar $common --model mlp --method finetune --stop-after-task 1 \
  --out "$scratch/mlp"
# Resumed, it keeps the widths saved with the run (a run from before this default keeps its own).
expect 0 "resuming after task 1 of 6" -- "$bin" --resume "$scratch/mlp" --stop-after-task 2 --threads 1
printf '%s' "$out" | grep -q "MLP 3072,256,256,60" || { echo "FAIL: the resumed MLP changed widths: $out"; fail=1; }
expect 2 "model must be mlp, lenet5, cifarnet or resnet18" -- "$bin" --tasks split-cifar $common --model vgg
expect 1 "cifar-100-binary: not found" -- "$bin" --tasks split-cifar100 --data-dir "$scratch/missing"
# A run that blows up (here a learning rate of 1e8) is a training error (exit 1) at the
# epoch's end: the loss, the weights or IVON's state are no longer finite.
expect 1 "training diverged on task 1, epoch 1" -- "$bin" --tasks split-cifar100 --data-dir "$scratch/data" --epochs 1 \
  --threads 1 --optimizer ivon --lr 1e8 --method finetune --batch-size 4 --stop-after-task 1 --out "$scratch/diverged"
# joint training needs every task in memory: refused on a streamed JPEG tree before decoding it.
# shellcheck disable=SC2086
expect 2 "joint training needs every task's data in memory; split-tinyimagenet streams" -- "$bin" \
  --tasks split-tinyimagenet $common --method joint --out "$scratch/joint"
printf '%s' "$out" | grep -q "decoding" && { echo "FAIL: joint on a JPEG tree was refused only after decoding: $out"; fail=1; }
# A class without val images would leave its task's accuracy to the others: refused at load.
cp -r "$scratch/data/tiny-imagenet-200" "$scratch/noval"
grep -v "n00000003" "$scratch/noval/val/val_annotations.txt" > "$scratch/noval/val/annotations" &&
  mv "$scratch/noval/val/annotations" "$scratch/noval/val/val_annotations.txt"
expect 1 "noval/val: no val examples of 1 class (n00000003); every class needs val examples" -- \
  "$bin" --tasks split-tinyimagenet --data-dir "$scratch/noval" --threads 1 --out "$scratch/noval-run"
# The pipeline learns, not only runs: a CIFAR-100 whose classes are colours (plus noise).
# CifarNet learns each task (chance: 10%); replay keeps task 1 after task 2, fine-tuning
# forgets much of it.
"$writer" cifar100-learnable "$scratch/learnable" || { echo "FAIL: fixture writer (cifar100-learnable)"; exit 1; }
learn="--tasks split-cifar100 --data-dir $scratch/learnable --epochs 25 --batch-size 16 --stop-after-task 2 --threads 1"
# shellcheck disable=SC2086
expect 0 "after task 2" -- "$bin" $learn --method replay --memory-per-task 50 --out "$scratch/learn-replay"
replay1=$(printf '%s\n' "$out" | awk '/^after task 1:/ {print int($6)}')
replay2=$(printf '%s\n' "$out" | awk '/^after task 2:/ {print int($6)}')
# shellcheck disable=SC2086
expect 0 "after task 2" -- "$bin" $learn --method finetune --out "$scratch/learn-finetune"
finetune2=$(printf '%s\n' "$out" | awk '/^after task 2:/ {print int($6)}')
[ "${replay1:-0}" -ge 80 ] || { echo "FAIL: CifarNet did not learn a task of colours: ${replay1:-?}% (chance 10%)"; fail=1; }
[ "${replay2:-0}" -ge 80 ] || { echo "FAIL: replay did not keep task 1: ${replay2:-?}%"; fail=1; }
[ "${finetune2:-100}" -le $((${replay2:-0} - 20)) ] ||
  { echo "FAIL: fine-tuning forgot no more of task 1 than replay: ${finetune2:-?}% vs ${replay2:-?}%"; fail=1; }
[ $fail -eq 0 ] && echo "kprior-run image datasets: all checks passed"
exit $fail
