#!/bin/sh
# Executes every notebook in notebooks/ top to bottom (jupyter nbconvert --execute) on the
# outputs of scripts/notebook-runs.sh. Usage:
#   scripts/run-notebooks.sh [--fast] [--no-runs] [--data DIR] [--figures DIR]
#     --fast         make the short runs (notebook-runs.sh --fast) — the CI check
#     --no-runs      use the runs already in DIR instead of making them
#     --data DIR     where the runs go (default out/notebooks)
#     --figures DIR  also save every figure as PNG in DIR
# Executed copies go to DIR/executed/. Fails when a committed notebook still has outputs.
# Exit 77 (CTest: skipped) when jupyter nbconvert or the Python packages are missing.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
fast=""; runs=1; data=$root/out/notebooks; figures=""
while [ $# -gt 0 ]; do
  case $1 in
    --fast) fast=--fast ;;
    --no-runs) runs=0 ;;
    --data) data=$2; shift ;;
    --figures) figures=$2; shift ;;
    *) echo "run-notebooks: unknown option $1 (see the head of this script)" >&2; exit 2 ;;
  esac
  shift
done
command -v jupyter >/dev/null 2>&1 && jupyter nbconvert --version >/dev/null 2>&1 ||
  { echo "run-notebooks: SKIP: jupyter nbconvert not installed (scripts/install-deps.sh installs it)"; exit 77; }
# The kernel is Debian's python3 (python3-ipykernel); it needs these.
/usr/bin/python3 -c "import numpy, matplotlib, h5py, ipykernel" 2>/dev/null ||
  { echo "run-notebooks: SKIP: python3-numpy, -matplotlib, -h5py or -ipykernel missing"; exit 77; }
# Committed notebooks carry no outputs (they would go stale and bloat the history).
/usr/bin/python3 - "$root"/notebooks/*.ipynb <<'PY'
import json, sys
bad = [p for p in sys.argv[1:] for c in json.load(open(p))["cells"]
       if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
if bad:
    sys.exit("run-notebooks: outputs not stripped in " + ", ".join(sorted(set(bad))) +
             " (jupyter nbconvert --clear-output --inplace FILE)")
PY
# Absolute paths: the notebooks run in notebooks/.
mkdir -p "$data"
data=$(cd "$data" && pwd)
if [ -n "$figures" ]; then mkdir -p "$figures" && figures=$(cd "$figures" && pwd); fi
if [ $runs = 1 ]; then sh "$root/scripts/notebook-runs.sh" $fast "$data"; fi
export KPRIOR_NOTEBOOK_DATA="$data"
[ -z "$figures" ] || export KPRIOR_FIGURE_DIR="$figures"
export PYDEVD_DISABLE_FILE_VALIDATION=1  # silences a debugger warning of the kernel
mkdir -p "$data/executed"
cd "$root/notebooks"
for nb in *.ipynb; do
  echo "run-notebooks: executing $nb"
  jupyter nbconvert --execute --to notebook --output-dir "$data/executed" \
    --ExecutePreprocessor.timeout=600 "$nb" > "$data/executed/${nb%.ipynb}.log" 2>&1 ||
    { cat "$data/executed/${nb%.ipynb}.log" >&2; echo "run-notebooks: $nb failed" >&2; exit 1; }
done
echo "run-notebooks: all notebooks ran; executed copies in $data/executed${figures:+, figures in $figures}"
