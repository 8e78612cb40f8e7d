#!/usr/bin/env bash
# The GPU machine's check, in one go (../shared/docs/ENVIRONMENT.md, "The GPU machine"):
# configure against the LibTorch of the pip torch (CUDA, Catch2 v3), build, then
#   1. the [cuda] tests (IVON against its scalar oracle; FROMP on CUDA = FROMP on the CPU;
#      bf16 autocast against its oracle; channels-last ResNet-18 on CUDA = contiguous (float64
#      weights vs the CPU; fp32 NHWC activations vs NCHW on the GPU); bf16 vs fp32),
#   2. issue #8's benchmark: ResNet-18 training images/s, IVON vs SGD vs AdamW, bf16 autocast
#      + channels-last, and SGD and IVON through the ContinualLearner (kprior-run's loop) against
#      the bare loop (then fp32, and bf16 without channels-last, as time allows),
#   3. kprior-run FROMP on split-MNIST on the GPU with Adam and with IVON (fp32 and bf16; and on
#      the CPU), on generated fixtures split-cifar (CifarNet) and a streamed split-tinyimagenet
#      with ResNet-18 + FROMP (both bf16, channels-last), CifarNet learning a learnable fixture,
#      and the JPEG loading rate on all cores against the GPU's training rate,
#   4. the CTest suite, and the CPU optimizer-step benchmark.
# Every step runs even when an earlier one failed (one run gives the most information), each
# under a time limit inside an overall budget (KPRIOR_GPU_CHECK_BUDGET seconds, default 540, so
# the summary is printed before a 10-minute limit); logs go to $build-logs/, and a short
# summary is printed last (the device tool returns only the last 12,000 characters).
# Usage, from the repository root: ./scripts/gpu-check.sh   (KPRIOR_BUILD_DIR: default build-gpu)
# Needs the bundled data (data/mnist10k, data/fashion-mnist) in the working tree: through the
# device tool, run data/prepare.sh here first and carry both folders (they are git-ignored).
# Through the device tool, with a budget 45 s under the run's limit (status's budget_left_s
# may leave less than timeout_s), e.g. for a 600 s limit:
#   KPRIOR_GPU_CHECK_BUDGET=555 ./scripts/gpu-check.sh; rc=$?;
#   cp -r build-gpu-logs "$OUT"/; exit $rc        # the step logs come back with the summary
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KPRIOR_BUILD_DIR:-$root/build-gpu}
budget=${KPRIOR_GPU_CHECK_BUDGET:-540}
case $budget in
  ''|*[!0-9]*) echo "gpu-check: KPRIOR_GPU_CHECK_BUDGET must be whole seconds, got '$budget'" >&2; exit 2 ;;
esac
[ "$budget" -ge 120 ] || { echo "gpu-check: a budget of ${budget}s is too short to build (>= 120 s)" >&2; exit 2; }
logs=$build-logs
mkdir -p "$logs"
status=$logs/status.txt
: > "$status"
failed=""
t0=$(date +%s)
jobs=$(nproc)

# run_step NAME LIMIT_SECONDS COMMAND...: runs COMMAND with its output in $logs/NAME.log,
# records its exit status and wall time; skipped when the budget is spent.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - ($(date +%s) - t0) - 25))
  if [ "$left" -lt 15 ]; then
    printf '%-16s skipped (budget of %ss spent)\n' "$name" "$budget" >> "$status"
    echo "[gpu-check] $name: skipped, out of time"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local s rc secs note=""
  s=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$logs/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - s))
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note=" (timed out at ${limit}s)"
  printf '%-16s rc=%-3s %4ss%s\n' "$name" "$rc" "$secs" "$note" >> "$status"
  echo "[gpu-check] $name: rc=$rc, ${secs}s$note"
  [ "$rc" -ne 0 ] && failed="$failed $name"
  return 0
}

# need BINARY: true if it was built (a failed build still leaves the other targets).
need() {
  if [ -x "$1" ]; then return 0; fi
  echo "[gpu-check] $(basename "$1") was not built: its steps are skipped"
  printf '%-16s not built: %s\n' "$(basename "$1")" "$1" >> "$status"
  failed="$failed $(basename "$1")"
  return 1
}

