#!/usr/bin/env bash
# The GPU checks of one short session on a CUDA machine: the CUDA tests, then the population
# benchmark on the GPU (eager, then compiled both ways), then SMAX on the GPU. Each part has its
# own time limit, writes its log to $OUT and goes on when another fails. Parts run in the order
# given (default: all of them):
#
#   OUT=gpu_out bash benchmarks/gpu_checks.sh [tests] [bench] [compile] [smax]
#
# TESTS=<pytest -k expression> narrows the tests, SIZES="1 16" the population sizes benchmarked,
# LIMIT=<seconds> caps every part's time limit.
#
# It runs with the machine's own python3 and packages (PY=... for another); the repository is
# imported from the working tree, not installed. Where jaxmarl is missing, wheels in .devwheels/
# (`pip download --no-deps jaxmarl==0.2.0 gymnax gymnasium farama-notifications`) are installed
# without their dependencies first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tests bench compile smax)

run() {  # run NAME SECONDS COMMAND...: the command's output to the screen and $OUT/NAME.log
  local name=$1 limit=$(( $2 < ${LIMIT:-600} ? $2 : ${LIMIT:-600} ))
  shift 2
  echo "=== $name ($(date +%T), limit ${limit}s): $*"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  echo "=== $name: exit ${PIPESTATUS[0]}"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import jaxmarl" 2>/dev/null || { [ -d .devwheels ] && $PY -m pip install -q --no-deps --no-index .devwheels/*.whl; }
$PY -c "import torch, jax; print('torch', torch.__version__, torch.cuda.get_device_name(0), '| jax', jax.__version__, jax.devices())"

bench=(benchmarks/bench_population.py --device cuda --iterations 20)
for part in "${parts[@]}"; do
  case $part in
    tests) run tests 240 $PY -m pytest -q -s -p no:cacheprovider --durations=0 tests/test_cuda.py ${TESTS:+-k "$TESTS"} ;;
    bench) run bench_eager 200 $PY "${bench[@]}" --cases matrix-maven matrix-qmix --sizes 1 2 4 8 16 32 64 ;;
    compile)
      run bench_compile_default 150 $PY "${bench[@]}" --cases matrix-qmix --sizes ${SIZES:-1 16 64} --compile default
      run bench_compile_graphs 150 $PY "${bench[@]}" --cases matrix-qmix --sizes ${SIZES:-1 16 64} --compile reduce-overhead ;;
    smax) run bench_smax 200 $PY "${bench[@]}" --cases smax3m-qmix --sizes ${SIZES:-1 4 16 64} --iterations 10 ;;
    *) echo "unknown part $part; choose from: tests bench compile smax" >&2; exit 2 ;;
  esac
done
