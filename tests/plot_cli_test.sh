#!/bin/sh
# The apps' --plot and kprior-run --example-scores from the command line: PNGs written, the
# per-example scores agree with the memory the checkpoint holds, clear errors. Exit 77
# (skipped) when no Python with numpy, matplotlib and h5py is installed.
# Usage: plot_cli_test.sh BIN_DIR DATA_DIR SCRATCH_DIR
set -u
run=$1/kprior-run
infl=$1/mpe-influence
data=$2
scratch=$3
. "$(dirname "$0")/cli_expect.sh"
python=""
for p in "${KPRIOR_PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$p" ] && "$p" -c "import numpy, matplotlib, h5py" 2>/dev/null; then python=$p; break; fi
done
[ -n "$python" ] || { echo "SKIP: no Python with numpy, matplotlib and h5py (scripts/install-deps.sh installs them)"; exit 77; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

rm -rf "$scratch"
mkdir -p "$scratch"
expect 2 "KPRIOR_PLOT_SCRIPT: no readable file" -- env KPRIOR_PLOT_SCRIPT="$scratch/none.py" "$run" --plot --data-dir "$data" --out "$scratch/x"
[ ! -e "$scratch/x/results.json" ] || { echo "FAIL: a --plot usage error still ran the experiment"; fail=1; }
expect 2 "KPRIOR_PYTHON=$scratch/nopython cannot run" -- env KPRIOR_PYTHON="$scratch/nopython" "$run" --plot --data-dir "$data" --out "$scratch/x"
# A figure that fails to draw: one line naming the script's error, exit 1, results kept.
printf 'import sys\nif sys.argv[1] != "check":\n    raise ValueError("broken figure")\n' > "$scratch/broken.py"
KPRIOR_PLOT_SCRIPT="$scratch/broken.py" "$run" --data-dir "$data" --epochs 1 --plot --threads 1 \
  --out "$scratch/broken" > /dev/null 2> "$scratch/broken.err"
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: a failing plot exited $rc, expected 1"; fail=1; }
[ "$(wc -l < "$scratch/broken.err")" -eq 1 ] || { echo "FAIL: a failing plot printed more than one line: $(cat "$scratch/broken.err")"; fail=1; }
grep -q "failed (exit 1): ValueError: broken figure" "$scratch/broken.err" || { echo "FAIL: the plot error lacks the script's message: $(cat "$scratch/broken.err")"; fail=1; }
[ -s "$scratch/broken/results.json" ] || { echo "FAIL: results.json not written before the failing plot"; fail=1; }
expect 2 "give --remove-class or --per-example" -- "$infl" --plot --data-dir "$data" --out "$scratch/y"

expect 0 "wrote .*accuracy.png" -- "$run" --data-dir "$data" --method fromp --epochs 1 --plot --example-scores \
  --out "$scratch/run" --threads 1
is_png "$scratch/run/accuracy.png" || { echo "FAIL: accuracy.png is not a PNG"; fail=1; }
# kprior-inspect summarises the scores file: per task, the examples and the remembered ones.
expect 0 "scores of task 5: [0-9]* examples, 40 remembered, posterior laplace; Tr Λ" -- "$1/kprior-inspect" \
  "$scratch/run/example_scores.h5"
# Each task's remembered examples, located by memory_indices in the per-example scores, carry
# the memory's labels and Tr Λ scores from the checkpoint: the two files describe one boundary.
"$python" - "$scratch/run" <<'PY' || fail=1
import sys, h5py, numpy as np
d = sys.argv[1]
ck, sc = h5py.File(d + "/checkpoint.h5", "r"), h5py.File(d + "/example_scores.h5", "r")
for t in range(5):
    m, s = ck[f"memory/task_{t}"], sc[f"task_{t}"]
    idx = s["memory_indices"][()]
    assert len(idx) == 40 and len(set(idx)) == 40, f"task {t}: {len(idx)} indices"
    assert (m["indices"][()] == idx).all(), f"task {t}: checkpoint and scores disagree on the memory"
    assert (s["labels"][()][idx] == m["labels"][()]).all(), f"task {t}: labels differ"
    assert np.allclose(s["lambda_trace"][()][idx], m["scores"][()], rtol=1e-5, atol=1e-7), f"task {t}: scores differ"
    # Tr Λ picks the largest scores of each class.
    lab, lam = s["labels"][()], s["lambda_trace"][()]
    for c in np.unique(lab):
        kept = np.zeros(len(lab), bool); kept[idx] = True
        inc = lab == c
        assert lam[inc & kept].min() >= lam[inc & ~kept].max() - 1e-7, f"task {t} class {c}: not the top Tr Λ"
    post = s.attrs["posterior"]
    assert (post.decode() if isinstance(post, bytes) else post) == "laplace", post
    assert (s["logit_variance"][()] > 0).all() and (s["mpe"][()] >= 0).all()
print("example scores agree with the checkpoint's memories")
PY

expect 2 "joint training has none" -- "$run" --method joint --example-scores --data-dir "$data" --out "$scratch/j"
# A resumed run keeps the scores of the tasks learned before the stop.
expect 0 "stopped after task 2" -- "$run" --data-dir "$data" --method fromp --epochs 1 --example-scores \
  --stop-after-task 2 --threads 1 --out "$scratch/resumed"
# The plot script draws a stopped run from its rows so far (results.json comes at the end).
plot="$(dirname "$0")/../notebooks/kprior_plot.py"
expect 0 "wrote $scratch/stopped.png" -- "$python" "$plot" run "$scratch/resumed" --out "$scratch/stopped.png"
is_png "$scratch/stopped.png" || { echo "FAIL: stopped.png is not a PNG"; fail=1; }
# Its errors are one line, not a traceback.
expect 1 "kprior_plot: error: $scratch has neither results.json nor accuracy_matrix.csv" -- \
  "$python" "$plot" run "$scratch" --out "$scratch/j.png"
expect 2 "panels nope: expected classes, examples or both" -- "$python" "$plot" influence "$scratch/resumed" \
  --out "$scratch/p.png" --panels nope
expect 2 "the folder $scratch/none does not exist" -- "$python" "$plot" run "$scratch/resumed" --out "$scratch/none/x.png"
expect 0 "average accuracy" -- "$run" --resume "$scratch/resumed" --threads 1
"$python" - "$scratch/resumed/example_scores.h5" <<'PY' || fail=1
import sys, h5py
groups = sorted(h5py.File(sys.argv[1], "r"))
assert groups == [f"task_{t}" for t in range(5)], groups
print("resumed example scores hold all five tasks")
PY
expect 0 "wrote .*influence.png" -- "$infl" --train-size 600 --epochs 1 --remove-class 3 --plot --data-dir "$data" \
  --out "$scratch/infl" --threads 1
is_png "$scratch/infl/influence.png" || { echo "FAIL: influence.png is not a PNG"; fail=1; }
[ $fail -eq 0 ] && echo "--plot and --example-scores: all checks passed"
exit $fail