echo "[gpu-check] $(date -u +%FT%TZ) root $root, build $build, $jobs cores, budget ${budget}s"
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)
pytorch=$(python3 -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)
data_ok=yes
[ -f "$root/data/mnist10k/train-images-idx3-ubyte" ] || data_ok="no (data/mnist10k missing: kprior-run and the data tests fail)"
[ -f "$root/data/fashion-mnist/train-images-idx3-ubyte.gz" ] || data_ok="no (data/fashion-mnist missing: the datasets and mpe tests fail)"

# ---- configure and build ----------------------------------------------------------------------
run_step configure 150 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DKPRIOR_BUILD_BENCH=ON -DCMAKE_PREFIX_PATH="$prefix"
if [ ! -f "$build/build.ninja" ]; then
  echo "==== kprior GPU check: configure failed ===="
  tail -40 "$logs/configure.log"
  exit 1
fi
# -k 0: keep going past a failing target, so everything that compiles is still checked.
run_step build 420 cmake --build "$build" -j "$jobs" -- -k 0

tests=$build/tests/kprior_tests
bench=$build/bench/bench_throughput
run=$build/apps/kprior-run
tmp=$(mktemp -d)

# ---- 1. CUDA tests ------------------------------------------------------------------------------
need "$tests" && run_step cuda-tests 180 "$tests" "[cuda]"

# ---- 2. issue #8: ResNet-18 throughput ----------------------------------------------------------
if need "$bench"; then
  run_step bench-bf16-cl 150 "$bench" --device cuda --bf16 --channels-last --steps 50 --warmup 15 --rounds 3 --learner
fi

# ---- 3. kprior-run FROMP on split-MNIST (GPU) ---------------------------------------------------
if need "$run"; then
  for opt in adam ivon; do
    run_step run-cuda-$opt 120 "$run" --tasks split-mnist --method fromp --optimizer $opt \
      --device cuda --seeds 1 --data-dir "$root/data" --out "$tmp/cuda-$opt"
  done
  run_step run-cuda-ivon-bf16 120 "$run" --tasks split-mnist --method fromp --optimizer ivon \
    --device cuda --precision bf16 --seeds 1 --data-dir "$root/data" --out "$tmp/cuda-ivon-bf16"
fi

# ---- 3b. the image benchmarks' paths on the GPU, on generated fixtures; JPEG loading rate ------
fixture=$build/tests/make_dataset_fixture
if need "$run" && need "$fixture"; then
  "$fixture" cifar "$tmp/fx" > /dev/null 2>&1 && "$fixture" tiny "$tmp/fx" > /dev/null 2>&1
  # bf16 autocast; the default memory format on CUDA is channels-last for these CNNs.
  run_step cifar-cuda 120 "$run" --tasks split-cifar --device cuda --precision bf16 --epochs 1 --batch-size 32 \
    --memory-per-task 4 --data-dir "$tmp/fx" --out "$tmp/cifar-cuda"
  run_step tiny-resnet-cuda 120 "$run" --tasks split-tinyimagenet --model resnet18 --method fromp \
    --optimizer ivon --device cuda --precision bf16 --epochs 1 --batch-size 16 --memory-per-task 2 --stop-after-task 2 \
    --data-dir "$tmp/fx" --out "$tmp/tiny-cuda"
  # ... and learn there, not only run: CifarNet on a CIFAR-100 whose classes are colours
  # (chance 10%) in bf16 and channels-last; replay keeps task 1 (the CPU test reaches >= 80%).
  "$fixture" cifar100-learnable "$tmp/learn" > /dev/null 2>&1
  run_step learn-cuda 60 "$run" --tasks split-cifar100 --data-dir "$tmp/learn" --device cuda --precision bf16 \
    --method replay --memory-per-task 50 --epochs 25 --batch-size 16 --stop-after-task 2 --out "$tmp/learn-cuda"
fi
[ -x "$build/bench/bench_image_loader" ] &&
  run_step bench-jpeg 90 "$build/bench/bench_image_loader" --images 512 --rounds 2

# ---- 4. CTest, then the optional measurements ---------------------------------------------------
# 8 test processes at once: 2 threads each, or 8 × all cores of OpenMP fight for 16 cores.
run_step ctest 240 env OMP_NUM_THREADS=2 ctest --test-dir "$build" --output-on-failure -j 8 --timeout 200
if [ -x "$bench" ]; then
  run_step bench-fp32 120 "$bench" --device cuda --steps 20 --warmup 5 --rounds 2
  run_step bench-bf16 90 "$bench" --device cuda --bf16 --steps 30 --warmup 10 --rounds 2
