"""How closely member k of a population follows the single run with seed k.

Both start identically (tests/test_population.py checks it bit for bit). Afterwards the only
difference is arithmetic: a population pads every member's replay sample to the longest episode
any member drew, and its batched products may sum in another order. This script trains a
population and the single runs side by side for a number of updates and prints, per member, the
largest absolute parameter difference and whether the two logged the same episodes.

    python benchmarks/population_vs_single.py [--algo qmix] [--seeds 0 1 2 3] [--updates 100]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from bench_population import build

from maven import threads
from maven.members import leaves, tree_map


def train(algo: str, seeds: list[int], updates: int):
    """Run training iterations until every member made `updates` gradient steps -> the trainer."""
    with tempfile.TemporaryDirectory() as out:
        trainer = build({"env": "matrix", "map": "m10", "algo": algo}, seeds, "cpu", out)
        running = np.ones(len(seeds), bool)
        while int(trainer.learner.updates.min()) < updates:
            trainer._train_iteration(running & (trainer.learner.updates.numpy() < updates))
            trainer.episode += trainer.cfg.batch_size_run
        return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="qmix")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()
    threads.configure(1)
    population = train(args.algo, args.seeds, args.updates)
    print(f"{args.algo}, m10 paper preset, population of {len(args.seeds)} vs single runs, "
          f"after {args.updates} updates each")
    print(f"{'seed':>5} {'max |param diff|':>17} {'same env steps':>15}")
    for k, seed in enumerate(args.seeds):
        alone = train(args.algo, [seed], args.updates)
        ours = tree_map(lambda x, k=k: x[k], population.learner.params)
        theirs = tree_map(lambda x: x[0], alone.learner.params)
        diff = max(float((a - b).abs().max()) for a, b in zip(leaves(ours), leaves(theirs)))
        same = int(population.t_env[k]) == int(alone.t_env[0])
        print(f"{seed:>5} {diff:>17.3e} {same!s:>15}")


if __name__ == "__main__":
    main()
