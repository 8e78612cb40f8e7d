#!/bin/sh
# Checkpoints from the command line: kprior-run stopped after a task and resumed ends exactly
# where an uninterrupted run ends (same NLL/ECE to the last digit, same accuracy matrix);
# kprior-inspect summarises, exports a PNG grid, and fails with exit 1 and one line naming the
# file for a missing, corrupted or foreign file.
# Usage: checkpoint_cli_test.sh BIN_DIR DATA_DIR SCRATCH_DIR
set -u
run=$1/kprior-run
inspect=$1/kprior-inspect
data=$2
scratch=$3
. "$(dirname "$0")/cli_expect.sh"
rm -rf "$scratch" && mkdir -p "$scratch"
common="--data-dir $data --epochs 1 --batch-size 128 --threads 1 --optimizer ivon --method fromp,ewc"
# shellcheck disable=SC2086
expect 0 "average accuracy" -- "$run" $common --out "$scratch/whole"
# shellcheck disable=SC2086
expect 0 "stopped after task 2 of 5" -- "$run" $common --out "$scratch/parts" --stop-after-task 2
printf '%s' "$out" | grep -q "continue with: kprior-run --resume $scratch/parts" || { echo "FAIL: a stopped run does not say how to continue: $out"; fail=1; }
[ -e "$scratch/parts/results.json" ] && { echo "FAIL: an interrupted run wrote results.json"; fail=1; }
# ... but its accuracy so far: the header and the rows of the two tasks learned.
[ "$(wc -l < "$scratch/parts/accuracy_matrix.csv")" -eq 3 ] || { echo "FAIL: a stopped run's accuracy_matrix.csv is not 1 header + 2 rows"; fail=1; }
expect 2 "cannot be changed" -- "$run" --resume "$scratch/parts" --epochs 3
expect 2 "resume takes the run's output folder (here $scratch/parts), not a checkpoint file" -- \
  "$run" --resume "$scratch/parts/checkpoint.h5"
expect 0 "already stopped after task 2 of 5 (--stop-after-task 1)" -- "$run" --resume "$scratch/parts" --stop-after-task 1 --threads 1
# ... said from the checkpoint, before the data is read and the run configured.
printf '%s' "$out" | grep -q "^kprior-run .*: split-mnist" && { echo "FAIL: an already stopped run set up its data first: $out"; fail=1; }
expect 2 "resume needs the output folder of the run to continue" -- "$run" --resume ""
# Its saved options replace the given ones before parsing: --resume in a config file cannot.
printf 'resume = "%s"\nepochs = 3\n' "$scratch/parts" > "$scratch/resume.toml"
expect 2 "resume must be given on the command line, not in a --config file" -- "$run" --config "$scratch/resume.toml"
touch "$scratch/a-file"
expect 1 "a-file: is a file, not an output folder" -- "$run" --out "$scratch/a-file" --data-dir "$scratch/nothing-here"
expect 0 "resuming after task 2 of 5" -- "$run" --resume "$scratch/parts" --threads 1
for key in '"nll"' '"ece"' '"brier"' '"average_accuracy"'; do
  a=$(grep "$key" "$scratch/whole/results.json"); b=$(grep "$key" "$scratch/parts/results.json")
  [ "$a" = "$b" ] || { echo "FAIL: resumed $key differs: $a vs $b"; fail=1; }
done
cmp -s "$scratch/whole/accuracy_matrix.csv" "$scratch/parts/accuracy_matrix.csv" || { echo "FAIL: resumed accuracy matrix differs"; fail=1; }
expect 1 "no checkpoint.h5" -- "$run" --resume "$scratch/nothing-here"
# Resumed on other data of the same shapes (Fashion-MNIST in place of MNIST): refused, not
# trained on silently.
mkdir -p "$scratch/other" && ln -sfn "$(cd "$data" && pwd)/fashion-mnist" "$scratch/other/mnist10k"
expect 1 "was trained on other data than --data-dir $scratch/other holds" -- "$run" --resume "$scratch/parts" \
  --data-dir "$scratch/other" --threads 1