fi
if [ -x "$run" ]; then
  for opt in adam ivon; do
    run_step run-cpu-$opt 90 "$run" --tasks split-mnist --method fromp --optimizer $opt \
      --device cpu --seeds 1 --data-dir "$root/data" --out "$tmp/cpu-$opt"
  done
fi
[ -x "$build/bench/bench_optim_step" ] &&
  run_step bench-optim-cpu 60 "$build/bench/bench_optim_step" --threads "$jobs" --rounds 3

# ---- summary (last, so the device tool's tail holds it) -----------------------------------------
for name in $failed; do
  [ -f "$logs/$name.log" ] || continue
  echo "---- $name failed: log tail ($logs/$name.log) ----"
  if [ "$name" = build ]; then
    grep -m 12 -B 2 -A 6 -E "error:|FAILED:" "$logs/build.log" | cut -c1-300
  elif [ "$name" = ctest ] && grep -q "tests passed" "$logs/ctest.log"; then
    grep -E "\*\*\*|Failed|tests passed|FAILED|REQUIRE|CHECK" "$logs/ctest.log" | head -40 | cut -c1-300
  else
    tail -25 "$logs/$name.log" | cut -c1-300
  fi
done
table() {  # the benchmark's table (header to last row)
  [ -f "$logs/$1.log" ] && sed -n '/^optimizer/,/^RESULT/p' "$logs/$1.log" | grep -v '^RESULT'
}
echo
echo "==== kprior GPU check summary ($(( $(date +%s) - t0 )) s) ===="
echo "GPU: $gpu"
echo "torch: $pytorch; $jobs cores; bundled data: $data_ok"
# Two OpenMP runtimes (the system's libgomp for our -fopenmp code, a renamed copy in the pip
# wheel for LibTorch) would leave our inline parallel loops outside --threads: say which.
[ -x "$run" ] && echo "OpenMP runtimes of kprior-run: $(ldd "$run" 2>/dev/null | grep -oE 'lib(g|i)?omp[^ ]*' | sort -u | tr '\n' ' ')"
echo "-- steps --"
cat "$status"
if [ -f "$logs/cuda-tests.log" ]; then
  echo "-- [cuda] tests: $(grep -E '^(test cases|All tests)' "$logs/cuda-tests.log" | tail -1)" \
       "$(grep -q 'no CUDA device: skipped' "$logs/cuda-tests.log" && echo '(SKIPPED: no CUDA device)')"
fi
[ -f "$logs/ctest.log" ] && echo "-- ctest: $(grep -E 'tests passed' "$logs/ctest.log" | tail -1)"
for b in bench-bf16-cl bench-bf16 bench-fp32; do
  if [ -f "$logs/$b.log" ]; then
    echo "-- $b: $(grep -m1 '^bench_throughput' "$logs/$b.log" | sed 's/^bench_throughput: //')"
    table "$b"
  fi
done
for r in run-cuda-adam run-cuda-ivon run-cuda-ivon-bf16 cifar-cuda run-cpu-adam run-cpu-ivon; do
  if [ -f "$logs/$r.log" ]; then
    echo "-- $r ($(grep "^$r " "$status" | awk '{print $3}')): $(grep -E '^seed .*average accuracy' "$logs/$r.log" | tail -1)"
  fi
done
[ -f "$logs/learn-cuda.log" ] && echo "-- learn-cuda (accuracy %, chance 10):" && grep '^after task' "$logs/learn-cuda.log"
if [ -f "$logs/bench-optim-cpu.log" ]; then
  echo "-- bench_optim_step (CPU):"
  grep -E '^(MLP|CNN|  (SGD|Adam|AdamW|IVON) )' "$logs/bench-optim-cpu.log"
fi
echo "machine-readable:"
for b in bench-bf16-cl bench-bf16 bench-fp32; do
  [ -f "$logs/$b.log" ] && grep '^RESULT' "$logs/$b.log"
done
rm -rf "$tmp"
if [ -n "$failed" ]; then
  echo "FAILED:$failed"
  exit 1
fi
echo "all steps passed"
