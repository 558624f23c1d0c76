"""End-to-end training throughput: env steps/s of a real training run (rollout, replay, updates,
evaluation), e.g. QMIX on SMAX 3m. Prints the overall rate and the rate after the first
evaluation (which excludes JAX compilation).

    python benchmarks/bench_train.py [--env smax] [--map 3m] [--algo qmix] [--preset paper]
                                     [--steps 30000] [--device cpu|cuda|auto] [--threads 1]

CPU threads (torch and XLA) come from --threads (default 1, as in training; maven/threads.py),
set before JAX is imported, so the trainer is imported inside main().
"""

from __future__ import annotations

import argparse
import tempfile

from maven import threads
from maven.config import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="smax")
    parser.add_argument("--map", default="3m")
    parser.add_argument("--algo", default="qmix")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of torch and XLA (default 1)")
    args = parser.parse_args()
    threads.configure(args.threads)
    from maven.trainer import Trainer  # after configure: it may import jax (SMAX)

    cfg = resolve({"env": args.env, "map": args.map, "algo": args.algo, "preset": args.preset, "seed": 0,
                   "t_max": args.steps, "device": args.device}, {"test_interval": max(1000, args.steps // 3)})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, progress=False)
        summary = trainer.run()
        rows = trainer.members[0].rows
    first, last = rows[0], rows[-1]
    after = (last["step"] - first["step"]) / max(last["wall_time_s"] - first["wall_time_s"], 1e-9)
    print(f"\n{args.algo} on {args.env}/{args.map} ({args.preset}, {summary['device']}, "
          f"batch_size_run {cfg.batch_size_run}): {summary['env_steps']} env steps in {summary['wall_time_s']:.1f} s")
    print(f"  overall            {summary['env_steps_per_s']:>8.0f} env steps/s")
    print(f"  after first test   {after:>8.0f} env steps/s (excludes compilation)")


if __name__ == "__main__":
    main()