# A checkpoint written before --lr-schedule existed (its configuration has no lr_schedule)
# continues with the constant rate it was trained with, not today's IVON default (cosine).
python=""
for p in "${KPRIOR_PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$p" ] && "$p" -c "import h5py" 2>/dev/null; then python=$p; break; fi
done
if [ -n "$python" ]; then
  # shellcheck disable=SC2086
  expect 0 "optimizer ivon (lr 0.1, cosine)" -- "$run" $common --out "$scratch/old" --stop-after-task 1
  # Edit the configuration with h5py, then renew the envelope (512-byte header: body size,
  # CRC-32 of the body) as the library writes it.
  cat > "$scratch/age.py" <<'PY'
# age.py CHECKPOINT MODE: makes a checkpoint look as an older kprior wrote it.
import json, os, sys, h5py
path, mode = sys.argv[1], sys.argv[2]
with h5py.File(path, "r+") as f:
    if mode == "schedule":
        config = json.loads(f["config"].attrs["json"])
        del config["lr_schedule"]
        config["grad_clip"] = 0.25  # a clip the defaults would not give: the resumed run keeps it
        del config["data_fingerprint"]  # not recorded then: the resumed run's data is not checked
        f["config"].attrs["json"] = json.dumps(config)
    else:  # before learner@regularizers was written
        del f["learner"].attrs["regularizers"]
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.environ["KPRIOR_TESTS"])
import renew_envelope
renew_envelope.renew(path)
PY
  KPRIOR_TESTS=$(cd "$(dirname "$0")" && pwd); export KPRIOR_TESTS
  "$python" "$scratch/age.py" "$scratch/old/checkpoint.h5" schedule
  expect 0 "optimizer ivon (lr 0.1, constant)" -- "$run" --resume "$scratch/old" --stop-after-task 2 --threads 1
  clip=$("$python" -c 'import json, sys, h5py; print(json.loads(h5py.File(sys.argv[1], "r")["config"].attrs["json"])["grad_clip"])' \
    "$scratch/old/checkpoint.h5")
  [ "$clip" = "0.25" ] || { echo "FAIL: the resumed run did not keep its gradient clip (0.25): $clip"; fail=1; }
  # ewc+fr+replay ignored --fisher before its checkpoints named the method: an old run continues
  # with the GGN it trained with, not the empirical Fisher its arguments record.
  expect 0 "stopped after task 1" -- "$run" --data-dir "$data" --epochs 1 --threads 1 --method ewc+fr+replay \
    --fisher empirical --out "$scratch/old-combined" --stop-after-task 1
  "$python" "$scratch/age.py" "$scratch/old-combined/checkpoint.h5" regularizers
  expect 0 "resuming after task 1" -- "$run" --resume "$scratch/old-combined" --stop-after-task 2 --threads 1
  fisher=$("$python" -c 'import json, sys, h5py; print(json.loads(h5py.File(sys.argv[1], "r")["config"].attrs["json"])["fisher"])' \
    "$scratch/old-combined/checkpoint.h5")
  [ "$fisher" = "ggn" ] || { echo "FAIL: an old ewc+fr+replay run resumed with fisher $fisher, not ggn"; fail=1; }
  # Offline EWC keeps one Fisher and anchor per learned task, across a resume too (online: one).
  expect 0 "stopped after task 2" -- "$run" --data-dir "$data" --epochs 1 --threads 1 --method ewc \
    --ewc-mode offline --out "$scratch/offline" --stop-after-task 2
  expect 0 "resuming after task 2" -- "$run" --resume "$scratch/offline" --stop-after-task 3 --threads 1
  terms=$("$python" -c 'import sys, h5py; print(h5py.File(sys.argv[1], "r")["regularizers/0_ewc"].attrs["terms"])' \
    "$scratch/offline/checkpoint.h5")
  [ "$terms" = "3" ] || { echo "FAIL: offline EWC after 3 tasks keeps $terms Fisher terms, not 3"; fail=1; }
  terms=$("$python" -c 'import sys, h5py; print(h5py.File(sys.argv[1], "r")["regularizers/1_ewc"].attrs["terms"])' \
    "$scratch/parts/checkpoint.h5")  # fromp,ewc: ewc is the second regularizer
  [ "$terms" = "1" ] || { echo "FAIL: online EWC keeps $terms Fisher terms, not 1"; fail=1; }
  # --jitter may be given again (to repair a singular FROMP kernel): the next boundary
  # recomputes task 1's kernel with it, so its saved inverse differs from the run's without.
  expect 0 "stopped after task 1" -- "$run" --data-dir "$data" --epochs 1 --threads 1 --method fromp \
    --out "$scratch/jitter-a" --stop-after-task 1
  cp -r "$scratch/jitter-a" "$scratch/jitter-b"
  expect 0 "resuming after task 1" -- "$run" --resume "$scratch/jitter-a" --stop-after-task 2 --threads 1
  expect 0 "resuming after task 1" -- "$run" --resume "$scratch/jitter-b" --stop-after-task 2 --threads 1 --jitter 0.5
  changed=$("$python" -c '
import json, sys, h5py, numpy
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
k = "regularizers/0_fromp/kernel_inverse/0"
print(json.loads(b["config"].attrs["json"])["jitter"], not numpy.allclose(a[k][()], b[k][()]))' \
    "$scratch/jitter-a/checkpoint.h5" "$scratch/jitter-b/checkpoint.h5")
  [ "$changed" = "0.5 True" ] || { echo "FAIL: --jitter with --resume did not reach FROMP's kernels: $changed"; fail=1; }
else
  echo "note: no Python with h5py; the resume-of-an-old-checkpoint check is skipped"
fi

ckpt=$scratch/whole/checkpoint.h5
expect 0 "5 of 5 tasks learned" -- "$inspect" "$ckpt"
expect 0 "memory of task 5: 40 examples (class 8: 20, class 9: 20)" -- "$inspect" "$ckpt"
expect 0 '"tasks_completed": 5' -- "$inspect" "$ckpt" --json
expect 0 "wrote 40 remembered images of task 2" -- "$inspect" "$ckpt" --export-memory 2 --png "$scratch/task2.png"
[ "$(head -c 4 "$scratch/task2.png" | od -An -c | tr -d ' ')" = "211PNG" ] || { echo "FAIL: task2.png is not a PNG"; fail=1; }
expect 2 "memories of tasks 1..5, not 7" -- "$inspect" "$ckpt" --export-memory 7 --png "$scratch/x.png"
expect 2 "requires --png" -- "$inspect" "$ckpt" --export-memory 1
expect 1 "missing.h5: no such checkpoint file" -- "$inspect" "$scratch/missing.h5"
printf 'not a checkpoint\n' > "$scratch/foreign.h5"
expect 1 "foreign.h5: not a kprior checkpoint" -- "$inspect" "$scratch/foreign.h5"
expect 2 "scale must be in 1..16" -- "$inspect" "$ckpt" --export-memory 2 --png "$scratch/big.png" --scale 1000
expect 0 "0.1" -- "$inspect" --version
head -c 100000 "$ckpt" > "$scratch/truncated.h5"
expect 1 "truncated.h5: truncated" -- "$inspect" "$scratch/truncated.h5"
cp "$ckpt" "$scratch/corrupted.h5"
printf 'XXXX' | dd of="$scratch/corrupted.h5" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect 1 "corrupted.h5: corrupted checkpoint (checksum mismatch)" -- "$inspect" "$scratch/corrupted.h5"
# One line on stderr: nothing from the HDF5 library's own error stack.
lines=$("$inspect" "$scratch/corrupted.h5" 2>&1 | wc -l)
[ "$lines" -eq 1 ] || { echo "FAIL: expected one line of error, got $lines"; fail=1; }
# A fresh run into a finished run's folder: the earlier run's files go (none of its results
# beside this run's), other files stay.
touch "$scratch/whole/notes.txt"
# shellcheck disable=SC2086
expect 0 "whole held an earlier run; removed its accuracy_matrix.csv, checkpoint.h5, results.json" -- \
  "$run" $common --out "$scratch/whole" --stop-after-task 1
[ -e "$scratch/whole/results.json" ] && { echo "FAIL: the earlier run's results.json survived a fresh run"; fail=1; }
[ -e "$scratch/whole/notes.txt" ] || { echo "FAIL: a fresh run removed a file it does not write"; fail=1; }
[ "$(wc -l < "$scratch/whole/accuracy_matrix.csv")" -eq 2 ] || { echo "FAIL: the fresh run's accuracy_matrix.csv is not 1 header + 1 row"; fail=1; }
[ $fail -eq 0 ] && echo "checkpoint CLI: all checks passed"
exit $fail
