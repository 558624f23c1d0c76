"""Learner update time (ms per update) and rollout throughput (env steps/s).

Prints one table per device: every algorithm's update (one member; benchmarks/bench_population.py
measures populations) on a batch of 32 synthetic episodes of
length T with N agents (defaults T = 151, N = 8, as on SMAC's longest maps), then the matrix
game's rollout env steps/s for several numbers of parallel envs. Compare rows of one run with
each other; absolute times hold only for the machine that printed them.

    python benchmarks/bench_learner.py [--T 151] [--agents 8] [--updates 5] [--devices cpu cuda] [--threads 1]

torch's CPU threads come from --threads (default 1, as in training; maven/threads.py); an
OMP_NUM_THREADS set in the environment wins, as it does in training.
"""

from __future__ import annotations

import argparse
import time

import torch

from maven import algos, threads
from maven.batch import EpisodeBatch
from maven.config import resolve
from maven.envs.base import EnvInfo
from maven.envs.matrix import MatrixGame
from maven.runner import ActionStreams, rollout


def synthetic_batch(info: EnvInfo, batch: int, device) -> EpisodeBatch:
    T, N, A = info.episode_limit, info.n_agents, info.n_actions
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(T // 2, T + 1, (batch,), generator=gen)
    filled = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    terminated = filled & (torch.arange(T).unsqueeze(0) == (lengths - 1).unsqueeze(1))
    return EpisodeBatch(
        obs=torch.rand(batch, T + 1, N, info.obs_dim, generator=gen),
        state=torch.rand(batch, T + 1, info.state_dim, generator=gen),
        avail_actions=torch.rand(batch, T + 1, N, A, generator=gen) > 0.3,
        actions=torch.randint(A, (batch, T, N), generator=gen),
        reward=torch.rand(batch, T, generator=gen), terminated=terminated, filled=filled,
        z=torch.randint(2, (batch,), generator=gen),
    ).map(lambda x: x.unsqueeze(0).to(device))  # [1, B, ...]: one member


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_updates(device, T: int, n_agents: int, n_updates: int) -> None:
    info = EnvInfo(n_agents=n_agents, n_actions=6 + n_agents, obs_dim=10 * n_agents,
                   state_dim=21 * n_agents, episode_limit=T, has_win=True)
    batch = synthetic_batch(info, 32, device)
    batch.avail_actions[..., 0] = True
    print(f"\n[{device}] learner update, batch 32 episodes, T={T}, N={n_agents}")
    print(f"{'algorithm':<12} {'ms/update':>10}")
    for algo in algos.ALGOS:
        cfg = resolve({"env": "matrix", "map": "m10", "algo": algo, "seed": 0},
                      {"z_policy": "uniform", "noise_dim": 2} if algo == "maven" else {})
        learner = algos.learner_class(algo)(cfg, info, device, seeds=[0])  # a population of one
        one = torch.ones(1, dtype=torch.bool, device=device)
        learner.update(batch, torch.tensor([0]), one)  # warm-up (allocations)
        sync(device)
        start = time.perf_counter()
        for i in range(n_updates):
            learner.update(batch, torch.tensor([i + 1]), one)
        sync(device)
        print(f"{algo:<12} {1000 * (time.perf_counter() - start) / n_updates:>10.1f}")


def bench_rollout(device, env_counts) -> None:
    cfg = resolve({"env": "matrix", "map": "m10", "algo": "qmix", "seed": 0})
    print(f"\n[{device}] matrix-game rollout (QMIX agents, epsilon 0.5)")
    print(f"{'envs':>6} {'env steps/s':>12}")
    one, epsilon = torch.ones(1, dtype=torch.bool), torch.full((1,), 0.5, device=device)
    for n_envs in env_counts:
        env = MatrixGame(10, n_envs, device=device)
        learner = algos.learner_class("qmix")(cfg, env.info, device, seeds=[0])
        streams = ActionStreams([0], device)
        rollout(env, learner, cfg, streams, None, epsilon, one)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            _, stats = rollout(env, learner, cfg, streams, None, epsilon, one)
            steps += int(stats.lengths.sum())
        sync(device)
        print(f"{n_envs:>6} {steps / (time.perf_counter() - start):>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=151)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as in training)")
    args = parser.parse_args()
    threads.configure(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for name in args.devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("\n[cuda] not available: skipped")
            continue
        device = torch.device(name)
        if name == "cuda":
            print(f"GPU: {torch.cuda.get_device_name(0)}")
        bench_updates(device, args.T, args.agents, args.updates)
        bench_rollout(device, args.envs)


if __name__ == "__main__":
    main()
