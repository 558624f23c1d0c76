#!/usr/bin/env bash
# CPU threads (issue 13): two training runs started at once with default settings, as a user
# starting runs by hand would, and one run alone at 1 and 2 threads. Prints wall times.
#
#   bash benchmarks/bench_threads.sh [OLD_CHECKOUT]
#
# OLD_CHECKOUT (optional): a checkout of an older commit (e.g. 1c47e74, before the trainer chose
# its own threads) to time the same pairs "before"; it runs from that directory, so its own
# `maven` package is imported. Nothing else should run on the machine meanwhile.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
OLD=${1:-}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
unset OMP_NUM_THREADS MKL_NUM_THREADS XLA_FLAGS
elapsed() { python3 -c "print(round($(date +%s.%N) - $1, 1))"; }
pair() {  # label, directory to run from, train arguments...
  local label=$1 dir=$2 start
  shift 2
  start=$(date +%s.%N)
  (cd "$dir" && $PY -m maven train "$@" --seed 901 --out "$OUT/$label-a" > "$OUT/$label-a.log" 2>&1) &
  (cd "$dir" && $PY -m maven train "$@" --seed 902 --out "$OUT/$label-b" > "$OUT/$label-b.log" 2>&1) &
  wait
  echo "$label: both done in $(elapsed "$start") s"
}
alone() {  # label, train arguments...
  local label=$1 start
  shift
  start=$(date +%s.%N)
  (cd "$ROOT" && $PY -m maven train "$@" --seed 903 --out "$OUT/$label" > "$OUT/$label.log" 2>&1)
  echo "$label: $(elapsed "$start") s"
}
M="--env matrix --map m6 --algo maven --preset paper --t-max ${MATRIX_STEPS:-3000}"
S="--env smax --map 3m --algo qmix --preset paper --t-max ${SMAX_STEPS:-10000}"
if [ -n "$OLD" ]; then
  pair matrix-before "$OLD" $M
  pair smax-before "$OLD" $S
fi
pair matrix-after "$ROOT" $M
pair smax-after "$ROOT" $S
alone matrix-alone-1thread $M --threads 1
alone matrix-alone-2threads $M --threads 2
alone smax-alone-1thread $S --threads 1
alone smax-alone-2threads $S --threads 2
