#!/bin/sh
# The GPU machine's check, in one go (see ../shared/docs/ENVIRONMENT.md): configure against the
# LibTorch of the pip torch (CUDA, Catch2 v3), build, run the CTest suite, the CUDA tests and
# the optimizer benchmark, and print a short summary last.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KPRIOR_BUILD_DIR:-$root/build-gpu}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKPRIOR_BUILD_BENCH=ON \
  -DCMAKE_PREFIX_PATH="$prefix" > "$build.configure.log" 2>&1 || { tail -30 "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" > "$build.build.log" 2>&1 || { grep -m20 -A5 error "$build.build.log"; exit 1; }
built=$(date +%s)
ctest --test-dir "$build" --output-on-failure -j 4 > "$build.ctest.log" 2>&1; ctest_rc=$?
"$build/tests/kprior_tests" "[cuda]" > "$build.cuda.log" 2>&1; cuda_rc=$?
"$build/bench/bench_optim_step" --threads 16 > "$build.bench.log" 2>&1
echo "==== kprior GPU check ===="
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
echo "build: $((built - start)) s"
echo "ctest: rc=$ctest_rc"; tail -3 "$build.ctest.log"
echo "cuda tests: rc=$cuda_rc"; tail -3 "$build.cuda.log"
cat "$build.bench.log"
