"""What maven/allocator.py buys: a population's training iterations with glibc's default
thresholds and with the raised ones, each in its own process (mallopt is process-wide), measured
side by side in one run. Printed per case: CPU ms per iteration (user + system, so other load on
the machine moves it less than wall time), minor page faults per iteration, the ratio, and the
largest parameter difference between the two processes after the same iterations (0: the
arithmetic is untouched).

    python benchmarks/bench_allocator.py [--sizes 1 5 16] [--cases matrix-maven matrix-qmix]
                                         [--iterations 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, tempfile
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from maven import allocator, threads
threads.configure(1)
heap = allocator.configure() if sys.argv[2] == "tuned" else "default"
from bench_population import CASES, build
from maven.members import leaves
case, S, iterations = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with tempfile.TemporaryDirectory() as out:
    trainer = build(CASES[case], list(range(S)), "cpu", out)
    running = np.ones(S, bool)
    def iterate(n):
        for _ in range(n):
            trainer._train_iteration(running)
            trainer.episode += trainer.cfg.batch_size_run
    iterate(40)  # fill the buffers, first calls
    before = resource.getrusage(resource.RUSAGE_SELF)
    iterate(iterations)
    after = resource.getrusage(resource.RUSAGE_SELF)
    params = torch.cat([p.flatten() for p in leaves(trainer.learner.params)])
    trainer.env.close()
cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
print(json.dumps({"heap": heap, "cpu_ms": 1000 * cpu / iterations,
                  "faults": (after.ru_minflt - before.ru_minflt) / iterations, "params": params.tolist()}))
"""


def run(mode: str, case: str, S: int, iterations: int) -> dict:
    here = str(Path(__file__).resolve().parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    proc = subprocess.run([sys.executable, "-c", CHILD, here, mode, case, str(S), str(iterations)],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 16])
    parser.add_argument("--cases", nargs="+", default=["matrix-maven", "matrix-qmix"])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each mode; the best is kept")
    args = parser.parse_args()
    print(f"{'case':>13} {'S':>3} {'default ms/it':>14} {'tuned ms/it':>12} {'x':>6} "
          f"{'faults/it default':>18} {'tuned':>6} {'max |dparam|':>13}")
    for case in args.cases:
        for S in args.sizes:
            best = {}
            for _ in range(args.repeats):
                for mode in ("default", "tuned"):  # alternating, so drifting load hits both
                    r = run(mode, case, S, args.iterations)
                    if mode not in best or r["cpu_ms"] < best[mode]["cpu_ms"]:
                        best[mode] = r
            d, t = best["default"], best["tuned"]
            diff = max(abs(a - b) for a, b in zip(d["params"], t["params"]))
            print(f"{case:>13} {S:>3} {d['cpu_ms']:>14.1f} {t['cpu_ms']:>12.1f} {d['cpu_ms'] / t['cpu_ms']:>6.2f} "
                  f"{d['faults']:>18.0f} {t['faults']:>6.0f} {diff:>13.1e}", flush=True)


if __name__ == "__main__":
    main()
